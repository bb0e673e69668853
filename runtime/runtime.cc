// Durable runs. A run's database holds the state record, the heap objects and the history
// (keys in store/keys.h, formats in docs/checkpoint.md).
// Every effect: intent (unsynced: a process crash keeps it, and the effect's idempotency
// key is derived from its sequence number, not from the record) -> the effect -> output
// flushed -> one WriteBatch with the outcome, the VM header and the changed objects
// (synced in sync mode).
#include "runtime/runtime.h"

#include "runtime/journal.h"
#include "runtime/live.h"
#include <leveldb/env.h>
#include "runtime/rerun.h"
#include "runtime/shared_limits.h"
#include "vm/breaker.h"
#include "runtime/program_file.h"
#include "runtime/queue.h"
#include "runtime/schedule.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <thread>

#include "compiler/compiler.h"
#include "stdlib/stdlib.h"
#include "vm/base/coding.h"
#include "vm/base/record.h"
#include "vm/base/saturate.h"
#include "vm/value_ops.h"
#include "vm/vm.h"

namespace flow::runtime {

int64_t WallMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// `s` with `context: ` before its message, of the same code.
Status InContext(const Status& s, const std::string& context) {
  std::string m = context + ": " + s.message();
  switch (s.code()) {
    case Status::Code::kOk: return s;
    case Status::Code::kInvalidArgument: return Status::InvalidArgument(std::move(m));
    case Status::Code::kCorruption: return Status::Corruption(std::move(m));
    case Status::Code::kNotFound: return Status::NotFound(std::move(m));
    case Status::Code::kIOError: return Status::IOError(std::move(m));
    case Status::Code::kNotSupported: return Status::NotSupported(std::move(m));
  }
  return s;
}

namespace {

// The run's output (passed at once to the listener the cli gives) and its clock. The
// first write that fails is kept: the journal's Flush reports it before the print's
// checkpoint, so a print that was not written is never recorded as done. Under
// --virtual-time the clock starts at the wall clock and moves only by what the run waits;
// its reading is part of every checkpoint.
class ProcessHost : public RunHost {
 public:
  ProcessHost(bool virtual_time, RunListener* listener)
      : virtual_time_(virtual_time), virtual_now_ms_(WallMs()), started_ms_(virtual_now_ms_), listener_(listener) {}
  std::string RunId() override { return run_id_; }
  int64_t RunStartedMs() override { return started_ms_; }
  void WriteOutput(std::string_view text) override {
    if (output_error_.ok()) output_error_ = listener_->WriteOutput(text);
  }
  void WriteLog(std::string_view line) override { listener_->WriteLog(line); }
  void Warn(std::string_view message) override { listener_->Warning(message); }
  Status Flush() override { return output_error_; }
  bool output_failed() const { return !output_error_.ok(); }
  int64_t NowMs() override { return virtual_time_ ? virtual_now_ms_ : WallMs(); }
  void SleepMs(int64_t ms) override {
    if (virtual_time_) {
      virtual_now_ms_ += ms;
      return;
    }
    // In slices, so that a cancel is seen during a long wait.
    int64_t end = AddSaturated(WallMs(), ms);
    for (int64_t now = WallMs(); now < end && (cancel_delivered_ || !CancelPending(true)) && !StopRequested();
         now = WallMs())
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(end - now, 100)));
  }
  void SetWaitOrigin(int64_t wall_ms) override { wait_origin_ms_ = wall_ms; }
  bool StopRequested() override { return store_ && listener_->StopRequested(); }
  bool virtual_time() const override { return virtual_time_; }
  // Waits longer than this suspend a durable run (exit 75) instead of blocking it; under
  // --detach every wait does.
  static constexpr int64_t kSuspendAfterMs = 10'000;
  bool ShouldSuspend(int64_t ms, int64_t* wake_ms) override {
    // A wait begun before a crash keeps its end: only the rest is left. (Under
    // --virtual-time the clock restored is the one it began on: the whole wait is left.)
    int64_t remaining = wait_origin_ms_ > 0 && !virtual_time_ ? AddSaturated(wait_origin_ms_, ms) - WallMs() : ms;
    wait_origin_ms_ = 0;
    if (remaining < 0) remaining = 0;
    *wake_ms = AddSaturated(NowMs(), remaining);
    if (virtual_time_ || !store_ || remaining == 0) return false;
    return detach_ || remaining > kSuspendAfterMs || StopRequested();
  }
  void set_detach(bool detach) { detach_ = detach; }
  // Signals: runs/ID's mailbox holds every signal sent to the run; the run's database keeps
  // how many of each name it has received, advanced in the checkpoint of the wait.
  void set_run(const std::string& id, int64_t started_ms, std::map<std::string, uint64_t> received) {
    run_id_ = id;
    started_ms_ = started_ms;
    received_ = std::move(received);
  }
  Status TakeSignal(const std::string& name, bool* found, std::string* json) override {
    *found = false;
    if (!store_) return Status::Ok();
    std::string bytes;
    if (Status s = store_->ReadShared(MailboxName(run_id_), &bytes); !s.ok()) return s;
    // Past those received, and those taken since the last checkpoint (two tasks waiting
    // for the same name each take their own).
    auto taken = pending_received_.find(name);
    uint64_t skip = taken != pending_received_.end() ? taken->second : received_[name];
    const uint64_t next = skip + 1;
    Reader r(bytes);
    while (!r.failed() && !r.at_end()) {
      std::string n(r.Bytes()), value(r.Bytes());
      if (r.failed()) return Status::Corruption("the mailbox of run " + run_id_ + " is malformed");
      if (n != name) continue;
      if (skip > 0) {
        --skip;
        continue;
      }
      *found = true;
      *json = value;
      pending_received_[name] = next;
      return Status::Ok();
    }
    return Status::Ok();
  }
  // What the next checkpoint must also record: signals received.
  uint64_t received(const std::string& name) const {
    auto it = received_.find(name);
    return it == received_.end() ? 0 : it->second;
  }
  void AddToCheckpoint(store::Batch* batch) override {
    for (const auto& [name, count] : pending_received_) {
      std::string v;
      PutVarint(&v, count);
      batch->Put(store::SignalCountKey(name), v);
      received_[name] = count;
    }
    pending_received_.clear();
    // The checkpoint where `cancelled` lands records that it was raised: a run resumed
    // after it (its handler suspended, or the process died) does not get it again.
    if (cancel_delivered_ && !cancel_recorded_) {
      batch->Put(kCancelKey, "");
      cancel_recorded_ = true;
    }
  }
  bool TakeCancel() override {
    if (cancel_delivered_ || !CancelPending()) return false;
    cancel_delivered_ = true;
    return true;
  }
  // Has `cancelled` been raised in this run (here, or before its last checkpoint)?
  bool cancel_delivered() const { return cancel_delivered_; }
  void set_cancel_recorded() { cancel_delivered_ = cancel_recorded_ = true; }
  bool CancelPending(bool waiting = false) {
    if (!store_ || cancelled_) return cancelled_;
    // A stat at most every 100 ms, and (before effects, which call this every time) the
    // clock read only every 16th call.
    if (!waiting && ++cancel_calls_ % 16 != 1) return false;
    int64_t now = WallMs();
    if (now - cancel_checked_ms_ < 100) return false;
    cancel_checked_ms_ = now;
    cancelled_ = store_->CancelRequested(run_id_);
    return cancelled_;
  }
  // Breakers of a durable run live in the store, shared by every run that uses it.
  void set_store(store::Store* st) { store_ = st; }
  Status BreakerEnter(const std::string& name, const BreakerPolicy& policy, bool* admitted) override {
    if (!store_) return VmHost::BreakerEnter(name, policy, admitted);
    return UpdateBreaker(name, [&](BreakerState* b) { *admitted = b->Admit(NowMs(), policy); });
  }
  Status BreakerExit(const std::string& name, const BreakerPolicy& policy, bool success) override {
    if (!store_) return VmHost::BreakerExit(name, policy, success);
    return UpdateBreaker(name, [&](BreakerState* b) { b->Record(NowMs(), policy, success); });
  }
  // Limits likewise (runtime/shared_limits.h).
  Status LimitEnter(const std::string& name, const LimitPolicy& policy, const std::string& task, uint32_t depth,
                    bool* admitted, int64_t* retry_at_ms) override {
    if (!store_) return VmHost::LimitEnter(name, policy, task, depth, admitted, retry_at_ms);
    return EnterSharedLimit({store_, run_id_, NowMs(), virtual_time_}, name, policy, task, depth, admitted, retry_at_ms);
  }
  Status LimitLeave(const std::string& name, const std::string& task, uint32_t depth) override {
    if (!store_) return VmHost::LimitLeave(name, task, depth);
    return LeaveSharedLimit({store_, run_id_, NowMs(), virtual_time_}, name, task, depth);
  }
  std::string IdempotencyKey() override { return key_; }
  // The run sees the process's environment.
  bool EnvironmentValue(const std::string& name, std::string* value) override {
    if (name.find('\0') != std::string::npos) return false;  // no variable's name; getenv would cut it there
    const char* v = std::getenv(name.c_str());
    if (v) *value = v;
    return v != nullptr;
  }
  void set_key(const std::string& key) override { key_ = key; }
  int64_t virtual_now_ms() const override { return virtual_time_ ? virtual_now_ms_ : 0; }
  void set_virtual_now_ms(int64_t ms) {
    if (virtual_time_ && ms > 0) virtual_now_ms_ = ms;
  }

