// One connection to PostgreSQL, through libpq (store/pg/libpq.h): statements with their
// parameters and results in binary, each prepared once per connection. Not thread-safe:
// one thread uses a connection at a time.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "vm/base/status.h"

struct pg_conn;
struct pg_result;

namespace flow::store::pg {

// Whether `location` names a PostgreSQL database (postgresql://... or postgres://...).
bool IsPostgresAddress(std::string_view location);
// The address without its password, for messages.
std::string RedactedAddress(std::string_view address);

// A statement's parameter, in PostgreSQL's binary form; its SQL casts it ($1::bigint).
class Param {
 public:
  static Param Text(std::string_view s) { return Param(s); }    // text, varchar
  static Param Bytes(std::string_view b) { return Param(b); }   // bytea
  static Param Int(int64_t v);                                   // bigint
  static Param Null();
  // A bytea[] or a text[] of these elements.
  static Param ByteaArray(const std::vector<std::string_view>& elements) { return Array(kByteaOid, elements); }
  static Param TextArray(const std::vector<std::string_view>& elements) { return Array(kTextOid, elements); }
  const char* data() const { return null_ ? nullptr : owned_.empty() ? view_.data() : owned_.data(); }
  int size() const { return static_cast<int>(owned_.empty() ? view_.size() : owned_.size()); }

 private:
  static constexpr unsigned kByteaOid = 17, kTextOid = 25;  // pg_type's oids
  static Param Array(unsigned element_oid, const std::vector<std::string_view>& elements);
  explicit Param(std::string_view v) : view_(v) {}
  Param() = default;
  std::string_view view_;
  std::string owned_;
  bool null_ = false;
};

// A statement's result rows (binary columns), owned until destroyed.
class Rows {
 public:
  explicit Rows(pg_result* r) : r_(r) {}
  Rows(Rows&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  Rows& operator=(Rows&& o) noexcept;
  ~Rows();
  int size() const;
  bool IsNull(int row, int col) const;
  std::string_view Bytes(int row, int col) const;  // bytea, text
  int64_t Int(int row, int col) const;             // bigint (int8); 0 if null
  bool Bool(int row, int col) const;
  // The rows a statement without RETURNING changed.
  int64_t Changed() const;

 private:
  pg_result* r_;
};

class Connection {
 public:
  // Connects (a notice such as "already exists, skipping" is dropped: libraries do not print).
  static Result<std::unique_ptr<Connection>> Open(const std::string& address);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs `sql`, prepared on this connection at its first use (`sql` must outlive the
  // connection: a string literal). Errors name `what`.
  Result<Rows> Exec(const char* sql, const std::vector<Param>& params = {});
  // Runs statements without parameters (schema changes, BEGIN, COMMIT), not prepared.
  Status ExecScript(const std::string& sql);
  // `body` within a transaction: BEGIN, `body`, COMMIT; ROLLBACK if either fails.
  Status InTransaction(const std::function<Status()>& body);
  // synchronous_commit for what follows: on (durable at commit) or off (async runs).
  Status SetSynchronousCommit(bool on);
  // The socket, to wait on for notifications (LISTEN).
  int socket() const;
  // The payloads of the notifications that arrived (after reading what the socket holds).
  Status TakeNotifications(std::vector<std::string>* payloads);
  const std::string& address() const { return address_; }

 private:
  Connection(pg_conn* c, std::string address) : c_(c), address_(std::move(address)) {}
  Status ErrorOf(pg_result* r, const char* sql) const;
  Status Reconnect();
  bool in_transaction_ = false;  // between ExecScript("BEGIN...") and its COMMIT or ROLLBACK
  pg_conn* c_;
  std::string address_;
  std::unordered_map<const char*, std::string> prepared_;  // sql -> statement name
  int synchronous_commit_ = -1;  // unknown
};

}  // namespace flow::store::pg
