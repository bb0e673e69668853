// The PostgreSQL store (store.h's StoreImpl on a database that workers on many machines
// share): runs, their databases' keys (one WriteBatch = one transaction), code, shared
// state and wake hints as rows; leases instead of run locks. The schema, its version and
// why it is so are in docs/checkpoint.md ("The PostgreSQL store"); the SQL is in
// store/pg/schema.cc.
#pragma once
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <condition_variable>

#include "store/pg/connection.h"
#include "store/store.h"

namespace flow::store::pg {

// How long a lease on a run lasts unless renewed (a third of it apart): a worker that
// dies loses its runs to another this long after its last renewal. FLOW_LEASE_MS sets it.
inline constexpr int64_t kDefaultLeaseMs = 10'000;

// Whether lease holder `owner` names a process of this machine that has died: its lease
// need not be waited out (a kill -9 here is seen at once, as a file store's lock is
// released at once).
bool OwnerDiedHere(std::string_view owner);
// Slot `index` of `queue` as the renewal names it: QUEUE:INDEX (a queue name has no ':').
std::string SlotKey(const std::string& queue, uint32_t index);

// What flow_wake carries beside runs' hints ("WAKE_MS ID"): a schedule changed; a slot of
// queue Q was given back, "slot:Q" (store/pg/pg_queues.cc). Neither has a space, which
// hints have.
inline constexpr char kSchedulesChanged[] = "schedules";
inline constexpr char kSlotFreedPrefix[] = "slot:";

class PgStore final : public StoreImpl, public std::enable_shared_from_this<PgStore> {
 public:
  // Connects; with `create`, creates the schema (or migrates an older one). A database
  // without the schema is NotFound unless `create`; one written by a newer flow is refused.
  static Result<std::shared_ptr<PgStore>> Open(const std::string& address, bool create);
  ~PgStore() override;
  StoreKind kind() const override { return StoreKind::kPostgres; }
  const std::string& location() const override { return address_; }
  Result<std::unique_ptr<RunDb>> OpenRunDb(const std::string& id, bool create) override;
  bool ReadableWhileLive() const override { return true; }
  // Who holds this process's leases: host:pid:random.
  const std::string& owner() const { return owner_; }
  Connection& connection() { return *conn_; }

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
  int64_t LeaseMs() const override { return lease_ms_; }
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

  // Leases (LockRun): taken, renewed by a thread of their own, given back.
  void ReleaseLease(const std::string& id);
  // As `owner`; `from_parent`: a claim of this process's parent is taken over too.
  Result<bool> TakeLease(const std::string& id, const std::string& owner, bool from_parent);
  // A queue slot (TryTakeQueueSlot), given back.
  void ReleaseQueueSlot(const std::string& queue, uint32_t index);

 private:
  PgStore(std::string address, std::unique_ptr<Connection> conn);
  Status StartRenewer();  // under mu_
  void StopRenewerIfIdle();
  void RenewLeases(uint64_t generation);  // the renewal thread: leases and queue slots
  // Takes slot `index` of `queue` if it is free or its lease ran out; or, given its holder,
  // a process of this machine that died, from that holder.
  Result<bool> TakeQueueSlot(const std::string& queue, uint32_t index, const std::string& dead_holder);
  std::string address_;
  std::unique_ptr<Connection> conn_;  // every statement of this process's threads but renewals
  std::string owner_;
  int64_t lease_ms_;
  std::mutex mu_;
  std::condition_variable wake_renewer_;
  std::set<std::string> leases_;  // the runs whose lease this process holds
  std::set<std::pair<std::string, uint32_t>> slots_;  // the queue slots it holds
  bool stopping_ = false;
  uint64_t renewer_generation_ = 0;  // a thread of an earlier one ends
  std::thread renewer_;
};

}  // namespace flow::store::pg