 private:
  Status UpdateBreaker(const std::string& name, const std::function<void(BreakerState*)>& change) {
    Status decode_error;
    Status s = store_->UpdateShared(store::BreakerName(name), [&](std::string* bytes) {
      BreakerState b;
      if (!bytes->empty() && !b.Decode(*bytes)) {
        decode_error = Status::Corruption("the state of breaker " + name + " is malformed");
        return;
      }
      change(&b);
      *bytes = b.Encode();
    });
    return s.ok() ? decode_error : s;
  }

  bool virtual_time_;
  int64_t virtual_now_ms_;
  int64_t started_ms_;  // run.started_at: the record's created_ms, or when an --ephemeral run began
  RunListener* listener_;
  int64_t wait_origin_ms_ = 0;
  store::Store* store_ = nullptr;
  bool detach_ = false;
  std::string run_id_;
  std::map<std::string, uint64_t> received_, pending_received_;
  int64_t cancel_checked_ms_ = 0;
  bool cancelled_ = false;
  bool cancel_delivered_ = false;
  bool cancel_recorded_ = false;
  uint64_t cancel_calls_ = 0;
  std::string key_;
  Status output_error_;
};

}  // namespace

bool CanResume(const store::RunRecord& record) {
  switch (record.status) {
    case store::RunStatus::kRunning:
    case store::RunStatus::kSuspended:
    case store::RunStatus::kCrashed:
    case store::RunStatus::kQueued:    // resuming it starts it (runtime/queue.h)
    case store::RunStatus::kPoisoned:  // never in a record (a mark beside it): by hand, it is tried again
      return true;
    case store::RunStatus::kFailed:
      return record.error_kind == kBudgetErrorKind;
    case store::RunStatus::kCompleted:
    case store::RunStatus::kCancelled:
      return false;
  }
  return false;
}

namespace {

// The memory budget when none is given: half the machine's memory (or of the process's
// address-space limit, if lower), at most 4 GiB.
uint64_t DefaultMaxMemory() {
  uint64_t limit = 4ull << 30;
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page > 0) limit = std::min(limit, static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) / 2);
  rlimit as{};
  if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) limit = std::min<uint64_t>(limit, as.rlim_cur / 2);
  return limit;
}

// Budgets given now replace the ones kept with the run; returns what the VM enforces. The
// memory budget is the executing process's (given now, or the default), not kept.
Budget ApplyBudgets(const BudgetOptions& given, int64_t now_ms, store::RunRecord* record) {
  if (given.max_effects) record->max_effects = given.max_effects;
  if (given.max_instructions) record->max_instructions = given.max_instructions;
  if (given.max_tokens) record->max_tokens = given.max_tokens;
  if (given.deadline_ms) record->deadline_ms = AddSaturated(now_ms, given.deadline_ms);
  return {record->max_effects, record->max_instructions, record->deadline_ms, record->max_tokens,
          given.max_memory ? given.max_memory : DefaultMaxMemory()};
}

// An out-of-memory stop is a budget stop: the run keeps its last checkpoint and resumes
// from there (flow resume, with more memory), and the worker leaves it alone.
std::string OutOfMemoryDetail() {
  return "error: budget: the process ran out of memory; the run stopped at its last checkpoint";
}

// The program's `args`: a map of the --arg values, as strings.
void SetProgramArgs(VM& vm, const std::vector<std::pair<std::string, std::string>>& args) {
  Heap& heap = vm.heap();
  Value map = heap.NewMap();
  for (const auto& [k, v] : args) heap.Mutable<MapObj>(map.ref)->Set(k, heap.NewString(v));
  vm.SetGlobal("args", map);
}

// The run's uncaught error, as data.

// Runs the VM to its end and records how the run ended (in the store and in *result).
Result<uint64_t> CountSignals(store::Store& st, const std::string& id, const std::string& name);

// A suspended run's entry in the wake index, for workers: at its timer (under virtual
// time, now: its clock jumps), or now if the signal it waits for came while it ran.
Status NoteWakeOf(store::Store& st, const store::RunRecord& r, bool signal_came) {
  if (r.status != store::RunStatus::kSuspended) return Status::Ok();
  if (r.wake_ms != 0) return st.NoteWake(r.id, r.virtual_time ? 0 : r.wake_ms);
  return signal_came ? st.NoteWake(r.id, 0) : Status::Ok();
}

