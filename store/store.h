// The store: where runs live, their records, their databases (checkpoints, history), their
// code by content hash, and the state shared across runs. Two backends serve one
// interface (StoreImpl): a folder (./.flow by default; store/file_store.h, a LevelDB per
// run) and a PostgreSQL database (store/pg/pg_store.h). Every name is in store/keys.h;
// the layouts are in docs/checkpoint.md ("The store", "The PostgreSQL store"). The store
// keeps bytes; it knows nothing of the VM.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/queues.h"
#include "store/run_index.h"
#include "store/schedules.h"
#include "vm/base/status.h"

namespace leveldb {
class DB;
class Env;
class WriteBatch;
class Iterator;
}  // namespace leveldb

namespace flow::store {

// A set of puts and deletes applied atomically by RunDb::Write.
class Batch {
 public:
  Batch();
  ~Batch();
  void Put(std::string_view key, std::string_view value);
  void Delete(std::string_view key);
  void Clear();  // empty again, keeping its buffer
  void Append(const Batch& other);  // other's updates after this one's
  size_t bytes() const { return bytes_; }
  // Each update in order: `put` false for a delete (its value empty).
  void ForEach(const std::function<void(bool put, std::string_view key, std::string_view value)>& fn) const;

 private:
  friend class LevelDbRunDb;
  std::unique_ptr<leveldb::WriteBatch> batch_;  // built in place: no copy at write time
  size_t bytes_ = 0;
};

// One run's database: ordered keys and values (store/keys.h), written in atomic batches.
// A backend gives Write, Get and a Cursor; every read above them (versions, scans) is
// built once here on the cursor, so both backends answer them alike.
class RunDb {
 public:
  // LevelDB's options, for RunDb::Open.
  struct Options {
    bool create = false;
    // Never write the database's files: what opening writes (LevelDB turns the log into
    // a table, writes a new manifest and log, deletes obsolete files) stays in memory.
    // For flow inspect, history, trace and export.
    bool read_only = false;
    leveldb::Env* env = nullptr;  // tests inject faults here; null: the default Env
    // The database's files (name in `dir`, bytes), from memory instead of the disk: a
    // packed run's (Store::ReadPacked), read only. Null: the files in `dir`.
    const std::vector<std::pair<std::string, std::string>>* files = nullptr;
  };
  // A run database on LevelDB in folder `dir` (store/run_db.cc).
  static Result<std::unique_ptr<RunDb>> Open(const std::string& dir, const Options& options);
  virtual ~RunDb();

  // Forward over the keys in order, as leveldb::Iterator; reads verify checksums.
  class Cursor {
   public:
    virtual ~Cursor() = default;
    virtual void Seek(std::string_view target) = 0;  // to the first key at or past target
    virtual void Next() = 0;
    virtual bool Valid() const = 0;
    virtual std::string_view key() const = 0;
    virtual std::string_view value() const = 0;
    virtual Status status() const = 0;  // why it is not Valid, if not the end
  };
  virtual std::unique_ptr<Cursor> NewCursor() = 0;

  // Applies the batch atomically; with `sync`, durable before returning.
  virtual Status Write(const Batch& batch, bool sync) = 0;
  // NotFound if the key is absent; reads verify checksums.
  virtual Status Get(std::string_view key, std::string* value) = 0;
  // Moves what the log holds into a table file, so that the next open does not replay it
  // (LevelDB replays its whole log at every open: megabytes of state take it long). A
  // backend without such a log does nothing.
  virtual Status MoveLogToTable() { return Status::Ok(); }
  // The size of the log this open replayed and kept appending to (0: none, or a new one).
  virtual uint64_t replayed_log_bytes() const { return 0; }
  // The bytes the database takes where it is kept (its files; its rows' keys and values).
  virtual uint64_t StoredBytes() = 0;

  // The newest version of versioned key `base` written at or before checkpoint `at`
  // (store/keys.h, VersionedKey): NotFound if there is none, or it is a tombstone.
  // *version (if given) is the checkpoint that wrote it.
  Status GetAt(std::string_view base, uint32_t at, std::string* value, uint32_t* version = nullptr);
  // GetAt for many keys as of one checkpoint (a restore): one cursor, reused.
  class VersionReader {
   public:
    ~VersionReader();
    Status Get(std::string_view base, std::string* value, uint32_t* version = nullptr);

