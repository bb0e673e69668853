// Every name the store writes to disk, in one place (as LevelDB's filename.h): the store's
// folders and files, the keys of a run's database, and the names of shared state. What is
// stored under each is in docs/checkpoint.md. These names are on disk: do not change them
// (a change is a format change: version it and document it there).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace flow::store {

// --- The store's folders and files (docs/checkpoint.md, "The store") ---

inline constexpr char kDefaultStoreDir[] = ".flow";  // when neither --store nor FLOW_STORE
inline constexpr char kCodeDir[] = "code";           // code/HASH.flowc: bytecode by content hash
inline constexpr char kCodeSuffix[] = ".flowc";
inline constexpr char kSourceSuffix[] = ".flow";     // code/HASH.flow: the source HASH.flowc was compiled from
inline constexpr char kCodeLockFile[] = "lock";      // code/lock: flock; shared while a run is created, exclusive in gc
inline constexpr char kRunsDir[] = "runs";           // runs/ID/: one folder per run
inline constexpr char kSharedDir[] = "shared";       // shared/HEX(NAME): state shared across runs
inline constexpr char kWakeDir[] = "wake";           // wake/WAKE_MS-ID: empty files, hints of when a run may be due
inline constexpr char kRunIndexFile[] = "index.sqlite";  // the index of packed runs (SQLite; "The index of packed runs")
// index.sqlite-writer: an flock, held by the process that writes the index (writers queue on
// it in the kernel instead of retrying SQLite's lock)
inline constexpr char kRunIndexWriterSuffix[] = "-writer";

// Inside runs/ID/.
inline constexpr char kRunRecordFile[] = "run";  // the run record ("The run record")
inline constexpr char kLockFile[] = "lock";      // the run lock, an fcntl record lock ("Locks")
inline constexpr char kMarkFile[] = "mark";      // the checkpoint mark ("The checkpoint mark")
inline constexpr char kCancelFile[] = "cancel";  // present once `flow cancel` was asked
inline constexpr char kDbDir[] = "db";           // the run's LevelDB ("The run database")
inline constexpr char kOriginFile[] = "origin";  // a rerun's origin ("The origin of a rerun")
inline constexpr char kPoisonedFile[] = "poisoned";  // set aside by a worker after repeated crashes: their last stderr
inline constexpr char kCrashesFile[] = "crashes";    // a worker's count of the run's crashes in a row, then the last stderr
inline constexpr char kPackedFile[] = "packed";      // an idle run's record, mark and database in one file ("Packed runs")

inline std::string CodePath(const std::string& store_dir, std::string_view hash) {
  return store_dir + "/" + kCodeDir + "/" + std::string(hash) + kCodeSuffix;
}
inline std::string SourcePath(const std::string& store_dir, std::string_view hash) {
  return store_dir + "/" + kCodeDir + "/" + std::string(hash) + kSourceSuffix;
}
inline std::string CodeLockPath(const std::string& store_dir) {
  return store_dir + "/" + kCodeDir + "/" + kCodeLockFile;
}
inline std::string RunsPath(const std::string& store_dir) { return store_dir + "/" + kRunsDir; }
inline std::string RunIndexPath(const std::string& store_dir) { return store_dir + "/" + kRunIndexFile; }
inline std::string RunPath(const std::string& store_dir, const std::string& id) {
  return RunsPath(store_dir) + "/" + id;
}
// A file or folder inside runs/ID/: `name` is one of the k...File / kDbDir above.
inline std::string RunFilePath(const std::string& store_dir, const std::string& id, const char* name) {
  return RunPath(store_dir, id) + "/" + name;
}
inline std::string SharedPath(const std::string& store_dir) { return store_dir + "/" + kSharedDir; }
// shared/HEX(NAME): the file of the shared state NAME (its bytes in lowercase hex).
inline std::string SharedFilePath(const std::string& store_dir, std::string_view name) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string path = SharedPath(store_dir) + "/";
  for (unsigned char c : name) path += {kHex[c >> 4], kHex[c & 15]};
  return path;
}

// Queues (runtime/queue.h; docs/checkpoint.md, "Queues"): queues/Q/ per queue Q that was
// given a cap, holding its config record and its slot files, flock'ed by the process that
// executes a run of Q (runs that hold none wait in the queue).
inline constexpr char kQueuesDir[] = "queues";
inline constexpr char kQueueConfigFile[] = "config";  // queues/Q/config: the cap, a sealed record
inline constexpr char kQueueSlotPrefix[] = "slot.";   // queues/Q/slot.K, K in 0..cap-1: empty, flock'ed
inline constexpr char kDefaultQueue[] = "default";    // the queue of flow submit without --queue
inline std::string QueuesPath(const std::string& store_dir) { return store_dir + "/" + kQueuesDir; }
inline std::string QueuePath(const std::string& store_dir, const std::string& queue) {
  return QueuesPath(store_dir) + "/" + queue;
}
inline std::string QueueSlotPath(const std::string& store_dir, const std::string& queue, uint32_t slot) {
  return QueuePath(store_dir, queue) + "/" + kQueueSlotPrefix + std::to_string(slot);
}

