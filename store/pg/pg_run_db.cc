#include "store/pg/pg_run_db.h"

#include <fmt/format.h>

#include <map>
#include <optional>
#include <vector>

namespace flow::store::pg {

namespace {

// A page of rows at a time, doubling from a few (a single GetAt) to many (a restore,
// which reads its objects in key order).
constexpr int64_t kFirstPageRows = 16;
constexpr int64_t kMaxPageRows = 4096;

class PgCursor final : public RunDb::Cursor {
 public:
  PgCursor(Connection* conn, const std::string& run) : conn_(conn), run_(run) {}

  void Seek(std::string_view target) override {
    page_rows_ = kFirstPageRows;
    Fetch(target, true);
  }
  void Next() override {
    if (++at_ < rows_->size()) return;
    if (rows_->size() < page_rows_) {  // the last page
      at_ = -1;
      return;
    }
    std::string last(rows_->Bytes(rows_->size() - 1, 0));
    page_rows_ = std::min(page_rows_ * 2, kMaxPageRows);
    Fetch(last, false);
  }
  bool Valid() const override { return rows_ && at_ >= 0 && at_ < rows_->size(); }
  std::string_view key() const override { return rows_->Bytes(at_, 0); }
  std::string_view value() const override { return rows_->Bytes(at_, 1); }
  Status status() const override { return status_; }

 private:
  void Fetch(std::string_view from, bool inclusive) {
    static constexpr char kAtOrAfter[] =
        "SELECT key, value FROM flow_run_keys WHERE run = $1::text AND key >= $2::bytea ORDER BY key LIMIT $3::bigint";
    static constexpr char kAfter[] =
        "SELECT key, value FROM flow_run_keys WHERE run = $1::text AND key > $2::bytea ORDER BY key LIMIT $3::bigint";
    std::string from_copy(from);  // `from` may point into the rows replaced below
    Result<Rows> r = conn_->Exec(inclusive ? kAtOrAfter : kAfter,
                                 {Param::Text(run_), Param::Bytes(from_copy), Param::Int(page_rows_)});
    at_ = 0;
    if (!r.ok()) {
      status_ = r.status();
      rows_.reset();
      return;
    }
    rows_.emplace(std::move(r.value()));
  }

  Connection* conn_;
  const std::string& run_;
  std::optional<Rows> rows_;
  int at_ = -1;
  int64_t page_rows_ = kFirstPageRows;
  Status status_;
};

class PgRunDb final : public RunDb {
 public:
  PgRunDb(Connection* conn, std::string run, std::string owner, std::unique_ptr<Connection> snapshot)
      : snapshot_(std::move(snapshot)), conn_(snapshot_ ? snapshot_.get() : conn), run_(std::move(run)),
        owner_(std::move(owner)) {}
  ~PgRunDb() override { ForgetLatestReader(); }

  std::unique_ptr<Cursor> NewCursor() override { return std::make_unique<PgCursor>(conn_, run_); }

  // One statement, so one transaction: the batch's last update of each key, applied only
  // while this process holds the run's lease (the row locked against a takeover until the
  // commit).
  Status Write(const Batch& batch, bool sync) override {
    if (owner_.empty()) return Status::NotSupported(fmt::format("run {} is open to read only", run_));
    ForgetLatestReader();
    std::map<std::string_view, std::optional<std::string_view>> last;
    batch.ForEach([&](bool put, std::string_view key, std::string_view value) {
      last[key] = put ? std::optional<std::string_view>(value) : std::nullopt;
    });
    std::vector<std::string_view> deleted, keys, values;
    for (const auto& [key, value] : last) {
      if (value) {
        keys.push_back(key);
        values.push_back(*value);
      } else {
        deleted.push_back(key);
      }
    }
    if (Status s = conn_->SetSynchronousCommit(sync); !s.ok()) return s;
    static constexpr char kWrite[] = R"sql(
WITH lease AS (SELECT id FROM flow_runs WHERE id = $1::text AND lease_owner = $2::text FOR SHARE),
gone AS (DELETE FROM flow_run_keys WHERE run = (SELECT id FROM lease) AND key = ANY($3::bytea[])),
put AS (INSERT INTO flow_run_keys (run, key, value)
        SELECT (SELECT id FROM lease), k, v FROM unnest($4::bytea[], $5::bytea[]) AS t(k, v)
        WHERE EXISTS (SELECT 1 FROM lease)
        ON CONFLICT (run, key) DO UPDATE SET value = EXCLUDED.value)
SELECT count(*)::bigint FROM lease)sql";
    Result<Rows> r = conn_->Exec(kWrite, {Param::Text(run_), Param::Text(owner_), Param::ByteaArray(deleted),
                                          Param::ByteaArray(keys), Param::ByteaArray(values)});
    if (!r.ok()) return r.status();
    if (r->Int(0, 0) != 1)
      return Status::IOError(fmt::format(
          "run {} is no longer this process's to write: its lease expired and another worker took it over", run_));
    return Status::Ok();
  }

  Status Get(std::string_view key, std::string* value) override {
    static constexpr char kGet[] = "SELECT value FROM flow_run_keys WHERE run = $1::text AND key = $2::bytea";
    Result<Rows> r = conn_->Exec(kGet, {Param::Text(run_), Param::Bytes(key)});
    if (!r.ok()) return r.status();
    if (r->size() == 0) return Status::NotFound("no such key");
    value->assign(r->Bytes(0, 0));
    return Status::Ok();
  }

  uint64_t StoredBytes() override {
    static constexpr char kBytes[] =
        "SELECT coalesce(sum(octet_length(key) + octet_length(value)), 0)::bigint FROM flow_run_keys WHERE run = $1::text";
    Result<Rows> r = conn_->Exec(kBytes, {Param::Text(run_)});
    return r.ok() ? static_cast<uint64_t>(r->Int(0, 0)) : 0;
  }

 private:
  std::unique_ptr<Connection> snapshot_;  // its transaction ends when it closes, after the cursors
  Connection* conn_;
  std::string run_;
  std::string owner_;
};

}  // namespace

std::unique_ptr<RunDb> NewPgRunDb(Connection* conn, std::string run, std::string owner,
                                  std::unique_ptr<Connection> snapshot) {
  return std::make_unique<PgRunDb>(conn, std::move(run), std::move(owner), std::move(snapshot));
}

}  // namespace flow::store::pg