// `before`: the record as it was before this process took the run (null for a new run).
Status Execute(store::Store& st, store::RunRecord& record, VM& vm, ProcessHost& host, StoreJournal& journal,
               RunResult* result, const store::RunRecord* before = nullptr) {
  const uint64_t first_checkpoint = journal.checkpoint();
  result->run_id = record.id;
  result->executed = true;
  {
    // Readers in other processes see the run as it goes (runtime/live.h).
    LiveServer live(st.RunDir(record.id), journal.db(), journal.live_effects(), journal.live_checkpoint());
    result->outcome = vm.Run();
  }
  RunOutcome outcome = result->outcome;
  Status abort_status = vm.abort_status();
  const bool ends = outcome == RunOutcome::kCompleted || outcome == RunOutcome::kFailed;
  if (ends) RecordEndSteps(vm, journal);
  if (outcome == RunOutcome::kFailed) result->error = vm.UncaughtReport();
  // What an ended run records reads strings too (its steps, its error's data): one of the
  // restored state found damaged there stops the run as before an effect, nothing recorded.
  if (ends && !vm.heap().string_error().ok()) {
    outcome = result->outcome = RunOutcome::kAborted;
    abort_status = vm.heap().string_error();
    result->error.reset();
  }
  if (outcome != RunOutcome::kAborted && outcome != RunOutcome::kOutOfMemory) {
    Status s = journal.Flush();
    if (s.ok()) s = journal.Sync();
    if (s.ok() && outcome == RunOutcome::kSuspended) s = journal.Settle();  // resumed later: fast
    if (!s.ok()) return InContext(s, fmt::format("run {}", record.id));
  }
  record.updated_ms = WallMs();
  record.effects = vm.effects_done();
  record.error_kind.clear();
  switch (outcome) {
    case RunOutcome::kCompleted:
      // Finished after `cancelled` was raised (its handler cleaned up): cancelled, never resumed.
      record.status = host.cancel_delivered() ? store::RunStatus::kCancelled : store::RunStatus::kCompleted;
      record.detail = host.cancel_delivered() ? "cancelled (its handlers completed)" : "";
      break;
    case RunOutcome::kFailed: {
      if (Status s = journal.RecordUncaught(*result->error); !s.ok()) return InContext(s, fmt::format("run {}", record.id));
      std::string text = FormatErrorReport(*result->error);
      // Ended by the uncaught `cancelled`: cancelled. Another error escaping the handlers
      // (a compensation that failed) fails the run, so that it shows.
      bool by_cancel = host.cancel_delivered() && result->error->kind == "cancelled";
      record.status = by_cancel ? store::RunStatus::kCancelled : store::RunStatus::kFailed;
      record.detail = text.substr(0, text.find('\n'));
      record.error_kind = result->error->kind;
      break;
    }
    case RunOutcome::kSuspended: {
      const Suspension& w = vm.suspension();
      record.status = store::RunStatus::kSuspended;
      record.wake_ms = w.wake_ms;
      record.waiting_signal = w.signal;
      const std::string& limit = vm.suspended_for_limit();
      record.detail = w.stopped            ? "stopped (its process was asked to end): due at once"
                      : !w.signal.empty() ? fmt::format("waiting for signal {}", w.signal)
                      : !limit.empty()    ? fmt::format("waiting for a slot of limit {}", limit)
                                          : "waiting on a timer";
      record.signals_received = host.received(w.signal);
      break;
    }
    case RunOutcome::kAborted:
      // The store failed under us (or is damaged: a mailbox). With nothing checkpointed
      // since this process took the run, its record from before still tells the truth (a
      // suspended run stays suspended, untouched); else leave it running, so that it reads
      // as crashed once this process is gone. Either way, say why.
      if (before && journal.checkpoint() == first_checkpoint) st.WriteRun(*before);
      result->record = record;
      // The output failed: the print is not done, and the run reads as crashed.
      result->output_failed = host.output_failed();
      if (result->output_failed) return abort_status;
      return InContext(abort_status, fmt::format("run {} stopped", record.id));
    case RunOutcome::kOutOfMemory:
      record.status = store::RunStatus::kFailed;
      record.detail = OutOfMemoryDetail();
      record.error_kind = kBudgetErrorKind;
      break;
  }
  if (record.status != store::RunStatus::kSuspended) {
    record.wake_ms = 0;
    record.waiting_signal.clear();
  }
  result->record = record;
  if (Status s = st.WriteRun(record); !s.ok()) return InContext(s, fmt::format("run {}", record.id));
  st.ClearCrashes(record.id);  // its process ended it cleanly: no crash in a row any more
  journal.RunStopped(record);  // the live trace (FLOW_OTLP_ENDPOINT) gets the run's own span
  return Status::Ok();
}

}  // namespace

std::string EncodeHistoryEntry(const HistoryEntry& e) {
  std::string out;
  EncodeHistoryEntryInto(e, &out);
  return out;
}

void EncodeHistoryEntryInto(const HistoryEntry& e, std::string* out) {
  std::string& p = *out;
  BeginRecord(&p);
  PutVarint(&p, e.seq);
  PutBytes(&p, e.effect);
  PutFixed8(&p, static_cast<uint8_t>(e.state));
  PutBytes(&p, e.idempotency_key);
  PutFixed64(&p, e.args_digest);
  PutFixed64(&p, e.result_digest);
  PutFixed64(&p, static_cast<uint64_t>(e.started_ms));
  PutFixed64(&p, static_cast<uint64_t>(e.duration_us));
  PutBytes(&p, e.args_preview);
  PutBytes(&p, e.result_preview);
  PutBytes(&p, e.pre_state);  // empty but while a file effect is in flight
  PutBytes(&p, e.task);
  PutFixed64(&p, static_cast<uint64_t>(e.started_us));
  FinishRecord(kRunDbRecordVersion, &p);
}

Status DecodeHistoryEntry(std::string_view bytes, HistoryEntry* e) {
  std::string_view p;
  if (Status s = OpenRecord(bytes, kRunDbRecordVersion, "a history entry", &p); !s.ok()) return s;
  Reader r(p);
  e->seq = r.Varint();
  e->effect = std::string(r.Bytes());
  uint8_t state = r.U8();
  e->idempotency_key = std::string(r.Bytes());
  e->args_digest = r.U64();
  e->result_digest = r.U64();
  e->started_ms = static_cast<int64_t>(r.U64());
  e->duration_us = static_cast<int64_t>(r.U64());
  e->args_preview = std::string(r.Bytes());
  e->result_preview = std::string(r.Bytes());
  e->pre_state = std::string(r.Bytes());
  e->task = std::string(r.Bytes());
  e->started_us = r.at_end() ? e->started_ms * 1000 : static_cast<int64_t>(r.U64());  // absent before issue 11
  if (r.failed() || !r.at_end() || state < 1 || state > 4) return Status::Corruption("a history entry is malformed");
  e->state = static_cast<HistoryEntry::State>(state);
  return Status::Ok();
}

void EncodeStateRecordInto(uint64_t checkpoint, int64_t written_ms, int64_t virtual_now_ms, std::string_view vm_header,
                           std::string* out) {
  std::string& p = *out;
  BeginRecord(&p);
  PutVarint(&p, checkpoint);
  PutFixed64(&p, static_cast<uint64_t>(written_ms));
  PutFixed64(&p, static_cast<uint64_t>(virtual_now_ms));
  PutBytes(&p, vm_header);
  FinishRecord(kRunDbRecordVersion, &p);
}

