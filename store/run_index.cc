#include "store/run_index.h"

#include <fmt/format.h>
#include <sqlite3.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "store/keys.h"

namespace flow::store {

namespace {

// The schema (docs/checkpoint.md, "The index of packed runs"). Do not change without a new
// version: the file is on disk, shared by every process of the store.
constexpr int kApplicationId = 0x466c6f77;  // "Flow": SQLite's header field for the file's owner
constexpr int kSchemaVersion = 1;           // PRAGMA user_version
constexpr char kSchema[] =
    "CREATE TABLE IF NOT EXISTS packed_runs("
    "  id TEXT PRIMARY KEY,"
    "  record BLOB NOT NULL,"
    "  disk_bytes INTEGER NOT NULL,"
    "  origin BLOB NOT NULL"
    ") WITHOUT ROWID";
// A writer waits this long for another's transaction (they take a millisecond or two).
constexpr int kBusyTimeoutMs = 10'000;
constexpr int kBusyPollUs = 250;

// The log's length at which the process that grew it copies it into the database.
constexpr int kCheckpointFrames = 64;

int CountLogFrames(void* frames, sqlite3*, const char*, int n) {
  *static_cast<int*>(frames) = n;
  return SQLITE_OK;
}

// SQLite's own busy handler sleeps in steps that grow to 100 ms: with a worker's children
// writing rows at once, a run would wait far longer than the transaction it waits for.
int WaitBriefly(void*, int tries) {
  if (static_cast<int64_t>(tries) * kBusyPollUs >= int64_t{kBusyTimeoutMs} * 1000) return 0;
  usleep(kBusyPollUs);
  return 1;
}

Status SqliteError(sqlite3* db, int rc, const std::string& what) {
  std::string message = fmt::format("the run index: {}: {}", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Status::Corruption(message);
    default: return Status::IOError(message);
  }
}

Status Exec(sqlite3* db, const char* sql) {
  if (int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr); rc != SQLITE_OK) return SqliteError(db, rc, sql);
  return Status::Ok();
}

Status ReadPragma(sqlite3* db, const char* sql, int* value) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) *value = sqlite3_column_int(stmt, 0);
  sqlite3_finalize(stmt);
  return rc == SQLITE_ROW ? Status::Ok() : SqliteError(db, rc, sql);
}

// A prepared statement, finalized when it goes.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  Status status(const char* what) const { return rc_ == SQLITE_OK ? Status::Ok() : SqliteError(db_, rc_, what); }
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

void AssignColumnBytes(sqlite3_stmt* stmt, int column, std::string* out) {
  const void* data = sqlite3_column_blob(stmt, column);
  out->assign(data ? static_cast<const char*>(data) : "", data ? sqlite3_column_bytes(stmt, column) : 0);
}

// Checks the file is a Flow run index of a version this code reads, creating its schema
// if it is new (under a write transaction, so that two creators do it once).
Status CheckSchema(sqlite3* db, const std::string& path, bool create) {
  int app = 0, version = 0;
  if (Status s = ReadPragma(db, "PRAGMA application_id", &app); !s.ok()) return s;
  if (Status s = ReadPragma(db, "PRAGMA user_version", &version); !s.ok()) return s;
  if (app == kApplicationId && version == kSchemaVersion) return Status::Ok();
  if (app == kApplicationId && version > kSchemaVersion)
    return Status::NotSupported(fmt::format("the run index {} was written by a newer version of Flow (schema {}, this "
                                            "one reads {})", path, version, kSchemaVersion));
  if (app != 0 || version != 0) return Status::Corruption(fmt::format("{} is not a Flow run index", path));
  // Neither pragma set: a new file, or a header damaged (then its table is there).
  int tables = 0;
  if (Status s = ReadPragma(db, "SELECT count(*) FROM sqlite_schema", &tables); !s.ok()) return s;
  if (tables != 0) return Status::Corruption(fmt::format("{} is not a Flow run index", path));
  if (!create) return Status::NotFound(fmt::format("the run index {} is being created", path));
  // WAL: readers never wait for the writer, and a commit syncs one file (the log).
  if (Status s = Exec(db, "PRAGMA journal_mode=WAL"); !s.ok()) return s;
  if (Status s = Exec(db, "BEGIN IMMEDIATE"); !s.ok()) return s;
  Status s = ReadPragma(db, "PRAGMA application_id", &app);
  if (s.ok()) s = ReadPragma(db, "PRAGMA user_version", &version);
  if (s.ok() && app == 0 && version == 0) {
    s = Exec(db, kSchema);
    if (s.ok()) s = Exec(db, fmt::format("PRAGMA application_id={}", kApplicationId).c_str());
    if (s.ok()) s = Exec(db, fmt::format("PRAGMA user_version={}", kSchemaVersion).c_str());
  }
  if (!s.ok()) {
    (void)Exec(db, "ROLLBACK");
    return s;
  }
  return Exec(db, "COMMIT");
}

}  // namespace

