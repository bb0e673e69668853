// The folder store (store.h's StoreImpl on the file system): bytecode by content hash
// (code/), one folder per run (runs/ID/: its record, lock, checkpoint mark and LevelDB,
// or, once the run is idle, its lock and one packed file) and state shared across runs
// (shared/). Every name is in store/keys.h; the layout and each file's format are in
// docs/checkpoint.md ("The store").
//
// One database per run, because LevelDB admits one process per database: any number of
// processes can run different runs of one store at once, and `flow runs` reads only the
// records.
#pragma once
#include <memory>
#include <string>

#include "store/run_index.h"
#include "store/store.h"

namespace flow::store {

class FileStore final : public StoreImpl {
 public:
  // Opens (with `create`, creates) the store folder.
  static Result<std::shared_ptr<FileStore>> Open(const std::string& dir, bool create);
  StoreKind kind() const override { return StoreKind::kFolder; }
  const std::string& location() const override { return dir_; }
  Result<std::unique_ptr<RunDb>> OpenRunDb(const std::string& id, bool create) override;
  bool ReadableWhileLive() const override { return false; }  // LevelDB: one process per database
  // runs/ID/db, the run's LevelDB.
  std::string RunDbDir(const std::string& id) const;

  Result<std::string> PutCode(std::string_view bytes) override;
  Status GetCode(const std::string& hash, std::string* bytes) const override;
  Status PutSource(const std::string& hash, std::string_view text) override;
  Status GetSource(const std::string& hash, std::string* text) const override;
  Result<std::unique_ptr<CodeLock>> LockCode(bool exclusive) override;
  uint64_t RunDiskBytes(const std::string& id) const override;
  Status DeleteRun(const std::string& id, uint64_t* freed) override;
  Status CollectCode(bool dry_run, const std::vector<std::string>& going, std::vector<std::string>* removed, uint64_t* freed) override;
  Status CreateRunDir(const std::string& id, bool generated_id = false) override;
  Status RemoveRunDir(const std::string& id) override;
  Status ClearRunDir(const std::string& id) override;
  Status WriteRun(const RunRecord& record) override;
  Status WriteRunRecordBytes(const RunRecord& record, std::string_view bytes) override;
  Status WriteOrigin(const std::string& id, std::string_view bytes) override;
  Status ReadOrigin(const std::string& id, std::string* bytes) const override;
  Result<RunRecord> ReadRun(const std::string& id) const override;
  Status ReadRunRecordBytes(const std::string& id, std::string* bytes, bool* from_packed = nullptr) const override;
  std::vector<RunRecord> ListRuns(const std::function<void(const std::string& id, const Status&)>& unreadable) const override;
  std::vector<ListedRun> ListRunEntries(const std::function<void(const std::string& id, const Status&)>& unreadable, Status* index_status = nullptr) const override;
  void ForEachRun(const std::function<void(ListedRun& run)>& each, const std::function<void(const std::string& id, const Status&)>& unreadable, Status* index_status = nullptr) const override;
  Status IndexPackedRuns(const std::vector<std::string>& ids) override;
  std::vector<RunRecord> ListRunsInFiles(const std::function<void(const std::string& id, const Status&)>& unreadable) const override;
  bool RunExists(const std::string& id) const override;
  Result<std::unique_ptr<RunLock>> LockRun(const std::string& id) override;
  Result<bool> ClaimRun(const std::string& id) override;
  int64_t LeaseMs() const override { return 0; }
  bool IsRunLive(const std::string& id, int64_t* pid) const override;
  std::string RunDir(const std::string& id) const override;
  Result<std::unique_ptr<CheckpointMark>> OpenMark(const std::string& id) override;
  bool IsPacked(const std::string& id) const override;
  Result<PackedRun> ReadPacked(const std::string& id) const override;
  Status PackRun(const std::string& id, uint64_t max_bytes) override;
  Result<std::unique_ptr<RunDb>> OpenRunDbToRead(const std::string& id) const override;
  Status UnpackRun(const std::string& id) override;
  Status UpdateShared(const std::string& name, const std::function<void(std::string* bytes)>& update) override;
  Status ReadShared(const std::string& name, std::string* bytes) override;
  Status NoteWake(const std::string& id, int64_t wake_ms) override;
  Status ListWakeHints(std::vector<WakeHint>* out) const override;
  void DropWakeHint(const WakeHint& hint) override;
  std::string WakeDir() const override;
  Result<std::unique_ptr<WakeWatch>> WatchWakes() override;
  Status SetPoisoned(const std::string& id, std::string_view last_stderr) override;
  bool IsPoisoned(const std::string& id, std::string* last_stderr = nullptr) const override;
  void ClearPoisoned(const std::string& id) override;
  Result<int> RecordCrash(const std::string& id, std::string_view last_stderr) override;
  void ClearCrashes(const std::string& id) override;
  Status RequestCancel(const std::string& id) override;
  bool CancelRequested(const std::string& id) const override;
  Result<uint64_t> ReadMark(const std::string& id) const override;
  Result<uint32_t> ReadQueueCap(const std::string& queue) const override;
  Status WriteQueueCap(const std::string& queue, uint32_t cap) override;
  Status ListCappedQueues(std::vector<std::string>* out) const override;
  Status TryTakeQueueSlot(const std::string& queue, uint32_t cap, std::unique_ptr<QueueSlot>* slot) override;
  uint32_t CountHeldQueueSlots(const std::string& queue, uint32_t cap) const override;
  Result<std::unique_ptr<ScheduleLock>> LockSchedules() override;
  Status WriteSchedule(const ScheduleRecord& record) override;
  Result<ScheduleRecord> ReadSchedule(const std::string& name) const override;
  Status DeleteSchedule(const std::string& name) override;
  std::vector<ScheduleRecord> ListSchedules(
      const std::function<void(const std::string& name, const Status&)>& unreadable) const override;

 private:
  explicit FileStore(std::string dir) : dir_(std::move(dir)) {}
  // Removes the run's row from the index of packed runs, durably, before the run changes.
  // A damaged index is removed whole (docs/checkpoint.md, "The index of packed runs").
  Status ForgetIndexedRun(const std::string& id);
  // Adds rows (the runs' locks held, the runs packed); a damaged index is replaced.
  Status IndexRows(const std::vector<IndexedRun>& rows);
  IndexedRun RowOfPackedRun(const std::string& id, std::string record) const;
  std::string dir_;
};

}  // namespace flow::store
