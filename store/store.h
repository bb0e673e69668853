// The store: where runs live. A folder (./.flow by default) holding bytecode by content
// hash (code/), one folder per run (runs/ID/: its record, lock, checkpoint mark and
// LevelDB, or, once the run is idle, its lock and one packed file) and state shared across
// runs (shared/). Every name is in store/keys.h; the
// layout and each file's format are in docs/checkpoint.md ("The store").
//
// One database per run, because LevelDB admits one process per database: any number of
// processes can run different runs of one store at once, and `flow runs` reads only the
// records. The store keeps bytes; it knows nothing of the VM.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/run_index.h"
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

 private:
  friend class RunDb;
  std::unique_ptr<leveldb::WriteBatch> batch_;  // built in place: no copy at write time
  size_t bytes_ = 0;
};

// One run's database.
class RunDb {
 public:
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
  static Result<std::unique_ptr<RunDb>> Open(const std::string& dir, const Options& options);
  ~RunDb();

  // Applies the batch atomically; with `sync`, on disk before returning.
  Status Write(const Batch& batch, bool sync);
  // NotFound if the key is absent; reads verify checksums.
  Status Get(std::string_view key, std::string* value);
  // The newest version of versioned key `base` written at or before checkpoint `at`
  // (store/keys.h, VersionedKey): NotFound if there is none, or it is a tombstone.
  // *version (if given) is the checkpoint that wrote it.
  Status GetAt(std::string_view base, uint32_t at, std::string* value, uint32_t* version = nullptr);
  // GetAt for many keys as of one checkpoint (a restore): one iterator, reused.
  class VersionReader {
   public:
    ~VersionReader();
    Status Get(std::string_view base, std::string* value, uint32_t* version = nullptr);

   private:
    friend class RunDb;
    VersionReader(RunDb* db, uint32_t at);
    RunDb* db_;
    uint32_t at_;
    std::unique_ptr<leveldb::Iterator> it_;
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
  // Moves what the log holds into a table file, so that the next open does not replay it
  // (LevelDB replays its whole log at every open: megabytes of state take it long).
  Status MoveLogToTable();
  // Deletes the records of a checkpoint whose writing in several batches a crash cut short
  // (kUnfinishedCheckpointKey), so that no read takes them for the newest versions.
  Status DropUnfinishedCheckpoint();
  // The size of the log this open replayed and kept appending to (0: none, or a new one).
  uint64_t replayed_log_bytes() const { return replayed_log_bytes_; }

 private:
  RunDb(leveldb::DB* db, std::string dir, std::unique_ptr<leveldb::Env> files, std::unique_ptr<leveldb::Env> overlay);
  Status Convert(const void* leveldb_status) const;
  std::unique_ptr<leveldb::Env> files_;    // Options::files: outlives overlay_
  std::unique_ptr<leveldb::Env> overlay_;  // read_only: outlives db_
  leveldb::DB* db_;
  std::string dir_;
  uint64_t replayed_log_bytes_ = 0;
  std::unique_ptr<VersionReader> latest_reader_;  // ReadLatest's, until the next Write; before db_ goes
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
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  friend class Store;
  explicit RunLock(int fd) : fd_(fd) {}
  int fd_;
};

// code/lock held (shared or exclusive) until destroyed.
class CodeLock {
 public:
  ~CodeLock();
  CodeLock(const CodeLock&) = delete;
  CodeLock& operator=(const CodeLock&) = delete;

 private:
  friend class Store;
  explicit CodeLock(int fd) : fd_(fd) {}
  int fd_;
};

// The number of the last checkpoint a run's database acknowledged, kept in runs/ID/mark
// beside the database: a truncated or rolled-back database log (which LevelDB reads as
// a clean end) shows as a database behind its mark. Written with pwrite after each
// checkpoint, without fsync: in sync mode the checkpoint itself is already on disk, so the
// mark is never ahead of it; a lost mark only weakens the check.
class CheckpointMark {
 public:
  ~CheckpointMark();
  CheckpointMark(const CheckpointMark&) = delete;
  CheckpointMark& operator=(const CheckpointMark&) = delete;
  Status Write(uint64_t checkpoint);
  // Makes the mark durable, with its entry in `folder` (once, after the first checkpoint):
  // later rewrites of its 16 bytes in place leave an older or a newer value after an OS
  // crash, never none, so a missing mark is damage.
  Status Sync(const std::string& folder);

 private:
  friend class Store;
  explicit CheckpointMark(int fd) : fd_(fd) {}
  int fd_;
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

class Store {
 public:
  // Opens (with `create`, creates) the store folder.
  static Result<Store> Open(const std::string& dir, bool create);
  const std::string& dir() const { return dir_; }