// Schedules (runtime/schedule.h; docs/checkpoint.md, "Schedules"): schedules/NAME, one
// sealed record per schedule; schedules/lock (flock, exclusive) is held by whoever changes
// or fires schedules, so that two workers fire a tick once.
inline constexpr char kSchedulesDir[] = "schedules";
inline constexpr char kScheduleLockFile[] = ".lock";  // not a schedule name (names do not start with .)
inline std::string SchedulesPath(const std::string& store_dir) { return store_dir + "/" + kSchedulesDir; }
inline std::string SchedulePath(const std::string& store_dir, const std::string& name) {
  return SchedulesPath(store_dir) + "/" + name;
}

// --- Keys of a run's database (docs/checkpoint.md, "The run database (LevelDB keys)") ---

// Checkpoint state is versioned: the state record, heap objects and list chunks are stored
// under their key + a version suffix (VersionedKey), one version per checkpoint that wrote
// them, so that every kept checkpoint can be read back (docs/checkpoint.md, "Kept checkpoints").
inline constexpr char kStateKey[] = "s";           // + version: the state record of a checkpoint
inline constexpr char kObjectPrefix[] = "o";       // + id (4 bytes, big-endian) + version: a heap object
inline constexpr char kHistoryPrefix[] = "h";      // + seq (8 bytes, big-endian): a history entry
inline constexpr char kStepEventPrefix[] = "t";    // + effects done (8, big-endian) + n (4): a step event
inline constexpr char kSignalCountPrefix[] = "g";  // + signal name: signals of that name received
inline constexpr char kCancelKey[] = "c";          // present once `cancelled` was raised in the run
inline constexpr char kEndStepsKey[] = "f";        // the steps a run had completed when it ended (flow rerun)
inline constexpr char kListChunkPrefix[] = "l";    // + id (4, big-endian) + chunk (4) + version: a chunk of a long list
inline constexpr char kChangeListPrefix[] = "v";   // + checkpoint (4, big-endian): the keys that checkpoint wrote
inline constexpr char kErrorKey[] = "e";           // the uncaught error that ended the run, with its stack
// Present while a checkpoint too big for one batch is being written in several: its
// version (4 bytes, big-endian). Its records are dropped at the next writable open.
inline constexpr char kUnfinishedCheckpointKey[] = "p";

namespace keys_internal {
inline void AppendBigEndian(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>(v >> (8 * i)));
}
}  // namespace keys_internal

// Big-endian numbers, so that keys sort in numeric order.
inline std::string ObjectKey(uint32_t id) {
  std::string k = kObjectPrefix;
  keys_internal::AppendBigEndian(&k, id, 4);
  return k;
}
inline std::string ListChunkKey(uint32_t id, uint32_t chunk) {
  std::string k = kListChunkPrefix;
  keys_internal::AppendBigEndian(&k, id, 4);
  keys_internal::AppendBigEndian(&k, chunk, 4);
  return k;
}
inline std::string HistoryKey(uint64_t seq) {
  std::string k = kHistoryPrefix;
  keys_internal::AppendBigEndian(&k, seq, 8);
  return k;
}
// A versioned key: `base` (kStateKey, an ObjectKey or a ListChunkKey) + the checkpoint that
// wrote it, inverted (4 bytes, big-endian), so that a key's newest version sorts first and a
// seek to VersionedKey(base, N) lands on the newest version written at or before N.
// An empty value is a tombstone: the object was freed at that checkpoint.
inline constexpr size_t kVersionBytes = 4;
inline constexpr uint32_t kLatestCheckpoint = 0xffffffff;  // "the newest version", for reading
// The version of every key of a run that keeps only its last checkpoint: newer than any
// checkpoint, so only a read of the latest finds it.
inline constexpr uint32_t kOnlyVersion = 0xfffffffe;
inline std::string VersionedKey(std::string_view base, uint32_t checkpoint) {
  std::string k(base);
  keys_internal::AppendBigEndian(&k, ~checkpoint, kVersionBytes);
  return k;
}
// The checkpoint that wrote a versioned key of a base `base_size` bytes long.
inline uint32_t VersionOfKey(std::string_view key, size_t base_size) {
  uint32_t inverted = 0;
  for (size_t i = base_size; i < base_size + kVersionBytes; ++i) inverted = inverted << 8 | static_cast<uint8_t>(key[i]);
  return ~inverted;
}
inline std::string ChangeListKey(uint32_t checkpoint) {
  std::string k = kChangeListPrefix;
  keys_internal::AppendBigEndian(&k, checkpoint, 4);
  return k;
}

inline uint32_t CheckpointOfChangeListKey(std::string_view key) { return ~VersionOfKey(key, 1); }

// Sorts among the history entries of the effects it happened between.
inline std::string StepEventKey(uint64_t effects_done, uint32_t n) {
  std::string k = kStepEventPrefix;
  keys_internal::AppendBigEndian(&k, effects_done, 8);
  keys_internal::AppendBigEndian(&k, n, 4);
  return k;
}
inline std::string SignalCountKey(std::string_view signal) { return kSignalCountPrefix + std::string(signal); }
// The signal name of a key that starts with kSignalCountPrefix.
inline std::string_view SignalOfCountKey(std::string_view key) { return key.substr(1); }

// --- Names of shared state (docs/checkpoint.md, "Shared state"): stored as shared/HEX(NAME) ---

inline std::string MailboxName(const std::string& run_id) { return "mailbox:" + run_id; }  // a run's signals
inline std::string BreakerName(const std::string& breaker) { return "breaker:" + breaker; }  // a circuit breaker
inline std::string LimitName(const std::string& limit) { return "limit:" + limit; }  // a shared limit (`limit NAME`)

}  // namespace flow::store