Status DecodeStateRecord(std::string_view bytes, StateRecord* r) {
  std::string_view p;
  if (Status s = OpenRecord(bytes, kRunDbRecordVersion, "the checkpoint", &p); !s.ok()) return s;
  Reader rd(p);
  r->checkpoint = rd.Varint();
  r->written_ms = static_cast<int64_t>(rd.U64());
  r->virtual_now_ms = static_cast<int64_t>(rd.U64());
  r->vm_header = std::string(rd.Bytes());
  if (rd.failed() || !rd.at_end()) return Status::Corruption("the checkpoint record is malformed");
  return Status::Ok();
}

Status StartRun(const StartOptions& options, const Module& module, RunListener* listener, RunResult* result) {
  *result = RunResult{};
  if (options.ephemeral) {
    // Nothing is recorded: the VM runs as a plain interpreter.
    result->source = options.source;
    result->source_file = module.source_name;
    result->imports = module.imports;
    ProcessHost host(options.virtual_time, listener);
    VM vm(&module, &host, stdlib::GetNatives());
    SetProgramArgs(vm, options.args);
    store::RunRecord unrecorded;
    vm.SetBudget(ApplyBudgets(options.budgets, host.NowMs(), &unrecorded));
    result->executed = true;
    result->outcome = vm.Run();
    if (result->outcome == RunOutcome::kFailed) result->error = vm.UncaughtReport();
    result->output_failed = host.output_failed();
    return host.Flush();
  }

  std::string id = options.run_id.empty() ? store::NewRunId() : options.run_id;
  result->run_id = id;
  if (!store::IsValidRunId(id))
    return Status::InvalidArgument(
        fmt::format("`{}` is not a valid run id (1 to 64 letters, digits, . _ -; not starting with - or .)", id));
  Result<store::Store> st = store::Store::Open(options.store_dir, true);
  if (!st.ok()) return InContext(st.status(), "store " + store::PrintableLocation(options.store_dir));
  // Shared until the record names the code: gc removes no code a run is being created on.
  Result<std::unique_ptr<store::CodeLock>> code_lock = st->LockCode(false);
  if (!code_lock.ok()) return code_lock.status();
  Result<std::string> hash = st->PutCode(SerializeModule(module));
  if (!hash.ok()) return hash.status();
  if (options.source) {
    if (Status s = st->PutSource(*hash, *options.source); !s.ok()) return s;
  }
  result->source = options.source;
  result->source_file = module.source_name;
  result->imports = module.imports;
  // A folder without a record is a start that died before writing it: take it over.
  Status created = st->CreateRunDir(id, options.run_id.empty());
  if (!created.ok() && (created.code() != Status::Code::kInvalidArgument || st->RunExists(id) || !store::IsValidRunId(id)))
    return created;
  Result<std::unique_ptr<store::RunLock>> lock = st->LockRun(id);
  if (!lock.ok()) return lock.status();
  if (!created.ok()) {
    if (st->RunExists(id)) return created;  // another start won the race
    if (Status s = st->ClearRunDir(id); !s.ok()) return s;
  }

  store::RunRecord record;
  record.id = id;
  record.program = AbsolutePath(options.file);  // shown later, from other folders
  record.code_hash = *hash;
  record.args = options.args;
  record.durability = options.sync ? "sync" : "async";
  record.virtual_time = options.virtual_time;
  record.keep_checkpoints = options.keep_checkpoints;
  record.created_ms = record.updated_ms = WallMs();
  record.pid = getpid();
  return BeginRun(&st.value(), std::move(record), module, options, std::move(code_lock.value()), listener, result);
}

namespace {

// An idle run is packed (store/packed_run.cc) once its process is done with it and its
// database is closed: one file and one disk block instead of seven. Not a run due again
// soon (a short timer, a limit's slot, a stop for a drain, virtual time: due at once),
// which would be unpacked again at once, nor a big one, for which the blocks saved are
// little beside its size and the copy would cost.
constexpr int64_t kPackAfterIdleMs = 60'000;
constexpr uint64_t kMaxPackedRunBytes = 256 << 10;

void PackIfIdle(store::Store& st, const store::RunRecord& r) {
  switch (r.status) {
    case store::RunStatus::kCompleted:
    case store::RunStatus::kFailed:
    case store::RunStatus::kCancelled: break;
    case store::RunStatus::kSuspended:
      if (r.wake_ms != 0 && (r.virtual_time || r.wake_ms - WallMs() < kPackAfterIdleMs)) return;
      break;
    default: return;
  }
  // A run that cannot be packed (too big, a failing disk) stays as it is: whole, in files.
  (void)st.PackRun(r.id, kMaxPackedRunBytes);
}

// What a process does last with a run it executed (its database closed, its lock still
// held): say in the wake index when it is due, and pack it if it is idle; not a run that
// is due now (its signal came, or a cancel was asked while it ran), which is about to be
// taken again (a worker that finds it still held looks again a second later).
Status LeaveRun(store::Store& st, const RunResult& result) {
  const store::RunRecord& r = result.record;
  if (!result.executed || r.id.empty()) return Status::Ok();
  bool signal_came = false;
  if (r.status == store::RunStatus::kSuspended && r.wake_ms == 0 && !r.waiting_signal.empty()) {
    Result<uint64_t> count = CountSignals(st, r.id, r.waiting_signal);
    if (!count.ok()) return InContext(count.status(), "run " + r.id);
    signal_came = *count > r.signals_received;
  }
  // The hint first: a worker's periodic look skips packed runs, trusting their hints, so a
  // process that dies between the two must leave the hint. A packed run's timer is a
  // minute away or more, so the worker it wakes finds the pack long done.
  if (Status s = NoteWakeOf(st, r, signal_came); !s.ok()) return InContext(s, "run " + r.id);
  if (!signal_came && !st.CancelRequested(r.id)) PackIfIdle(st, r);
  return Status::Ok();
}

Status BeginRunInFolder(store::Store* st, store::RunRecord record, const Module& module, const StartOptions& options,
                        std::unique_ptr<store::CodeLock> code_lock, RunListener* listener, RunResult* result);

}  // namespace

Status BeginRun(store::Store* st, store::RunRecord record, const Module& module, const StartOptions& options,
                std::unique_ptr<store::CodeLock> code_lock, RunListener* listener, RunResult* result) {
  Status s = BeginRunInFolder(st, std::move(record), module, options, std::move(code_lock), listener, result);
  return s.ok() ? LeaveRun(*st, *result) : s;  // its database is closed now
}