RunIndex::WriterTurn::WriterTurn(const std::string& index_path) {
  fd_ = open((index_path + kRunIndexWriterSuffix).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ >= 0)
    while (flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
}

RunIndex::WriterTurn::~WriterTurn() {
  if (fd_ >= 0) close(fd_);
}

Result<std::unique_ptr<RunIndex>> RunIndex::Open(const std::string& path, bool create) {
  struct stat st;
  // (A log left by an index removed by hand is not read into a new one: SQLite drops a log
  // it finds beside an empty database; tests/unit/run_index_test.cc checks it.)
  if (!create && stat(path.c_str(), &st) != 0) return Status::NotFound(fmt::format("no run index {}", path));
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
  if (int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr); rc != SQLITE_OK) {
    Status s = SqliteError(db, rc, "open " + path);
    sqlite3_close(db);
    return s;
  }
  std::unique_ptr<RunIndex> index(new RunIndex(db, path));
  sqlite3_busy_handler(db, WaitBriefly, nullptr);
  // Each process opens the index for one read or one change, and the first to open it
  // reads the whole log (SQLite rebuilds its shared memory from it, not knowing what was
  // copied into the database): the log is kept short. Not by a copy at every close (a sync
  // each time), nor by SQLite's automatic copy at 1,000 pages (it never empties the log
  // when every process opens it anew): ~RunIndex copies it in and empties it once it
  // holds kCheckpointFrames pages, the file kept (no folder sync to create it again).
  (void)sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  int persist = 1;
  (void)sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  sqlite3_wal_hook(db, CountLogFrames, &index->log_frames_);
  if (Status s = CheckSchema(db, path, create); !s.ok()) return s;
  return index;
}

RunIndex::~RunIndex() {
  if (log_frames_ >= kCheckpointFrames) {  // only a writer commits: its WriterTurn is held
    // Only if no process reads the log now (a listing): else the next writer does it.
    sqlite3_busy_handler(db_, nullptr, nullptr);
    (void)sqlite3_wal_checkpoint_v2(db_, "main", SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  }
  sqlite3_close(db_);
}

Status RunIndex::Put(const std::vector<IndexedRun>& rows) {
  if (rows.empty()) return Status::Ok();
  // A row added need not be synced: lost, it costs a listing time, never a wrong answer.
  if (Status s = Exec(db_, "PRAGMA synchronous=NORMAL"); !s.ok()) return s;
  if (Status s = Exec(db_, "BEGIN IMMEDIATE"); !s.ok()) return s;
  Statement insert(db_, "INSERT OR REPLACE INTO packed_runs(id, record, disk_bytes, origin) VALUES(?1, ?2, ?3, ?4)");
  Status s = insert.status("prepare an insert");
  for (size_t i = 0; s.ok() && i < rows.size(); ++i) {
    const IndexedRun& r = rows[i];
    sqlite3_stmt* stmt = insert.get();
    sqlite3_bind_text(stmt, 1, r.id.data(), static_cast<int>(r.id.size()), SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 2, r.record.data(), static_cast<int>(r.record.size()), SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, static_cast<sqlite3_int64>(r.disk_bytes));
    sqlite3_bind_blob(stmt, 4, r.origin.data(), static_cast<int>(r.origin.size()), SQLITE_STATIC);
    if (int rc = sqlite3_step(stmt); rc != SQLITE_DONE) s = SqliteError(db_, rc, "insert a row");
    sqlite3_reset(stmt);
  }
  if (!s.ok()) {
    (void)Exec(db_, "ROLLBACK");
    return s;
  }
  return Exec(db_, "COMMIT");
}

Status RunIndex::Forget(const std::string& id) {
  // A row removed must stay removed across a power loss: its run changes right after.
  if (Status s = Exec(db_, "PRAGMA synchronous=FULL"); !s.ok()) return s;
  Statement remove(db_, "DELETE FROM packed_runs WHERE id = ?1");
  if (Status s = remove.status("prepare a delete"); !s.ok()) return s;
  sqlite3_bind_text(remove.get(), 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
  if (int rc = sqlite3_step(remove.get()); rc != SQLITE_DONE) return SqliteError(db_, rc, "delete the row of " + id);
  return Status::Ok();
}

Status RunIndex::ForEach(const std::function<void(IndexedRun& row)>& each) const {
  // Mapped rather than read page by page: a listing reads the whole file once.
  (void)Exec(db_, "PRAGMA mmap_size=1073741824");
  Statement select(db_, "SELECT id, record, disk_bytes, origin FROM packed_runs ORDER BY id");
  if (Status s = select.status("prepare a select"); !s.ok()) return s;
  int rc;
  IndexedRun r;
  while ((rc = sqlite3_step(select.get())) == SQLITE_ROW) {
    sqlite3_stmt* stmt = select.get();
    const unsigned char* id = sqlite3_column_text(stmt, 0);
    r.id.assign(id ? reinterpret_cast<const char*>(id) : "", id ? sqlite3_column_bytes(stmt, 0) : 0);
    AssignColumnBytes(stmt, 1, &r.record);
    r.disk_bytes = static_cast<uint64_t>(sqlite3_column_int64(stmt, 2));
    AssignColumnBytes(stmt, 3, &r.origin);
    each(r);
  }
  return rc == SQLITE_DONE ? Status::Ok() : SqliteError(db_, rc, "read the rows");
}

Status RunIndex::Remove(const std::string& path) {
  // The database first: no process finds it after that, and a new one (created under
  // the WriterTurn this caller holds) is not mixed with the old log.
  for (const std::string& file : {path, path + "-wal", path + "-shm"}) {
    if (unlink(file.c_str()) != 0 && errno != ENOENT)
      return Status::IOError(fmt::format("cannot remove {}: {}", file, std::strerror(errno)));
  }
  return Status::Ok();
}

}  // namespace flow::store