   private:
    friend class RunDb;
    VersionReader(RunDb* db, uint32_t at);
    uint32_t at_;
    std::unique_ptr<Cursor> it_;
    std::string target_;
  };
  std::unique_ptr<VersionReader> ReaderAt(uint32_t at);
  // GetAt(base, kLatestCheckpoint) through one reader kept until the next Write: reads in
  // key order (a resumed run's strings, read when first used) step forward instead of
  // seeking, and nothing stays pinned past a write.
  Status ReadLatest(std::string_view base, std::string* value);
  // Calls `fn` for each version of `base` older than checkpoint `before`, newest first,
  // until it returns false.
  Status ScanVersionsBefore(std::string_view base, uint32_t before,
                            const std::function<bool(std::string_view key, std::string_view value)>& fn);
  // Calls `fn` for each key starting with `prefix`, in order, until it returns false.
  Status Scan(std::string_view prefix, const std::function<bool(std::string_view key, std::string_view value)>& fn);
  // Every key and value, for export.
  Status ScanAll(const std::function<void(std::string_view key, std::string_view value)>& fn);
  // Deletes the records of a checkpoint whose writing in several batches a crash cut short
  // (kUnfinishedCheckpointKey), so that no read takes them for the newest versions.
  Status DropUnfinishedCheckpoint();

 protected:
  RunDb() = default;
  // Before a Write: ReadLatest's reader would not see it, and would pin what it replaces.
  void ForgetLatestReader() { latest_reader_.reset(); }

 private:
  std::unique_ptr<VersionReader> latest_reader_;  // ReadLatest's, until the next Write
};

// The values are on disk (the run record's status byte, docs/checkpoint.md): do not change
// them; a new status takes the next number.
enum class RunStatus : uint8_t {
  kRunning = 0, kSuspended = 1, kCompleted = 2, kFailed = 3, kCrashed = 4, kCancelled = 5,
  kQueued = 6,  // flow submit: created, not started; a worker (or flow resume) starts it (runtime/queue.h)
  kPoisoned = 7,  // shown, never written: a crashed run a worker set aside (runs/ID/poisoned)
};
const char* RunStatusName(RunStatus s);
bool ParseRunStatus(std::string_view name, RunStatus* out);

struct RunRecord {
  std::string id;
  std::string program;    // the file it was started from
  std::string code_hash;  // its bytecode in code/
  std::vector<std::pair<std::string, std::string>> args;
  RunStatus status = RunStatus::kRunning;
  std::string durability = "sync";
  bool virtual_time = false;
  uint64_t max_effects = 0;        // budgets (0 / INT64_MAX: none), kept with the run
  uint64_t max_instructions = 0;
  int64_t deadline_ms = INT64_MAX;  // absolute, on the run's clock
  uint64_t max_tokens = 0;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  uint64_t effects = 0;   // effects completed when the record was last written
  int64_t pid = 0;        // the last process that executed it
  std::string detail;     // the error of a failed run, the reason of a suspended one
  int64_t wake_ms = 0;          // suspended: when its timer or wait timeout is due (0: none)
  std::string waiting_signal;   // suspended: the signal it waits for ("" if none)
  uint64_t signals_received = 0;  // suspended: how many of that signal it had received
  // failed or cancelled by an uncaught error: its kind ("budget" for a budget stop, out of
  // memory included: the run keeps its state and may resume with a larger budget); else "".
  std::string error_kind;
  // Which past checkpoints the run keeps (docs/checkpoint.md, "Kept checkpoints"):
  // kKeepDefault, kKeepAllCheckpoints, or the last N.
  uint32_t keep_checkpoints = 0;
  // The queue whose cap it executes under ("": none, a run of flow run); record version 4.
  std::string queue;
  // Queued by a schedule with --overlap queue: it starts only once this run has ended.
  std::string after_run;
};
inline constexpr uint32_t kKeepDefault = 0;  // all, until they take kKeepAllUpToBytes; then the last kKeepAfterCap
inline constexpr uint32_t kKeepAllCheckpoints = 0xffffffff;
inline constexpr uint64_t kKeepAllUpToBytes = 256ull << 20;
inline constexpr uint32_t kKeepAfterCap = 1000;

// Held while a process executes a run; released when destroyed or when the process dies.
class RunLock {
 public:
  virtual ~RunLock() = default;
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 protected:
  RunLock() = default;
};

// The code lock (Store::LockCode), held shared or exclusive until destroyed.
class CodeLock {
 public:
  virtual ~CodeLock() = default;
  CodeLock(const CodeLock&) = delete;
  CodeLock& operator=(const CodeLock&) = delete;