namespace {

Status BeginRunInFolder(store::Store* st, store::RunRecord record, const Module& module, const StartOptions& options,
                        std::unique_ptr<store::CodeLock> code_lock, RunListener* listener, RunResult* result) {
  const std::string& id = record.id;
  // The database and its first checkpoint come before the record: a run that has a record
  // always has its state (a start that dies sooner leaves only a folder, taken over above).
  const std::string context = "run " + id;
  Result<std::unique_ptr<store::RunDb>> db = st->OpenRunDb(id, true);
  if (!db.ok()) return InContext(db.status(), context);
  Result<std::unique_ptr<store::CheckpointMark>> mark = st->OpenMark(id);
  if (!mark.ok()) return InContext(mark.status(), context);
  ProcessHost host(options.virtual_time, listener);
  host.set_store(st);
  host.set_detach(options.detach);
  host.set_run(id, record.created_ms, {});
  VM vm(&module, &host, stdlib::GetNatives());
  SetProgramArgs(vm, options.args);
  vm.SetBudget(ApplyBudgets(options.budgets, host.NowMs(), &record));
  StoreJournal journal(db->get(), mark->get(), &host, id, options.sync, 0);
  journal.set_keep(options.keep_checkpoints, 0);
  vm.SetJournal(&journal);
  vm.PrepareToRun();
  if (options.origin) {
    if (Status s = StartRerun(*st, id, record.code_hash, *options.origin, vm, journal); !s.ok()) return InContext(s, context);
  }
  store::Batch first;
  // The first checkpoint and the mark are durable before the record (async runs too): a
  // run with a record always has its state, so a state that is missing is damage.
  if (Status s = journal.WriteCheckpoint(vm, true, &first); !s.ok()) return InContext(s, context);
  if (Status s = journal.Sync(); !s.ok()) return InContext(s, context);
  if (Status s = (*mark)->Sync(); !s.ok()) return InContext(s, context);
  if (Status s = st->WriteRun(record); !s.ok()) return s;
  code_lock.reset();
  result->record = record;
  listener->RunStarted(id);
  return Execute(*st, record, vm, host, journal, result);
}

}  // namespace

namespace {

// A host for reading a run (flow inspect, history, trace, export; checking an import):
// the VM is restored and never run, so it needs no clock, no output and no secret values.
class ReadingHost : public VmHost {
 public:
  void WriteOutput(std::string_view) override {}
  int64_t NowMs() override { return 0; }
  bool EnvironmentValue(const std::string&, std::string* value) override {
    value->clear();  // a restored secret shows masked (***) whatever it is
    return true;
  }
};

}  // namespace

Status RestoreState(VM& vm, std::string_view state_bytes, const std::function<Status(std::string_view key, std::string* value)>& get,
                    StateRecord* state, std::function<Status(std::string_view key, std::string* value)> get_strings_later) {
  if (Status s = DecodeStateRecord(state_bytes, state); !s.ok()) return s;
  Status object_error;
  std::string raw;
  // Heap object `oid`'s record, or chunk `chunk` of a long list's (docs/checkpoint.md), opened.
  auto read = [&](uint32_t oid, uint32_t chunk, std::string* bytes_out) {
    bool whole = chunk == CheckpointDelta::kObject;
    Status g = get(whole ? ObjectKey(oid) : store::ListChunkKey(oid, chunk), &raw);
    std::string_view payload;
    auto what = [&] { return whole ? fmt::format("heap object {}", oid) : fmt::format("chunk {} of heap object {}", chunk, oid); };
    // Named only when refused: a message per object would cost more than reading it.
    if (g.ok() && !OpenRecord(raw, kRunDbRecordVersion, "", &payload).ok())
      g = OpenRecord(raw, kRunDbRecordVersion, what(), &payload);
    if (!g.ok()) {
      if (object_error.ok()) object_error = g.IsNotFound() ? Status::Corruption(what() + " is missing") : g;
      return false;
    }
    bytes_out->assign(payload);
    return true;
  };
  VM::ObjectFetch later;
  if (get_strings_later)
    later = [get = std::move(get_strings_later)](uint32_t oid, std::string* bytes_out) {
      std::string raw;
      std::string_view payload;
      if (!get(ObjectKey(oid), &raw).ok() || !OpenRecord(raw, kRunDbRecordVersion, "", &payload).ok()) return false;
      bytes_out->assign(payload);
      return true;
    };
  Status s = vm.RestoreCheckpoint(
      state->vm_header, [&](uint32_t oid, std::string* out) { return read(oid, CheckpointDelta::kObject, out); },
      [&](uint32_t oid, uint32_t chunk, std::string* out) { return read(oid, chunk, out); }, std::move(later));
  if (!object_error.ok()) return Status::Corruption(object_error.message());
  return s;
}

Status CheckStateIsCurrent(const store::RunRecord& record, uint64_t checkpoint, uint64_t effects_done,
                           const Result<uint64_t>& mark) {
  auto rolled_back = [](const std::string& why) {
    return Status::Corruption(why + ": its database log was truncated, emptied or rolled back (or the run image is "
                                    "incomplete); refusing to go on from an older state, which would do again what "
                                    "was done");
  };
  if (record.effects > effects_done)
    return rolled_back(fmt::format("its record says {} effects were done, but its last checkpoint is after {}",
                                   record.effects, effects_done));
  // The mark binds sync runs only: an async run may lose its last checkpoints in an OS
  // crash, by design (its record, written with a sync of its database, still binds it).
  if (record.durability == "async") return Status::Ok();
  if (mark.status().code() == Status::Code::kNotSupported) return Status::Ok();  // a store whose checkpoints are transactions
  if (!mark.ok()) {
    if (!mark.status().IsNotFound()) return mark.status();
    return rolled_back("its checkpoint mark is missing");
  }
  if (mark.value() > checkpoint)
    return rolled_back(fmt::format("its database holds checkpoint {} but checkpoint {} was acknowledged", checkpoint,
                                   mark.value()));
  return Status::Ok();
}

namespace {

// The state record of checkpoint `at` (or the last), telling a database of an older layout
// from a damaged one.
Status ReadStateRecordAt(store::RunDb& db, uint32_t at, std::string* state_bytes, uint32_t* version = nullptr) {
  Status s = db.GetAt(kStateKey, at, state_bytes, version);
  if (!s.IsNotFound()) return s;
  std::string unversioned;  // format 4 and older kept one state record, under "s" alone
  if (db.Get(kStateKey, &unversioned).ok()) {
    std::string_view payload;
    Status old = OpenRecord(unversioned, kRunDbRecordVersion, "its database", &payload);
    if (!old.ok()) return old;
  }
  return s;
}

Status LoadRunAt(store::Store& st, const std::string& id, VmHost* host, LoadedRun* out, bool read_only,
                 std::optional<uint64_t> after_effect);

}  // namespace

Status LoadRun(store::Store& st, const std::string& id, VmHost* host, LoadedRun* out, bool read_only) {
  return LoadRunAt(st, id, host, out, read_only, std::nullopt);
}

namespace {

// The effects done at checkpoint `c` (or the newest before it), and its number.
Status EffectsAt(store::RunDb& db, uint32_t c, uint64_t* done, uint32_t* version) {
  std::string bytes;
  if (Status s = ReadStateRecordAt(db, c, &bytes); !s.ok()) return s;
  StateRecord state;
  if (Status s = DecodeStateRecord(bytes, &state); !s.ok()) return s;
  Reader r(state.vm_header);
  *done = r.Varint();  // the header starts with effects_done (docs/checkpoint.md)
  *version = static_cast<uint32_t>(state.checkpoint);
  return r.failed() ? Status::Corruption("a checkpoint header is malformed") : Status::Ok();
}

}  // namespace

Status ReadRunProgress(store::Store& st, const std::string& id, int64_t pid, LiveProgress* out) {
  if (!st.ReadableWhileLive()) return AskLiveProgress(st.RunDir(id), pid, out);
  Result<std::unique_ptr<store::RunDb>> db = st.OpenRunDbToRead(id);
  if (!db.ok()) return db.status();
  uint32_t checkpoint = 0;
  if (Status s = EffectsAt(**db, store::kLatestCheckpoint, &out->effects, &checkpoint); !s.ok()) return s;
  out->checkpoint = checkpoint;
  return Status::Ok();
}

