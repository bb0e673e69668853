#include "store/pg/connection.h"

#include <fmt/format.h>

#include "store/pg/libpq.h"

namespace flow::store::pg {

namespace {

void DropNotice(void*, const char*) {}

void AppendBigEndian(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>(v >> (8 * i)));
}

}  // namespace

bool IsPostgresAddress(std::string_view location) {
  return location.starts_with("postgresql://") || location.starts_with("postgres://");
}

std::string RedactedAddress(std::string_view address) {
  // scheme://user:password@host/db?password=...: each password goes. The user info ends
  // at the last '@' before the path (a password may hold '@').
  std::string out(address);
  size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    size_t path = out.find_first_of("/?", scheme + 3);
    size_t at = out.rfind('@', path == std::string::npos ? std::string::npos : path);
    if (at != std::string::npos && at > scheme) {
      size_t colon = out.find(':', scheme + 3);
      if (colon != std::string::npos && colon < at) out = out.substr(0, colon + 1) + "***" + out.substr(at);
    }
  }
  for (size_t p = out.find("password="); p != std::string::npos; p = out.find("password=", p + 1)) {
    size_t end = out.find('&', p);
    out = out.substr(0, p + 9) + "***" + (end == std::string::npos ? "" : out.substr(end));
  }
  return out;
}

Param Param::Int(int64_t v) {
  Param p;
  AppendBigEndian(&p.owned_, static_cast<uint64_t>(v), 8);
  return p;
}

Param Param::Null() {
  Param p;
  p.null_ = true;
  return p;
}

// PostgreSQL's binary array: dimensions, a null flag, the element type, each dimension's
// size and lower bound, then each element as a length and its bytes.
Param Param::Array(unsigned element_oid, const std::vector<std::string_view>& elements) {
  Param p;
  size_t total = 20;
  for (std::string_view e : elements) total += 4 + e.size();
  p.owned_.reserve(total);
  AppendBigEndian(&p.owned_, 1, 4);  // one dimension
  AppendBigEndian(&p.owned_, 0, 4);  // no nulls
  AppendBigEndian(&p.owned_, element_oid, 4);
  AppendBigEndian(&p.owned_, elements.size(), 4);
  AppendBigEndian(&p.owned_, 1, 4);  // lower bound
  for (std::string_view e : elements) {
    AppendBigEndian(&p.owned_, e.size(), 4);
    p.owned_.append(e);
  }
  return p;
}

Rows& Rows::operator=(Rows&& o) noexcept {
  if (this != &o) {
    std::string ignored;
    if (r_) LoadLibpq(&ignored)->clear(r_);
    r_ = o.r_;
    o.r_ = nullptr;
  }
  return *this;
}

Rows::~Rows() {
  std::string ignored;
  if (r_) LoadLibpq(&ignored)->clear(r_);
}

int Rows::size() const {
  std::string ignored;
  return LoadLibpq(&ignored)->ntuples(r_);
}

bool Rows::IsNull(int row, int col) const {
  std::string ignored;
  return LoadLibpq(&ignored)->getisnull(r_, row, col);
}

std::string_view Rows::Bytes(int row, int col) const {
  std::string ignored;
  const Libpq* pq = LoadLibpq(&ignored);
  return {pq->getvalue(r_, row, col), static_cast<size_t>(pq->getlength(r_, row, col))};
}

int64_t Rows::Int(int row, int col) const {
  std::string_view b = Bytes(row, col);
  uint64_t v = 0;
  for (char c : b) v = v << 8 | static_cast<uint8_t>(c);
  if (b.size() == 4) return static_cast<int32_t>(v);
  return static_cast<int64_t>(v);
}

bool Rows::Bool(int row, int col) const {
  std::string_view b = Bytes(row, col);
  return !b.empty() && b[0] != 0;
}

int64_t Rows::Changed() const {
  std::string ignored;
  const char* n = LoadLibpq(&ignored)->cmdTuples(r_);
  return n && *n ? std::stoll(n) : 0;
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& address) {
  std::string error;
  const Libpq* pq = LoadLibpq(&error);
  if (!pq) return Status::IOError(error);
  // Defaults the address may override (it is expanded after them): a server that does
  // not answer is given up on, and a connection that died unseen (a lost machine) is found,
  // rather than waited on for ever, by this side and by the server (options: its own
  // keepalives, so that a dead holder's advisory locks are freed within a minute or so).
  const char* keywords[] = {"connect_timeout", "keepalives_idle", "keepalives_interval", "tcp_user_timeout", "options",
                            "dbname", nullptr};
  const char* values[] = {"10", "30", "10", "30000",
                          "-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3",
                          address.c_str(), nullptr};
  pg_conn* c = pq->connectdbParams(keywords, values, 1);
  if (!c) return Status::IOError("cannot connect to PostgreSQL: out of memory");
  if (pq->status(c) != CONNECTION_OK) {
    std::string why = pq->errorMessage(c);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    pq->finish(c);
    return Status::IOError(fmt::format("cannot connect to PostgreSQL at {}: {}", RedactedAddress(address), why));
  }
  pq->setNoticeProcessor(c, DropNotice, nullptr);
  return std::unique_ptr<Connection>(new Connection(c, address));
}