 protected:
  CodeLock() = default;
};

// The number of the last checkpoint a run's database acknowledged, kept beside a database
// that could lose its end unseen (a folder store: runs/ID/mark, store/file_store.h), so
// that a database behind its mark shows as rolled back. A store whose checkpoints are
// transactions keeps none: its mark writes nothing.
class CheckpointMark {
 public:
  virtual ~CheckpointMark() = default;
  CheckpointMark(const CheckpointMark&) = delete;
  CheckpointMark& operator=(const CheckpointMark&) = delete;
  virtual Status Write(uint64_t checkpoint) = 0;
  // Makes the mark durable (once, after the first checkpoint): later rewrites leave an
  // older or a newer value after an OS crash, never none, so a missing mark is damage.
  virtual Status Sync() = 0;

 protected:
  CheckpointMark() = default;
};

// A run as a listing finds it (Store::ListRunEntries).
struct ListedRun {
  RunRecord record;
  // From the index of packed runs: the run is packed, so neither live nor set aside, and
  // the two fields below are known without reading its folder.
  bool indexed = false;
  uint64_t disk_bytes = 0;  // indexed: the folder's bytes
  std::string origin;       // indexed: runs/ID/origin's bytes ("" if none)
  // Read from a packed file that has no row in the index (Store::IndexPackedRuns adds one).
  bool packed_without_row = false;
};

// Packed runs (store/packed_run.cc; docs/checkpoint.md, "Packed runs"): an idle run's
// record, mark and database in one sealed file, runs/ID/packed, instead of a record
// file, a mark file and a LevelDB folder of four or five files: a suspended run of a
// small program then takes its folder and one disk block. Only the holder of the run's
// lock packs or unpacks it; readers read either form.
struct PackedRun {
  std::string record;  // the sealed run record, as runs/ID/run held it
  std::string mark;    // runs/ID/mark's bytes ("" if the run had none)
  std::vector<std::pair<std::string, std::string>> db_files;  // each file of db/: name, bytes
};
// A hint of the wake index (Store::NoteWake).
struct WakeHint {
  int64_t wake_ms = 0;
  std::string run_id;
  // Its name where the store keeps it: a file in wake/, or (PostgreSQL) the payload that
  // announced it; a worker drops a hint with a name once it has acted on it.
  std::string file;
};

// Where a store keeps its runs.
enum class StoreKind {
  kFolder,    // a folder on this machine, a LevelDB per run (store/file_store.h)
  kPostgres,  // a PostgreSQL database, shared by workers on many machines (store/pg/pg_store.h)
};

// What a store does, whatever keeps it. Callers hold a Store, the handle below; each
// backend implements this. A backend without some form (a database has no folders to
// pack, no files to mark) says so at each method.
class StoreImpl {
 public:
  virtual ~StoreImpl() = default;
  virtual StoreKind kind() const = 0;
  // The folder, or the database's address as given (postgresql://...).
  virtual const std::string& location() const = 0;
  // The run's database, to execute or change it: created (and empty) with `create`.
  virtual Result<std::unique_ptr<RunDb>> OpenRunDb(const std::string& id, bool create) = 0;
  // Whether a run's database can be read while its process writes it (a database server):
  // readers then read it directly, without its lock, instead of asking the live process
  // for a snapshot (runtime/live.h), which a process on another machine could not answer.
  virtual bool ReadableWhileLive() const = 0;

  // Stores bytecode under its content hash (once) and returns the hash.
  virtual Result<std::string> PutCode(std::string_view bytes) = 0;
  virtual Status GetCode(const std::string& hash, std::string* bytes) const = 0;
  // The source text the bytecode `hash` was compiled from, kept beside it (code/HASH.flow,
  // written atomically, once: the first run that stores it). NotFound if none is stored
  // (a run started from a .flowc file, or stored before sources were).
  virtual Status PutSource(const std::string& hash, std::string_view text) = 0;
  virtual Status GetSource(const std::string& hash, std::string* text) const = 0;
  // code/lock (flock): held shared by whoever stores code and then a run record naming it
  // (a start, an import, a rerun), exclusive by gc while it removes code no record names,
  // so that gc never removes code a run is being created on (docs/checkpoint.md, "Retention").
  virtual Result<std::unique_ptr<CodeLock>> LockCode(bool exclusive) = 0;

