// The EffectJournal that makes runs durable: it records each effect's intent and, after
// it, one atomic write of its outcome and the VM's checkpoint (see journal.cc).
#pragma once
#include <atomic>
#include <map>
#include <set>
#include <string>

#include "runtime/live_trace.h"
#include "runtime/runtime.h"
#include "store/keys.h"
#include "store/store.h"
#include "vm/journal.h"
#include "vm/vm.h"

namespace flow::runtime {

// 2: handlers carry step_count_at_open, a step's pc is its STEP_BEGIN; history state 4 (in doubt);
// history entries carry pre_state; the VM header ends with the budget graces.
// 3: ints as zigzag varints; lists longer than 256 items stored in chunks (`l` keys); each
//    handler kind writes its own fields (docs/checkpoint.md, "VM header").
// 4: tasks (issue 10): the header holds the run-wide state and the running task's
//    execution; every task is an object (kind 8) with its own, written when it changes;
//    open upvalues belong to the task whose list holds them; value tag 11 (task).
// 5: kept checkpoints (issue 11): the state record, objects and chunks under versioned keys
//    (a version per checkpoint that wrote them, tombstones for freed ones), change lists `v`.
inline constexpr uint8_t kRunDbRecordVersion = 5;

// How much of an effect's arguments and result (compact JSON) its history entry keeps:
// whole below this, cut above (docs/checkpoint.md, "History entry").
inline constexpr size_t kHistoryValueCap = 1 << 20;

// What the journal needs of the process around the VM, beyond a VmHost.
class RunHost : public VmHost {
 public:
  virtual Status Flush() = 0;  // the program's output, before each checkpoint: not ok if it failed
  virtual void set_key(const std::string& key) = 0;  // the idempotency key of the running effect
  virtual int64_t virtual_now_ms() const = 0;  // the run's clock under --virtual-time, else 0
  virtual void AddToCheckpoint(store::Batch* batch) {}  // host state that commits with it
  virtual void Warn(std::string_view message) {}  // for the operator (may come from another thread)
};

// The name of a run's mailbox in the store's shared state (store/keys.h).
using store::MailboxName;

// The test-only crash hook: FLOW_CRASH_AT=K:POINT kills the process with SIGKILL at POINT
// (before-intent, after-intent, after-effect, after-checkpoint) of the K-th effect.
void CrashPoint(uint64_t seq, std::string_view point);

class StoreJournal : public EffectJournal {
 public:
  StoreJournal(store::RunDb* db, store::CheckpointMark* mark, RunHost* host, std::string run_id, bool sync,
               uint64_t checkpoint);

  Status BeforeEffect(VM& vm, uint64_t seq, uint16_t builtin, const Value* args, int argc) override;
  Status AfterEffect(VM& vm, uint64_t seq, uint16_t builtin, Value outcome, bool raised) override;
  Status RecordPreState(VM& vm, std::string_view pre_state) override;
  const std::string* ResumedPreState(VM& vm) override;
  Status OnceStepStarted(VM& vm) override;
  // Step events wait for the next checkpoint's batch (or Flush at the end of the run).
  void OnStep(VM& vm, const std::string& key, bool completed, int64_t duration_ms) override;
  // A step of `inherited` (a rerun's, taken from `origin_run`) entered the first time:
  // a "step reused" event. Others (a step entered again in the same run) record nothing.
  void OnStepReused(VM& vm, const std::string& key) override;
  // flow rerun: the effects inside steps carry the idempotency keys of `run` (the first
  // run of a chain of reruns), RUN/KEY/n, as the same logical calls they were there; and
  // the steps it took over from `origin_run`, not yet reported as reused.
  void SetRerun(std::string step_key_run, std::string origin_run, std::set<std::string> inherited) {
    step_key_run_ = std::move(step_key_run);
    origin_run_ = std::move(origin_run);
    inherited_ = std::move(inherited);
  }
  // A record written with the next checkpoint, or by Flush (the steps of an ended run).
  void AddPending(std::string key, std::string value) { step_events_.emplace_back(std::move(key), std::move(value)); }
  // An event of the run's history that is not an effect (a step event's key and format),
  // written with the next checkpoint: its seq is the effects done.
  void AddEvent(VM& vm, HistoryEntry e);
  Status Flush();
  // Makes every checkpoint written so far durable (async runs: before their record says
  // how far they got, so that a record is never ahead of its database).
  Status Sync();

  // For a run that stops to be resumed later (suspended): when its log holds much (over
  // kSettleBytes: the log this open kept, and the checkpoints since), moves it into a
  // table, so that the resume does not replay it (docs/checkpoint.md, "Resume cost").
  Status Settle();
  static constexpr size_t kSettleBytes = 1 << 20;
  // A checkpoint bigger than this is written in batches of about this size (WriteCheckpoint).
  static constexpr size_t kSplitBytes = 1 << 20;