Status FindCheckpointAfterEffect(store::RunDb& db, uint64_t effects, uint32_t* checkpoint, uint64_t* effects_there) {
  auto effects_at = [&](uint32_t c, uint64_t* done, uint32_t* version) { return EffectsAt(db, c, done, version); };
  uint64_t last_effects;
  uint32_t last;
  if (Status s = effects_at(store::kLatestCheckpoint, &last_effects, &last); !s.ok()) return s;
  if (effects > last_effects)
    return Status::NotFound(fmt::format("the run has done {} effects so far", last_effects));
  // f(c), the effects done at the newest kept checkpoint at or before c, only grows with c:
  // bisect for the smallest c with f(c) >= effects, which is then a kept checkpoint itself.
  uint32_t lo = 0, hi = last;  // f(hi) >= effects; lo == 0 or f(lo) < effects
  uint64_t hi_effects = last_effects;
  while (hi - lo > 1) {
    const uint32_t mid = lo + (hi - lo) / 2;
    uint32_t found;
    uint64_t done;
    Status s = effects_at(mid, &done, &found);
    if (!s.ok() && !s.IsNotFound()) return s;
    if (s.ok() && done >= effects) {
      hi = mid;
      hi_effects = done;
    } else {
      lo = mid;  // nothing kept at or before mid, or too early
    }
  }
  *checkpoint = hi == last ? store::kLatestCheckpoint : hi;  // the last may be stored as kOnlyVersion
  *effects_there = hi_effects;
  return Status::Ok();
}

namespace {

// `after_effect`: the VM as of the first kept checkpoint after which the run had done that
// many effects, instead of its last (no check against the record and mark: a past state).
Status LoadRunAt(store::Store& st, const std::string& id, VmHost* host, LoadedRun* out, bool read_only,
                 std::optional<uint64_t> after_effect) {
  Result<store::RunRecord> record = st.ReadRun(id);
  if (!record.ok()) return record.status();
  out->record = std::move(record.value());
  if (out->record.status == store::RunStatus::kQueued)  // a record, no database yet (runtime/queue.h)
    return Status::InvalidArgument(fmt::format("run {} is queued: it has not started, so it has no state or history "
                                               "yet (flow resume {} starts it)", id, id));
  std::string bytes;
  if (Status s = st.GetCode(out->record.code_hash, &bytes); !s.ok()) return s;
  Result<Module> module = DeserializeModule(bytes);
  if (!module.ok()) return Status::Corruption("its stored bytecode: " + module.status().message());
  out->module = std::make_unique<Module>(std::move(module.value()));
  if (std::string text; st.GetSource(out->record.code_hash, &text).ok()) out->source = std::move(text);
  if (!out->db) {  // else a live run's snapshot (OpenRunForReading)
    // A packed run is read from its packed file, and unpacked before it is executed.
    if (!read_only) {
      if (Status s = st.UnpackRun(id); !s.ok()) return s;
    }
    Result<std::unique_ptr<store::RunDb>> db =
        read_only ? st.OpenRunDbToRead(id) : st.OpenRunDb(id, false);
    if (!db.ok()) return db.status();
    out->db = std::move(db.value());
  }
  out->vm = std::make_unique<VM>(out->module.get(), host, stdlib::GetNatives());
  uint32_t at = store::kLatestCheckpoint;
  if (after_effect) {
    uint64_t effects_there;
    if (Status s = FindCheckpointAfterEffect(*out->db, *after_effect, &at, &effects_there); !s.ok()) return s;
  }
  std::string state_bytes;
  uint32_t state_version = at;
  Status s = ReadStateRecordAt(*out->db, at, &state_bytes, &state_version);
  if (s.IsNotFound() && at != store::kLatestCheckpoint)
    return Status::NotFound(fmt::format("checkpoint {} is not kept", at));
  // A run has its first checkpoint (synced) before its record: none now is damage, never
  // a reason to start it again from the beginning.
  if (s.IsNotFound())
    return Status::Corruption(fmt::format("its database holds no checkpoint, though its record says {} after {} "
                                          "effects: the database was emptied or rolled back",
                                          store::RunStatusName(out->record.status), out->record.effects));
  if (!s.ok()) return s;
  StateRecord state;
  // As of the state record's version: a read-only open does not drop the newer records of
  // a checkpoint a crash cut short (RunDb::DropUnfinishedCheckpoint).
  std::unique_ptr<store::RunDb::VersionReader> objects = out->db->ReaderAt(state_version);
  // A run about to go on reads its strings when it first uses them: a resume then costs
  // the state it touches (docs/checkpoint.md, "Resume cost"). The database outlives the VM
  // (LoadedRun). Readers of a past or live state load it whole.
  std::function<Status(std::string_view, std::string*)> later;
  if (!read_only && !after_effect && !out->live)
    later = [db = out->db.get()](std::string_view base, std::string* value) { return db->ReadLatest(base, value); };
  s = RestoreState(*out->vm, state_bytes, [&](std::string_view base, std::string* value) { return objects->Get(base, value); },
                   &state, std::move(later));
  objects.reset();
  if (!s.ok()) return s;
  out->checkpoint = state.checkpoint;
  out->checkpoint_ms = state.written_ms;
  out->virtual_now_ms = state.virtual_now_ms;
  // A past state, or a live run's snapshot (its process writes on: its mark may be ahead).
  if (after_effect || out->live) return Status::Ok();
  return CheckStateIsCurrent(out->record, out->checkpoint, out->vm->effects_done(), st.ReadMark(id));
}

}  // namespace

Status CheckImportedState(const store::RunRecord& record, std::string_view code,
                          const std::vector<std::pair<std::string_view, std::string_view>>& entries, uint64_t mark) {
  Result<Module> module = DeserializeModule(code);
  if (!module.ok()) return Status::Corruption("the run image's bytecode: " + module.status().message());
  std::map<std::string_view, std::string_view> db(entries.begin(), entries.end());
  // The newest version of `base` in the image at or before `at` (versioned keys:
  // store/keys.h).
  auto newest = [&](std::string_view base, uint32_t at) {
    auto it = db.lower_bound(store::VersionedKey(base, at));
    if (it == db.end() || it->first.size() != base.size() + store::kVersionBytes ||
        it->first.substr(0, base.size()) != base || it->second.empty())
      return db.end();
    return it;
  };
  auto state_bytes = newest(kStateKey, store::kLatestCheckpoint);
  if (state_bytes == db.end())
    return Status::Corruption(fmt::format("the run image holds no checkpoint, though its record says {} after {} effects",
                                          store::RunStatusName(record.status), record.effects));
  // Objects as of the state's version: an unfinished checkpoint's newer records (the key
  // `p`) are dropped when the imported run is first opened to go on.
  const uint32_t state_version = store::VersionOfKey(state_bytes->first, 1);
  ReadingHost host;
  VM vm(&module.value(), &host, stdlib::GetNatives());
  StateRecord state;
  Status s = RestoreState(
      vm, state_bytes->second,
      [&](std::string_view base, std::string* value) {
        auto it = newest(base, state_version);
        if (it == db.end()) return Status::NotFound("no such entry");
        value->assign(it->second);
        return Status::Ok();
      },
      &state);
  if (!s.ok()) return Status::Corruption("the run image's checkpoint: " + s.message());
  Result<uint64_t> acknowledged = mark ? Result<uint64_t>(mark) : Result<uint64_t>(Status::NotFound("no mark"));
  return CheckStateIsCurrent(record, state.checkpoint, vm.effects_done(), acknowledged);
}