  // Retention (store/retention.cc). Bytes on disk of a run's folder (its record, database,
  // mark, lock, origin).
  virtual uint64_t RunDiskBytes(const std::string& id) const = 0;
  // Removes a run that is not live: InvalidArgument (naming the pid) if a process holds it.
  // Its folder is renamed away first (a hidden name), so that no reader sees half a run,
  // then removed, with its mailbox. *freed: the bytes removed.
  virtual Status DeleteRun(const std::string& id, uint64_t* freed) = 0;
  // Removes code/HASH.flowc and .flow of every hash no run record names (under the
  // exclusive code lock); the hashes removed and bytes freed. With `dry_run`, only says,
  // counting the records of the runs `going` (about to be removed) as gone.
  virtual Status CollectCode(bool dry_run, const std::vector<std::string>& going, std::vector<std::string>* removed, uint64_t* freed) = 0;

  // AlreadyExists-like InvalidArgument if taken. An id given by the caller may be one of a
  // run whose folder was removed by hand, its row still in the index of packed runs: the
  // row goes first. An id from NewRunId (`generated_id`) was never used: no look.
  virtual Status CreateRunDir(const std::string& id, bool generated_id = false) = 0;
  // Removes a run's folder (an import that failed after creating it).
  virtual Status RemoveRunDir(const std::string& id) = 0;
  // Empties the folder of a run that has no record (a start that died), keeping its lock.
  virtual Status ClearRunDir(const std::string& id) = 0;
  // Atomic replace, durable.
  virtual Status WriteRun(const RunRecord& record) = 0;
  // The same with the record sealed as it was elsewhere (an import): `record` is `bytes` decoded.
  virtual Status WriteRunRecordBytes(const RunRecord& record, std::string_view bytes) = 0;
  // A rerun's or a fork's origin record (runtime/rerun.h), kept beside its run: written
  // atomically and durably; NotFound if the run has none.
  virtual Status WriteOrigin(const std::string& id, std::string_view bytes) = 0;
  virtual Status ReadOrigin(const std::string& id, std::string* bytes) const = 0;
  virtual Result<RunRecord> ReadRun(const std::string& id) const = 0;
  // The sealed record as stored (runs/ID/run, or inside runs/ID/packed): NotFound if neither.
  // *from_packed: read from the packed file.
  virtual Status ReadRunRecordBytes(const std::string& id, std::string* bytes, bool* from_packed = nullptr) const = 0;
  // Every run record; ones that cannot be read are passed to `unreadable`.
  virtual std::vector<RunRecord> ListRuns(const std::function<void(const std::string& id, const Status&)>& unreadable) const = 0;
  // The same, with what the index of packed runs (store/run_index.h) knows of each: the
  // packed runs that have a row are read from it, the others from their folders.
  // *index_status: why the index could not be read, if it could not (the runs are then
  // all read from their folders).
  virtual std::vector<ListedRun> ListRunEntries(const std::function<void(const std::string& id, const Status&)>& unreadable, Status* index_status = nullptr) const = 0;
  // The same, one run at a time to `each` (it may move from it), in id order.
  virtual void ForEachRun(const std::function<void(ListedRun& run)>& each, const std::function<void(const std::string& id, const Status&)>& unreadable, Status* index_status = nullptr) const = 0;
  // Adds a row to the index for each of these runs that is packed and not held by a
  // process (a store written before the index, a row lost): the next listing reads them
  // from it. Runs that are held, or not packed, are passed over.
  virtual Status IndexPackedRuns(const std::vector<std::string>& ids) = 0;
  // The records of the runs that are not packed (running, queued, in files): a worker's
  // periodic look, which packed runs need not (their wake hints say when they are due).
  // One failed open per packed run instead of a read.
  virtual std::vector<RunRecord> ListRunsInFiles(const std::function<void(const std::string& id, const Status&)>& unreadable) const = 0;
  virtual bool RunExists(const std::string& id) const = 0;

  // Takes the run's lock, or says which pid holds it.
  virtual Result<std::unique_ptr<RunLock>> LockRun(const std::string& id) = 0;
  // A worker's claim on a run it is about to hand to one of its processes, so that workers
  // on other machines pass it over (a lease held by the caller, which its child's LockRun
  // takes over): false if another holds it. A store whose locks are local (a folder) has
  // nothing to claim: true.
  virtual Result<bool> ClaimRun(const std::string& id) = 0;
  // How long a lease outlives a holder that stopped renewing it (a lost machine): a run
  // held by another is looked at again this long after. 0: locks end with their process.
  virtual int64_t LeaseMs() const = 0;
  // True, with the holder's pid, if a live process holds the run's lock.
  virtual bool IsRunLive(const std::string& id, int64_t* pid) const = 0;