  Status Suspending(VM& vm) override;
  // The run stopped (its record says how): the live trace export, if any, sends what is
  // left (the run's and tasks' spans once it has ended) and flushes, with a bounded wait.
  void RunStopped(const store::RunRecord& record);
  // Adds the VM's changes (or everything, when `full`) to `batch` and writes it.
  Status WriteCheckpoint(VM& vm, bool full, store::Batch* batch);

  uint64_t checkpoint() const { return checkpoint_; }
  // A run that goes on in a new process (resume, fork): its step events after effect
  // `effects_done` continue the numbers of those already stored there, never reuse them.
  Status ContinueStepEvents(uint64_t effects_done);
  store::RunDb* db() const { return db_; }
  // How far the run is, for readers of a live run (LiveServer): set after each checkpoint.
  const std::atomic<uint64_t>* live_effects() const { return &live_effects_; }
  const std::atomic<uint64_t>* live_checkpoint() const { return &live_checkpoint_; }
  // Which past checkpoints to keep (store::RunRecord::keep_checkpoints), and how many bytes
  // of checkpoints the run's database already holds (for the default's cap).
  void set_keep(uint32_t keep, uint64_t bytes_kept) {
    keep_ = keep;
    bytes_kept_ = bytes_kept;
  }
  // The uncaught error that ended the run, under kErrorKey (runtime/error_record.cc).
  Status RecordUncaught(const ErrorReport& error);
  // The effect that was in flight when the run stopped: if it is a wait, running it again
  // waits only what was left of it.
  // Each is matched by its idempotency key when the resumed run makes it again.
  void SetResumedInFlight(const HistoryEntry& entry) { resumed_in_flight_[entry.idempotency_key] = entry; }
  size_t last_checkpoint_bytes() const { return last_checkpoint_bytes_; }
  // For benchmarks: keep a copy of the puts of the last checkpoint's batch.
  void set_keep_last_batch(bool keep) { keep_last_batch_ = keep; }
  const std::vector<std::pair<std::string, std::string>>& last_batch() const { return last_batch_; }

 private:
  store::RunDb* db_;
  store::CheckpointMark* mark_;
  RunHost* host_;
  std::string run_id_;
  bool sync_;
  uint64_t checkpoint_;
  HistoryEntry entry_;   // the effect begun last
  int64_t started_us_ = 0;
  bool entry_open_ = false;  // entry_ has no outcome yet
  // Effects of tasks that wait (sleeps) while others run: their entries until they end.
  struct OpenEffect {
    HistoryEntry entry;
    int64_t started_us;
  };
  std::map<uint64_t, OpenEffect> waiting_;
  std::map<std::string, int64_t> open_steps_;  // task + '\0' + key -> when it began (µs), in this process
  bool ResumedWait(uint64_t seq, uint16_t builtin);
  std::map<std::string, HistoryEntry> resumed_in_flight_;  // by idempotency key, not yet made again
  std::string step_key_run_;  // flow rerun: SetRerun
  std::string origin_run_;
  std::set<std::string> inherited_;
  HistoryEntry in_flight_;  // the one the running effect matched
  int64_t now_ms_ = 0;
  int64_t wall_minus_steady_us_;  // one wall-clock read at start; effects read the steady clock only
  std::unique_ptr<LiveTrace> trace_;  // FLOW_OTLP_ENDPOINT's export; null (no cost) when unset
  std::string scratch_;
  store::Batch batch_;  // reused by every checkpoint, as are the buffers below
  store::Batch records_;  // a checkpoint's heap records, before they join its batch (or go ahead of it)
  std::string header_;  // the VM header of the checkpoint being written (reused)
  std::vector<std::pair<std::string, std::string>> step_events_;
  uint32_t step_event_count_ = 0;
  std::string record_buf_;
  size_t last_checkpoint_bytes_ = 0;
  size_t unsettled_bytes_ = 0;  // in the log: kept by the open, or written since
  // Kept checkpoints (docs/checkpoint.md, "Kept checkpoints").
  uint32_t keep_ = store::kKeepDefault;
  uint64_t bytes_kept_ = 0;       // checkpoint bytes written by the run (approximately)
  uint64_t pruned_through_ = 0;   // checkpoints up to this one were pruned
  bool pruned_known_ = false;     // pruned_through_ is known (after a resume: once looked up)
  std::string change_list_;       // the keys the checkpoint being written writes (reused)
  uint32_t KeepLast() const;      // how many checkpoints to keep now; 0: all
  uint32_t VersionFor(uint32_t checkpoint) const;  // the version its keys are written at
  Status Prune(uint32_t checkpoint, store::Batch* batch);
  Status PruneOne(uint32_t checkpoint, std::string_view change_list, store::Batch* batch);
  std::atomic<uint64_t> live_effects_{0};
  std::atomic<uint64_t> live_checkpoint_{0};
  bool keep_last_batch_ = false;
  std::vector<std::pair<std::string, std::string>> last_batch_;
};

}  // namespace flow::runtime