  // Stores bytecode under its content hash (once) and returns the hash.
  Result<std::string> PutCode(std::string_view bytes);
  Status GetCode(const std::string& hash, std::string* bytes) const;
  // The source text the bytecode `hash` was compiled from, kept beside it (code/HASH.flow,
  // written atomically, once: the first run that stores it). NotFound if none is stored
  // (a run started from a .flowc file, or stored before sources were).
  Status PutSource(const std::string& hash, std::string_view text);
  Status GetSource(const std::string& hash, std::string* text) const;
  // code/lock (flock): held shared by whoever stores code and then a run record naming it
  // (a start, an import, a rerun), exclusive by gc while it removes code no record names,
  // so that gc never removes code a run is being created on (docs/checkpoint.md, "Retention").
  Result<std::unique_ptr<CodeLock>> LockCode(bool exclusive);

  // Retention (store/retention.cc). Bytes on disk of a run's folder (its record, database,
  // mark, lock, origin).
  uint64_t RunDiskBytes(const std::string& id) const;
  // Removes a run that is not live: InvalidArgument (naming the pid) if a process holds it.
  // Its folder is renamed away first (a hidden name), so that no reader sees half a run,
  // then removed, with its mailbox. *freed: the bytes removed.
  Status DeleteRun(const std::string& id, uint64_t* freed);
  // Removes code/HASH.flowc and .flow of every hash no run record names (under the
  // exclusive code lock); the hashes removed and bytes freed. With `dry_run`, only says,
  // counting the records of the runs `going` (about to be removed) as gone.
  Status CollectCode(bool dry_run, const std::vector<std::string>& going, std::vector<std::string>* removed,
                     uint64_t* freed);

  // AlreadyExists-like InvalidArgument if taken. An id given by the caller may be one of a
  // run whose folder was removed by hand, its row still in the index of packed runs: the
  // row goes first. An id from NewRunId (`generated_id`) was never used: no look.
  Status CreateRunDir(const std::string& id, bool generated_id = false);
  // Removes a run's folder (an import that failed after creating it).
  Status RemoveRunDir(const std::string& id);
  // Empties the folder of a run that has no record (a start that died), keeping its lock.
  Status ClearRunDir(const std::string& id);
  Status WriteRun(const RunRecord& record);    // atomic replace, synced
  Result<RunRecord> ReadRun(const std::string& id) const;
  // The sealed record as stored (runs/ID/run, or inside runs/ID/packed): NotFound if neither.
  // *from_packed: read from the packed file.
  Status ReadRunRecordBytes(const std::string& id, std::string* bytes, bool* from_packed = nullptr) const;
  // Every run record; ones that cannot be read are passed to `unreadable`.
  std::vector<RunRecord> ListRuns(const std::function<void(const std::string& id, const Status&)>& unreadable) const;
  // The same, with what the index of packed runs (store/run_index.h) knows of each: the
  // packed runs that have a row are read from it, the others from their folders.
  // *index_status: why the index could not be read, if it could not (the runs are then
  // all read from their folders).
  std::vector<ListedRun> ListRunEntries(const std::function<void(const std::string& id, const Status&)>& unreadable,
                                        Status* index_status = nullptr) const;
  // The same, one run at a time to `each` (it may move from it), in id order.
  void ForEachRun(const std::function<void(ListedRun& run)>& each,
                  const std::function<void(const std::string& id, const Status&)>& unreadable,
                  Status* index_status = nullptr) const;
  // Adds a row to the index for each of these runs that is packed and not held by a
  // process (a store written before the index, a row lost): the next listing reads them
  // from it. Runs that are held, or not packed, are passed over.
  Status IndexPackedRuns(const std::vector<std::string>& ids);
  // The records of the runs that are not packed (running, queued, in files): a worker's
  // periodic look, which packed runs need not (their wake hints say when they are due).
  // One failed open per packed run instead of a read.
  std::vector<RunRecord> ListRunsInFiles(const std::function<void(const std::string& id, const Status&)>& unreadable) const;
  bool RunExists(const std::string& id) const;

  // Takes the run's lock, or says which pid holds it.
  Result<std::unique_ptr<RunLock>> LockRun(const std::string& id);
  // True, with the holder's pid, if a live process holds the run's lock.
  bool IsRunLive(const std::string& id, int64_t* pid) const;

  std::string RunDbDir(const std::string& id) const;
  // runs/ID/, the folder of a run's files.
  std::string RunDir(const std::string& id) const;