  // runs/ID/, the folder of a run's files (its live socket: runtime/live.h); "" in a
  // store without folders, whose readers read a live run's state from the database.
  virtual std::string RunDir(const std::string& id) const = 0;

  // The run's checkpoint mark, to write after each checkpoint.
  virtual Result<std::unique_ptr<CheckpointMark>> OpenMark(const std::string& id) = 0;

  // Packed runs (PackedRun above): a store without folders packs nothing, and its runs
  // read as never packed.
  // Whether the run is packed now: runs/ID/packed, and no runs/ID/run (a pack or an unpack
  // cut short leaves both, and then the folder is whole and the packed file a copy of it).
  virtual bool IsPacked(const std::string& id) const = 0;
  virtual Result<PackedRun> ReadPacked(const std::string& id) const = 0;
  // Packs the run (its lock held, its database closed): NotFound-free no-op if it is
  // packed already; InvalidArgument, leaving it as it is, if its files take more than
  // `max_bytes`. Crash-safe at every step: the run is whole in one form or the other.
  virtual Status PackRun(const std::string& id, uint64_t max_bytes) = 0;
  // The run's database, read only (RunDb::Options::read_only), from its folder or, packed,
  // from its packed file.
  virtual Result<std::unique_ptr<RunDb>> OpenRunDbToRead(const std::string& id) const = 0;
  // Restores a packed run's record, mark and database files (its lock held), before it is
  // executed or written; removes a packed file left beside a whole folder. No-op otherwise.
  virtual Status UnpackRun(const std::string& id) = 0;

  // Shared state by name (circuit breakers, mailboxes): `update` gets the current bytes
  // ("" if none) and changes them, under an exclusive lock held across processes.
  virtual Status UpdateShared(const std::string& name, const std::function<void(std::string* bytes)>& update) = 0;
  virtual Status ReadShared(const std::string& name, std::string* bytes) = 0;

  // The wake index (store/wake_index.cc, docs/checkpoint.md "The wake index"): an empty file
  // wake/WAKE_MS-ID says run ID may be due at WAKE_MS (wall clock; 0: now, a signal came).
  // Hints only: the run record decides, and a worker drops a hint once it has acted on it.
  virtual Status NoteWake(const std::string& id, int64_t wake_ms) = 0;
  // Every hint; names that are not hints are ignored.
  virtual Status ListWakeHints(std::vector<WakeHint>* out) const = 0;
  virtual void DropWakeHint(const WakeHint& hint) = 0;
  // The folder of the hints, which a worker watches ("" in a store without folders).
  virtual std::string WakeDir() const = 0;
  // Hints as they are noted, for a store whose hints are not files: a descriptor a worker
  // polls, and the hints it announced. A folder store has none (NotSupported): a worker
  // watches WakeDir() and the schedules' folder instead.
  class WakeWatch {
   public:
    virtual ~WakeWatch() = default;
    virtual int fd() const = 0;
    // What else was announced since the last call.
    struct News {
      bool schedules_changed = false;           // a schedule was added, changed or removed
      std::map<std::string, int> slots_freed;   // queue -> slots given back: its queued runs may start
    };
    // The hints noted since the last call (a run id with wake_ms 0 for a cancel).
    virtual Status Take(std::vector<WakeHint>* hints, News* news) = 0;
  };
  virtual Result<std::unique_ptr<WakeWatch>> WatchWakes() = 0;

  // A run set aside by a worker after crashing its process K times in a row: runs/ID/poisoned
  // holds the last stderr. Workers skip it; `flow resume ID` by hand clears it and tries again.
  virtual Status SetPoisoned(const std::string& id, std::string_view last_stderr) = 0;
  virtual bool IsPoisoned(const std::string& id, std::string* last_stderr = nullptr) const = 0;
  virtual void ClearPoisoned(const std::string& id) = 0;
  // Counts one more crash in a row of the run's process (runs/ID/crashes: the count, a
  // newline, the last stderr): the count now. ClearCrashes when a process ends it cleanly
  // (suspended, completed, failed); resuming a poisoned run by hand clears only the mark,
  // so that one more crash sets it aside again.
  virtual Result<int> RecordCrash(const std::string& id, std::string_view last_stderr) = 0;
  virtual void ClearCrashes(const std::string& id) = 0;