Connection::~Connection() {
  std::string ignored;
  LoadLibpq(&ignored)->finish(c_);
}

Status Connection::ErrorOf(pg_result* r, const char* sql) const {
  std::string ignored;
  const Libpq* pq = LoadLibpq(&ignored);
  std::string why = r ? pq->resultErrorMessage(r) : pq->errorMessage(c_);
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
  const char* state = r ? pq->resultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  if (r) pq->clear(r);
  if (pq->status(c_) != CONNECTION_OK)
    return Status::IOError(fmt::format("lost the connection to PostgreSQL at {}: {}", RedactedAddress(address_), why));
  (void)state;
  return Status::IOError(fmt::format("PostgreSQL at {}: {}", RedactedAddress(address_), why));
}

// A connection lost (a server restarted, a network cut) is made again before the next
// statement, unless it was lost inside a transaction, whose statements must not go on
// outside it: that transaction's end fails, and the statement after it reconnects.
Status Connection::Reconnect() {
  std::string ignored;
  const Libpq* pq = LoadLibpq(&ignored);
  if (pq->status(c_) == CONNECTION_OK) return Status::Ok();
  if (in_transaction_) return ErrorOf(nullptr, "");
  pq->reset(c_);
  if (pq->status(c_) != CONNECTION_OK) return ErrorOf(nullptr, "");
  pq->setNoticeProcessor(c_, DropNotice, nullptr);
  prepared_.clear();
  synchronous_commit_ = -1;
  return Status::Ok();
}

Result<Rows> Connection::Exec(const char* sql, const std::vector<Param>& params) {
  std::string ignored;
  const Libpq* pq = LoadLibpq(&ignored);
  if (Status s = Reconnect(); !s.ok()) return s;
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    std::string name = "s" + std::to_string(prepared_.size());
    pg_result* r = pq->prepare(c_, name.c_str(), sql, static_cast<int>(params.size()), nullptr);
    if (!r || pq->resultStatus(r) != PGRES_COMMAND_OK) return ErrorOf(r, sql);
    pq->clear(r);
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  std::vector<const char*> values(params.size());
  std::vector<int> lengths(params.size()), formats(params.size(), 1);
  for (size_t i = 0; i < params.size(); ++i) {
    values[i] = params[i].data();
    lengths[i] = params[i].size();
  }
  pg_result* r = pq->execPrepared(c_, it->second.c_str(), static_cast<int>(params.size()), values.data(),
                                  lengths.data(), formats.data(), 1);
  ExecStatusType st = r ? pq->resultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return ErrorOf(r, sql);
  return Rows(r);
}

Status Connection::InTransaction(const std::function<Status()>& body) {
  if (Status s = ExecScript("BEGIN"); !s.ok()) return s;
  Status s = body();
  if (s.ok()) s = ExecScript("COMMIT");
  if (!s.ok()) (void)ExecScript("ROLLBACK");
  return s;
}

Status Connection::ExecScript(const std::string& sql) {
  std::string ignored;
  const Libpq* pq = LoadLibpq(&ignored);
  const bool begins = sql.starts_with("BEGIN"), ends = sql == "COMMIT" || sql == "ROLLBACK";
  if (ends && pq->status(c_) != CONNECTION_OK) {
    in_transaction_ = false;  // it went with the connection
    return ErrorOf(nullptr, "");
  }
  if (Status s = Reconnect(); !s.ok()) return s;
  if (begins) in_transaction_ = true;
  if (ends) in_transaction_ = false;
  pg_result* r = pq->exec(c_, sql.c_str());
  ExecStatusType st = r ? pq->resultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return ErrorOf(r, sql.c_str());
  pq->clear(r);
  return Status::Ok();
}

Status Connection::SetSynchronousCommit(bool on) {
  if (synchronous_commit_ == (on ? 1 : 0)) return Status::Ok();
  Status s = ExecScript(on ? "SET synchronous_commit = on" : "SET synchronous_commit = off");
  synchronous_commit_ = s.ok() ? (on ? 1 : 0) : -1;
  return s;
}

int Connection::socket() const {
  std::string ignored;
  return LoadLibpq(&ignored)->socket(c_);
}

Status Connection::TakeNotifications(std::vector<std::string>* channels) {
  std::string ignored;
  const Libpq* pq = LoadLibpq(&ignored);
  if (!pq->consumeInput(c_)) return ErrorOf(nullptr, "");
  while (PGnotify* n = pq->notifies(c_)) {
    channels->push_back(n->extra);
    pq->freemem(n);
  }
  return Status::Ok();
}

}  // namespace flow::store::pg