LoadedRun::LoadedRun() = default;
LoadedRun::~LoadedRun() = default;
LoadedRun::LoadedRun(LoadedRun&&) = default;
LoadedRun& LoadedRun::operator=(LoadedRun&&) = default;

Status OpenRunForReading(store::Store& st, const std::string& id, LoadedRun* out, std::optional<uint64_t> after_effect) {
  if (st.ReadableWhileLive()) {
    int64_t pid = 0;
    out->live = st.IsRunLive(id, &pid);
    return OpenRunToRead(st, id, out, after_effect);
  }
  Result<std::unique_ptr<store::RunLock>> lock = st.LockRun(id);
  if (lock.ok()) {
    out->lock = std::move(lock.value());
    return OpenRunToRead(st, id, out, after_effect);
  }
  if (!st.RunExists(id)) return st.ReadRun(id).status();
  int64_t pid = 0;
  if (!st.IsRunLive(id, &pid)) return lock.status();
  Status taken = TakeLiveSnapshot(st.RunDir(id), pid, "", &out->snapshot_env, &out->db);
  if (taken.IsNotFound()) return lock.status();  // held, but not by a live run that answers
  if (!taken.ok()) return taken;
  out->live = true;
  return OpenRunToRead(st, id, out, after_effect);
}

Status OpenRunToRead(store::Store& st, const std::string& id, LoadedRun* out, std::optional<uint64_t> after_effect) {
  out->reading_host = std::make_unique<ReadingHost>();
  return LoadRunAt(st, id, out->reading_host.get(), out, true, after_effect);
}

namespace {
Status ContinueRun(store::Store& st, const store::RunRecord& before, const BudgetOptions& budgets,
                   RunListener* listener, RunResult* result);
}  // namespace

Status ResumeRun(const std::string& store_dir, const std::string& id, const BudgetOptions& budgets,
                 RunListener* listener, RunResult* result) {
  *result = RunResult{};
  result->run_id = id;
  Result<store::Store> st = store::Store::Open(store_dir, false);
  if (!st.ok()) return st.status();
  if (!store::IsValidRunId(id)) return Status::InvalidArgument(fmt::format("`{}` is not a run id", id));
  Result<store::RunRecord> peek = st->ReadRun(id);
  if (!peek.ok()) return peek.status();
  result->record = *peek;
  // A run stopped by a budget keeps its state: it may go on, with a new budget.
  if (!CanResume(*peek)) {
    result->refused = true;
    return Status::Ok();
  }
  Result<std::unique_ptr<store::RunLock>> lock = st->LockRun(id);
  if (!lock.ok()) return lock.status();
  st->ClearPoisoned(id);  // resumed by hand: the operator tries it again
  // A run of a capped queue executes in one of its slots, or not now (runtime/queue.h).
  std::unique_ptr<store::QueueSlot> slot;
  if (Status s = TakeRunSlot(*st, *peek, &slot, result); !s.ok() || result->deferred != RunResult::Deferred::kNo) return s;
  if (peek->status == store::RunStatus::kQueued) {
    if (Status s = StartQueuedRun(*st, id, listener, result); !s.ok() || !result->refused) return s;
    if (!CanResume(result->record)) return Status::Ok();  // it ran and ended since we looked
    peek = result->record;  // another process started it, and it stopped since: it goes on
    result->refused = false;
  }
  return ContinueRun(*st, *peek, budgets, listener, result);
}

namespace {

// The run's signal counts (keys `g`): how many of each name it has received.
Status ReadSignalCounts(store::RunDb& db, std::map<std::string, uint64_t>* received) {
  Status bad;
  Status scan = db.Scan(store::kSignalCountPrefix, [&](std::string_view k, std::string_view v) {
    Reader r(v);
    uint64_t n = r.Varint();
    if (r.failed()) bad = Status::Corruption("a signal count is malformed");
    (*received)[std::string(store::SignalOfCountKey(k))] = n;
    return bad.ok();
  });
  return scan.ok() ? bad : scan;
}

Status ContinueFromCheckpoint(store::Store& st, const store::RunRecord& before, const BudgetOptions& budgets,
                              RunListener* listener, RunResult* result);

// Continues a run, whose lock the caller holds, from its last checkpoint.
Status ContinueRun(store::Store& st, const store::RunRecord& before, const BudgetOptions& budgets,
                   RunListener* listener, RunResult* result) {
  Status s = ContinueFromCheckpoint(st, before, budgets, listener, result);
  return s.ok() ? LeaveRun(st, *result) : s;  // its database is closed now
}

Status ContinueFromCheckpoint(store::Store& st, const store::RunRecord& before, const BudgetOptions& budgets,
                              RunListener* listener, RunResult* result) {
  const std::string& id = before.id;
  const std::string context = "run " + id;
  ProcessHost host(before.virtual_time, listener);
  host.set_store(&st);
  LoadedRun run;
  if (Status s = LoadRun(st, id, &host, &run); !s.ok()) return InContext(s, context);
  result->source = run.source;
  result->source_file = run.module->source_name;
  result->imports = run.module->imports;
  std::string moved_file;
  if (ProgramFileState file = CheckProgramFiles(run.record, run.source, *run.module, &moved_file);
      file == ProgramFileState::kChanged || file == ProgramFileState::kGone)
    listener->ProgramFileMoved(run.record, file, moved_file);
  host.set_virtual_now_ms(run.virtual_now_ms);
  {
    std::string ignored;
    Status c = run.db->Get(kCancelKey, &ignored);
    if (c.ok()) host.set_cancel_recorded();
    else if (!c.IsNotFound()) return InContext(c, context);
  }
  {
    std::map<std::string, uint64_t> received;
    if (Status s = ReadSignalCounts(*run.db, &received); !s.ok()) return InContext(s, context);
    host.set_run(id, run.record.created_ms, std::move(received));
  }
  Result<std::unique_ptr<store::CheckpointMark>> mark = st.OpenMark(id);
  if (!mark.ok()) return InContext(mark.status(), context);
  VM& vm = *run.vm;
  HistoryEntry in_flight;
  {
    std::string raw;
    // In flight: an intent without an outcome (or one a resume in doubt already marked,
    // when that resume stopped before its next checkpoint).
    if (!(run.db->Get(HistoryKey(vm.effects_done() + 1), &raw).ok() && DecodeHistoryEntry(raw, &in_flight).ok() &&
          (in_flight.state == HistoryEntry::State::kIntent || in_flight.state == HistoryEntry::State::kInDoubt)))
      in_flight = HistoryEntry{};
  }
  const HistoryEntry found_in_flight = in_flight;
  if (vm.resumes_in_doubt() && in_flight.seq != 0) {
    // The effect in doubt is not run again: its history entry says so, and it keeps its
    // number, so that what runs next (a compensation) has a key of its own.
    in_flight.state = HistoryEntry::State::kInDoubt;
    store::Batch batch;
    batch.Put(HistoryKey(in_flight.seq), EncodeHistoryEntry(in_flight));
    if (Status w = run.db->Write(batch, run.record.durability != "async"); !w.ok()) return InContext(w, context);
    vm.CountInDoubtEffect(in_flight.seq);
    in_flight = HistoryEntry{};
  }
  vm.SetBudget(ApplyBudgets(budgets, host.NowMs(), &run.record));
  run.record.status = store::RunStatus::kRunning;
  run.record.pid = getpid();
  run.record.updated_ms = WallMs();
  if (Status w = st.WriteRun(run.record); !w.ok()) return InContext(w, context);
  listener->RunResuming(id, run.checkpoint, found_in_flight, vm.resumes_in_doubt());
  StoreJournal journal(run.db.get(), mark->get(), &host, id, run.record.durability != "async", run.checkpoint);
  journal.set_keep(run.record.keep_checkpoints, run.db->StoredBytes());
  if (Status s = journal.ContinueStepEvents(vm.effects_done()); !s.ok()) return InContext(s, context);
  if (Status s = ContinueRerun(st, id, *run.db, journal); !s.ok()) return InContext(s, context);
  if (in_flight.seq != 0) journal.SetResumedInFlight(in_flight);
  // With tasks, several effects may have been in flight: every intent past the checkpoint
  // (they are numbered in the order they began, a few apart at most).
  for (uint64_t seq = vm.effects_done() + 1, misses = 0; misses < 64; ++seq) {
    std::string raw;
    HistoryEntry e;
    if (!(run.db->Get(HistoryKey(seq), &raw).ok() && DecodeHistoryEntry(raw, &e).ok())) {
      ++misses;
      continue;
    }
    misses = 0;
    if (e.state == HistoryEntry::State::kIntent && e.seq != in_flight.seq) journal.SetResumedInFlight(e);
  }
  vm.SetJournal(&journal);
  return Execute(st, run.record, vm, host, journal, result, &before);
}

}  // namespace