  // flow cancel: a marker file runs/ID/cancel, seen by the run at its next effect or wait.
  virtual Status RequestCancel(const std::string& id) = 0;
  virtual bool CancelRequested(const std::string& id) const = 0;
  // The run's mark: NotFound if it has none (missing or empty); Corruption if it is damaged.
  // NotSupported in a store that keeps no marks: its checkpoints are transactions, and its
  // database is never behind what it acknowledged.
  virtual Result<uint64_t> ReadMark(const std::string& id) const = 0;

  // Queue caps and slots (store/queues.h). A cap of 0: none (never capped, or removed).
  virtual Result<uint32_t> ReadQueueCap(const std::string& queue) const = 0;
  // A lower cap than the runs executing now takes effect as they end: the slots past it
  // are no longer taken.
  virtual Status WriteQueueCap(const std::string& queue, uint32_t cap) = 0;
  // Every queue that has a cap, in name order.
  virtual Status ListCappedQueues(std::vector<std::string>* out) const = 0;
  // Takes a free slot of the `cap` slots of `queue`: *slot is null if every one is held.
  virtual Status TryTakeQueueSlot(const std::string& queue, uint32_t cap, std::unique_ptr<QueueSlot>* slot) = 0;
  // How many of the `cap` slots of `queue` are held now (by processes executing its runs).
  virtual uint32_t CountHeldQueueSlots(const std::string& queue, uint32_t cap) const = 0;

  // Schedules (store/schedules.h). The lock is waited for (its holders hold it briefly).
  virtual Result<std::unique_ptr<ScheduleLock>> LockSchedules() = 0;
  virtual Status WriteSchedule(const ScheduleRecord& record) = 0;
  // NotFound if there is no schedule NAME; Corruption if its record is damaged.
  virtual Result<ScheduleRecord> ReadSchedule(const std::string& name) const = 0;
  virtual Status DeleteSchedule(const std::string& name) = 0;
  // Every schedule, in name order; ones that cannot be read are passed to `unreadable`
  // (the store itself, unreadable, as "*").
  virtual std::vector<ScheduleRecord> ListSchedules(
      const std::function<void(const std::string& name, const Status&)>& unreadable) const = 0;
};

// An open store. Copies share it.
class Store {
 public:
  // Opens (with `create`, creates) the store at `location`: a folder, or a PostgreSQL
  // database given as a postgresql:// or postgres:// address (store/pg/pg_store.h).
  static Result<Store> Open(const std::string& location, bool create);
  explicit Store(std::shared_ptr<StoreImpl> impl) : impl_(std::move(impl)) {}
  using PackedRun = store::PackedRun;
  using WakeHint = store::WakeHint;
  static bool ParseWakeHint(std::string_view file, WakeHint* out);
  // For the process this is called in (a worker's child): PackRun adds no row to the
  // index; the parent adds the rows of its children's runs in one transaction
  // (IndexPackedRuns), instead of each child opening SQLite for one row.
  static void LeaveIndexRowsToParent();
  // For the process this is called in (a worker's child): LockRun takes over a claim its
  // parent made (ClaimRun). No other process takes a lease its parent holds.
  static void TakeClaimsOfParent();