  Result<std::unique_ptr<CheckpointMark>> OpenMark(const std::string& id);

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
  // Whether the run is packed now: runs/ID/packed, and no runs/ID/run (a pack or an unpack
  // cut short leaves both, and then the folder is whole and the packed file a copy of it).
  bool IsPacked(const std::string& id) const;
  Result<PackedRun> ReadPacked(const std::string& id) const;
  // Packs the run (its lock held, its database closed): NotFound-free no-op if it is
  // packed already; InvalidArgument, leaving it as it is, if its files take more than
  // `max_bytes`. Crash-safe at every step: the run is whole in one form or the other.
  Status PackRun(const std::string& id, uint64_t max_bytes);
  // For the process this is called in (a worker's child): PackRun adds no row to the
  // index; the parent adds the rows of its children's runs in one transaction
  // (IndexPackedRuns), instead of each child opening SQLite for one row.
  static void LeaveIndexRowsToParent();
  // The run's database, read only (RunDb::Options::read_only), from its folder or, packed,
  // from its packed file.
  Result<std::unique_ptr<RunDb>> OpenRunDbToRead(const std::string& id) const;
  // Restores a packed run's record, mark and database files (its lock held), before it is
  // executed or written; removes a packed file left beside a whole folder. No-op otherwise.
  Status UnpackRun(const std::string& id);

  // Shared state by name (circuit breakers, mailboxes): `update` gets the current bytes
  // ("" if none) and changes them, under an exclusive lock held across processes.
  Status UpdateShared(const std::string& name, const std::function<void(std::string* bytes)>& update);
  Status ReadShared(const std::string& name, std::string* bytes);

  // The wake index (store/wake_index.cc, docs/checkpoint.md "The wake index"): an empty file
  // wake/WAKE_MS-ID says run ID may be due at WAKE_MS (wall clock; 0: now, a signal came).
  // Hints only: the run record decides, and a worker drops a hint once it has acted on it.
  Status NoteWake(const std::string& id, int64_t wake_ms);
  struct WakeHint {
    int64_t wake_ms = 0;
    std::string run_id;
    std::string file;  // its name in wake/
  };
  // Every hint; names that are not hints are ignored.
  Status ListWakeHints(std::vector<WakeHint>* out) const;
  static bool ParseWakeHint(std::string_view file, WakeHint* out);
  void DropWakeHint(const WakeHint& hint);
  std::string WakeDir() const;

  // A run set aside by a worker after crashing its process K times in a row: runs/ID/poisoned
  // holds the last stderr. Workers skip it; `flow resume ID` by hand clears it and tries again.
  Status SetPoisoned(const std::string& id, std::string_view last_stderr);
  bool IsPoisoned(const std::string& id, std::string* last_stderr = nullptr) const;
  void ClearPoisoned(const std::string& id);
  // Counts one more crash in a row of the run's process (runs/ID/crashes: the count, a
  // newline, the last stderr): the count now. ClearCrashes when a process ends it cleanly
  // (suspended, completed, failed); resuming a poisoned run by hand clears only the mark,
  // so that one more crash sets it aside again.
  Result<int> RecordCrash(const std::string& id, std::string_view last_stderr);
  void ClearCrashes(const std::string& id);

  // flow cancel: a marker file runs/ID/cancel, seen by the run at its next effect or wait.
  Status RequestCancel(const std::string& id);
  bool CancelRequested(const std::string& id) const;
  // The run's mark: NotFound if it has none (missing or empty); Corruption if it is damaged.
  Result<uint64_t> ReadMark(const std::string& id) const;

 private:
  explicit Store(std::string dir) : dir_(std::move(dir)) {}
  // Removes the run's row from the index of packed runs, durably, before the run changes.
  // A damaged index is removed whole (docs/checkpoint.md, "The index of packed runs").
  Status ForgetIndexedRun(const std::string& id);
  // Adds rows (the runs' locks held, the runs packed); a damaged index is replaced.
  Status IndexRows(const std::vector<IndexedRun>& rows);
  IndexedRun RowOfPackedRun(const std::string& id, std::string record) const;
  std::string dir_;
};

// The sealed run record (docs/checkpoint.md, "The run record"), as WriteRun stores it.
std::string EncodeRunRecord(const RunRecord& record);
// The bytes of runs/ID/packed (Store::PackRun stores them; docs/checkpoint.md, "Packed runs").
std::string EncodePackedRun(const Store::PackedRun& run);
// Decodes those bytes (`what` names them in errors): Corruption if they are malformed.
Result<Store::PackedRun> DecodePackedRun(std::string_view bytes, const std::string& what);
// Decodes a sealed run record (`what` names it in errors): Corruption if it is malformed,
// including a code hash that is not 32 lowercase hex digits.
Result<RunRecord> DecodeRunRecord(std::string_view bytes, const std::string& what);
// The bytes of the regular files under `dir` (0 if it cannot be read).
uint64_t DirectoryBytes(const std::string& dir);
bool IsValidCodeHash(std::string_view hash);
// The name of bytecode in code/: XXH3-128 of it, as 32 hex digits.
std::string CodeHash(std::string_view bytes);

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