namespace {

bool HasEnded(const store::RunRecord& r) {
  return r.status == store::RunStatus::kCompleted || r.status == store::RunStatus::kFailed ||
         r.status == store::RunStatus::kCancelled;
}

}  // namespace

Status SignalRun(const std::string& store_dir, const std::string& id, const std::string& name, const std::string& json,
                 SignalSent* sent) {
  *sent = SignalSent{};
  Result<store::Store> st = store::Store::Open(store_dir, false);
  if (!st.ok()) return st.status();
  Result<store::RunRecord> record = st->ReadRun(id);
  if (!record.ok()) return record.status();
  sent->record = *record;
  if (HasEnded(*record)) {
    sent->refused = true;
    return Status::Ok();
  }
  Status s = st->UpdateShared(MailboxName(id), [&](std::string* bytes) {
    Reader r(*bytes);
    while (!r.failed() && !r.at_end()) {
      bool same = r.Bytes() == name;
      r.Bytes();  // its value
      sent->earlier += same && !r.failed();
    }
    PutBytes(bytes, name);
    PutBytes(bytes, json);
  });
  if (!s.ok()) return InContext(s, "run " + id);
  if (record->status == store::RunStatus::kRunning) sent->live = st->IsRunLive(id, &sent->live_pid);
  return st->NoteWake(id, 0);  // a worker looks at the run now
}

Status CancelRun(const std::string& store_dir, const std::string& id, RunListener* listener, RunResult* result) {
  *result = RunResult{};
  result->run_id = id;
  Result<store::Store> st = store::Store::Open(store_dir, false);
  if (!st.ok()) return st.status();
  Result<store::RunRecord> record = st->ReadRun(id);
  if (!record.ok()) return record.status();
  result->record = *record;
  if (HasEnded(*record)) {
    result->refused = true;
    return Status::Ok();
  }
  if (Status s = st->RequestCancel(id); !s.ok()) return InContext(s, "run " + id);
  // Live: it raises `cancelled` at its next effect or wait. Not live (suspended, or its
  // process died): resume it here, so that it raises `cancelled` where it waits and its
  // handlers run (a saga compensates), to its end.
  Result<std::unique_ptr<store::RunLock>> lock = st->LockRun(id);
  if (!lock.ok()) {
    result->cancel_pending = true;
    // The holder may be a reader (flow runs giving packed runs their rows) that lets go
    // at once, and a suspended run raises nothing by itself: a worker is told it is due.
    if (Status s = st->NoteWake(id, 0); !s.ok()) return InContext(s, "run " + id);
    return Status::Ok();
  }
  record = st->ReadRun(id);  // as it is now that we hold it
  if (!record.ok()) return record.status();
  result->record = *record;
  if (record->status == store::RunStatus::kQueued) return CancelQueuedRun(*st, *record, result);  // never started
  if (record->status != store::RunStatus::kSuspended && record->status != store::RunStatus::kRunning) {
    result->refused = true;
    return Status::Ok();
  }
  listener->RunCancelling(id);
  return ContinueRun(*st, *record, {}, listener, result);
}

namespace {

// How many signals NAME the run's mailbox holds.
Result<uint64_t> CountSignals(store::Store& st, const std::string& id, const std::string& name) {
  std::string bytes;
  if (Status s = st.ReadShared(MailboxName(id), &bytes); !s.ok()) return s;
  uint64_t count = 0;
  Reader rd(bytes);
  while (!rd.at_end()) {
    std::string n(rd.Bytes());
    rd.Bytes();
    if (rd.failed()) return Status::Corruption("the mailbox of run " + id + " is malformed");
    if (n == name) ++count;
  }
  return count;
}

}  // namespace

Result<std::optional<WakeReason>> DueReason(store::Store& st, const store::RunRecord& r, int64_t now) {
  int64_t pid = 0;
  if (r.status == store::RunStatus::kQueued)  // oldest first is the worker's to keep
    return QueuedRunReady(st, r) ? std::optional<WakeReason>(WakeReason::kQueued) : std::nullopt;
  if (r.status != store::RunStatus::kRunning && r.status != store::RunStatus::kSuspended) return {std::nullopt};
  if (st.IsPoisoned(r.id)) return {std::nullopt};  // set aside: only an operator resumes it
  if (r.status == store::RunStatus::kRunning) {
    if (st.IsRunLive(r.id, &pid)) return {std::nullopt};
    return {WakeReason::kProcessDied};
  }
  if (r.wake_ms != 0 && (r.virtual_time || now >= r.wake_ms))
    return {r.waiting_signal.empty() ? WakeReason::kTimerDue : WakeReason::kWaitTimedOut};
  if (r.waiting_signal.empty()) return {std::nullopt};
  Result<uint64_t> count = CountSignals(st, r.id, r.waiting_signal);
  if (!count.ok()) return count.status();
  if (*count > r.signals_received) return {WakeReason::kSignalArrived};
  return {std::nullopt};
}

}  // namespace flow::runtime