  StoreKind kind() const { return impl_->kind(); }
  // The folder, or the database's address (what Open was given).
  const std::string& dir() const { return impl_->location(); }
  Result<std::unique_ptr<RunDb>> OpenRunDb(const std::string& id, bool create) { return impl_->OpenRunDb(id, create); }
  bool ReadableWhileLive() const { return impl_->ReadableWhileLive(); }
  Result<std::string> PutCode(std::string_view bytes) { return impl_->PutCode(bytes); }
  Status GetCode(const std::string& hash, std::string* bytes) const { return impl_->GetCode(hash, bytes); }
  Status PutSource(const std::string& hash, std::string_view text) { return impl_->PutSource(hash, text); }
  Status GetSource(const std::string& hash, std::string* text) const { return impl_->GetSource(hash, text); }
  Result<std::unique_ptr<CodeLock>> LockCode(bool exclusive) { return impl_->LockCode(exclusive); }
  uint64_t RunDiskBytes(const std::string& id) const { return impl_->RunDiskBytes(id); }
  Status DeleteRun(const std::string& id, uint64_t* freed) { return impl_->DeleteRun(id, freed); }
  Status CollectCode(bool dry_run, const std::vector<std::string>& going, std::vector<std::string>* removed, uint64_t* freed) { return impl_->CollectCode(dry_run, going, removed, freed); }
  Status CreateRunDir(const std::string& id, bool generated_id = false) { return impl_->CreateRunDir(id, generated_id); }
  Status RemoveRunDir(const std::string& id) { return impl_->RemoveRunDir(id); }
  Status ClearRunDir(const std::string& id) { return impl_->ClearRunDir(id); }
  Status WriteRun(const RunRecord& record) { return impl_->WriteRun(record); }
  Status WriteRunRecordBytes(const RunRecord& record, std::string_view bytes) {
    return impl_->WriteRunRecordBytes(record, bytes);
  }
  Status WriteOrigin(const std::string& id, std::string_view bytes) { return impl_->WriteOrigin(id, bytes); }
  Status ReadOrigin(const std::string& id, std::string* bytes) const { return impl_->ReadOrigin(id, bytes); }
  Result<RunRecord> ReadRun(const std::string& id) const { return impl_->ReadRun(id); }
  Status ReadRunRecordBytes(const std::string& id, std::string* bytes, bool* from_packed = nullptr) const { return impl_->ReadRunRecordBytes(id, bytes, from_packed); }
  std::vector<RunRecord> ListRuns(const std::function<void(const std::string& id, const Status&)>& unreadable) const { return impl_->ListRuns(unreadable); }
  std::vector<ListedRun> ListRunEntries(const std::function<void(const std::string& id, const Status&)>& unreadable, Status* index_status = nullptr) const { return impl_->ListRunEntries(unreadable, index_status); }
  void ForEachRun(const std::function<void(ListedRun& run)>& each, const std::function<void(const std::string& id, const Status&)>& unreadable, Status* index_status = nullptr) const { return impl_->ForEachRun(each, unreadable, index_status); }
  Status IndexPackedRuns(const std::vector<std::string>& ids) { return impl_->IndexPackedRuns(ids); }
  std::vector<RunRecord> ListRunsInFiles(const std::function<void(const std::string& id, const Status&)>& unreadable) const { return impl_->ListRunsInFiles(unreadable); }
  bool RunExists(const std::string& id) const { return impl_->RunExists(id); }
  Result<std::unique_ptr<RunLock>> LockRun(const std::string& id) { return impl_->LockRun(id); }
  Result<bool> ClaimRun(const std::string& id) { return impl_->ClaimRun(id); }
  int64_t LeaseMs() const { return impl_->LeaseMs(); }
  bool IsRunLive(const std::string& id, int64_t* pid) const { return impl_->IsRunLive(id, pid); }
  std::string RunDir(const std::string& id) const { return impl_->RunDir(id); }
  Result<std::unique_ptr<CheckpointMark>> OpenMark(const std::string& id) { return impl_->OpenMark(id); }
  bool IsPacked(const std::string& id) const { return impl_->IsPacked(id); }
  Result<PackedRun> ReadPacked(const std::string& id) const { return impl_->ReadPacked(id); }
  Status PackRun(const std::string& id, uint64_t max_bytes) { return impl_->PackRun(id, max_bytes); }
  Result<std::unique_ptr<RunDb>> OpenRunDbToRead(const std::string& id) const { return impl_->OpenRunDbToRead(id); }
  Status UnpackRun(const std::string& id) { return impl_->UnpackRun(id); }
  Status UpdateShared(const std::string& name, const std::function<void(std::string* bytes)>& update) { return impl_->UpdateShared(name, update); }
  Status ReadShared(const std::string& name, std::string* bytes) { return impl_->ReadShared(name, bytes); }
  Status NoteWake(const std::string& id, int64_t wake_ms) { return impl_->NoteWake(id, wake_ms); }
  Status ListWakeHints(std::vector<WakeHint>* out) const { return impl_->ListWakeHints(out); }
  void DropWakeHint(const WakeHint& hint) { return impl_->DropWakeHint(hint); }
  std::string WakeDir() const { return impl_->WakeDir(); }
  using WakeWatch = StoreImpl::WakeWatch;
  Result<std::unique_ptr<WakeWatch>> WatchWakes() { return impl_->WatchWakes(); }
  Status SetPoisoned(const std::string& id, std::string_view last_stderr) { return impl_->SetPoisoned(id, last_stderr); }
  bool IsPoisoned(const std::string& id, std::string* last_stderr = nullptr) const { return impl_->IsPoisoned(id, last_stderr); }
  void ClearPoisoned(const std::string& id) { return impl_->ClearPoisoned(id); }
  Result<int> RecordCrash(const std::string& id, std::string_view last_stderr) { return impl_->RecordCrash(id, last_stderr); }
  void ClearCrashes(const std::string& id) { return impl_->ClearCrashes(id); }
  Status RequestCancel(const std::string& id) { return impl_->RequestCancel(id); }
  bool CancelRequested(const std::string& id) const { return impl_->CancelRequested(id); }
  Result<uint64_t> ReadMark(const std::string& id) const { return impl_->ReadMark(id); }
  Result<uint32_t> ReadQueueCap(const std::string& queue) const { return impl_->ReadQueueCap(queue); }
  Status WriteQueueCap(const std::string& queue, uint32_t cap);  // a bad name: InvalidArgument
  Status ListCappedQueues(std::vector<std::string>* out) const { return impl_->ListCappedQueues(out); }
  Status TryTakeQueueSlot(const std::string& queue, uint32_t cap, std::unique_ptr<QueueSlot>* slot) {
    return impl_->TryTakeQueueSlot(queue, cap, slot);
  }
  uint32_t CountHeldQueueSlots(const std::string& queue, uint32_t cap) const {
    return impl_->CountHeldQueueSlots(queue, cap);
  }
  Result<std::unique_ptr<ScheduleLock>> LockSchedules() { return impl_->LockSchedules(); }
  Status WriteSchedule(const ScheduleRecord& record);  // a bad name: InvalidArgument
  Result<ScheduleRecord> ReadSchedule(const std::string& name) const;  // a bad name: InvalidArgument
  Status DeleteSchedule(const std::string& name) { return impl_->DeleteSchedule(name); }
  std::vector<ScheduleRecord> ListSchedules(
      const std::function<void(const std::string& name, const Status&)>& unreadable) const {
    return impl_->ListSchedules(unreadable);
  }

 private:
  std::shared_ptr<StoreImpl> impl_;
};

// The sealed run record (docs/checkpoint.md, "The run record"), as WriteRun stores it.
std::string EncodeRunRecord(const RunRecord& record);
// The bytes of runs/ID/packed (Store::PackRun stores them; docs/checkpoint.md, "Packed runs").
std::string EncodePackedRun(const PackedRun& run);
// Decodes those bytes (`what` names them in errors): Corruption if they are malformed.
Result<PackedRun> DecodePackedRun(std::string_view bytes, const std::string& what);
// Decodes a sealed run record (`what` names it in errors): Corruption if it is malformed,
// including a code hash that is not 32 lowercase hex digits.
Result<RunRecord> DecodeRunRecord(std::string_view bytes, const std::string& what);
// The bytes of the regular files under `dir` (0 if it cannot be read).
uint64_t DirectoryBytes(const std::string& dir);
bool IsValidCodeHash(std::string_view hash);
// The name of bytecode in code/: XXH3-128 of it, as 32 hex digits.
std::string CodeHash(std::string_view bytes);

// A store's location as messages show it: a database's address without its password.
std::string PrintableLocation(const std::string& location);

// Run ids name folders: letters, digits, `.`, `_`, `-`; 1 to 64 of them; not starting with `.` or `-`.
bool IsValidRunId(std::string_view id);
// A new sortable id: UTC time to the millisecond, then random hex.
std::string NewRunId();

// What ReadFile reads at most by default: far more than any record, far less than memory.
inline constexpr uint64_t kMaxReadFileBytes = 256ull << 20;
// Writes a file so that a crash leaves either the old or the new content: temp, fsync,
// rename, fsync of the folder.
Status WriteFileAtomically(const std::string& path, std::string_view bytes);
// Writes `bytes` to `path` (created or truncated) and syncs the file, not its folder.
Status WriteFileSynced(const std::string& path, std::string_view bytes);
// Reads a whole file: NotFound if it does not exist; Corruption if it is not a regular
// file, or holds more than `max_bytes`.
Status ReadFile(const std::string& path, std::string* bytes, uint64_t max_bytes = kMaxReadFileBytes);
// Makes a folder's entries (files created, renamed or removed in it) durable.
Status SyncDir(const std::string& dir);

}  // namespace flow::store
