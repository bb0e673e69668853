// The Flow virtual machine: a stack machine whose whole state (value stack, frames,
// handlers, globals, heap) is plain data addressed by indices and ids.
#pragma once
#include <cstdint>
#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <map>
#include <queue>
#include <unordered_map>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vm/base/record.h"
#include "vm/base/saturate.h"
#include "vm/bytecode/module.h"
#include "vm/bytecode/opcodes.h"
#include "vm/completions.h"
#include "vm/error_report.h"
#include "vm/heap.h"
#include "vm/journal.h"
#include "vm/task.h"
#include "vm/value.h"

namespace flow {

class VM;

// What the VM needs from the world around it; tests supply their own.
class VmHost {
 public:
  virtual ~VmHost() = default;
  virtual void WriteOutput(std::string_view text) = 0;
  // A log line (log.info/warn/error), formatted, for the operator watching the process;
  // the run's history records the call itself.
  virtual void WriteLog(std::string_view line) {}
  virtual int64_t NowMs() = 0;  // ms since the epoch, on the run's clock
  // Waits `ms` on the run's clock (under --virtual-time the clock just moves on).
  virtual void SleepMs(int64_t ms) {}
  // The next wait began before a crash at this wall time: wait only what is left of it.
  virtual void SetWaitOrigin(int64_t wall_ms) {}
  // Should a wait of `ms` suspend the run (checkpoint, exit 75) rather than block the
  // process? Durable runs suspend long waits and every wait under --detach.
  // *wake_ms gets when the wait ends on the run's clock (a wait begun before a crash keeps
  // its origin).
  virtual bool ShouldSuspend(int64_t ms, int64_t* wake_ms) {
    *wake_ms = AddSaturated(NowMs(), ms);
    return false;
  }
  // A signal named `name` delivered to this run and not yet received: true with *json.
  virtual Status TakeSignal(const std::string& name, bool* found, std::string* json) {
    *found = false;
    return Status::Ok();
  }
  // signal.send(name, value): a signal to this run itself, which a signal.wait then takes
  // (flow test's host has a mailbox of its own; a run's mailbox is written by flow signal).
  // May mock() replace effects here? Only in tests: a run that is checkpointed must do what
  // its code says.
  virtual bool AllowsMocks() const { return false; }
  virtual Status SendSignal(const std::string& name, std::string json) {
    return Status::NotSupported("signal.send works in tests (flow test); send to a run with flow signal RUN NAME JSON");
  }
  // Has the run been cancelled (flow cancel)? True once: the `cancelled` error is raised
  // at one effect or wait, and the handler that catches it may then clean up.
  virtual bool TakeCancel() { return false; }
  // Should the run stop where it stands (its process is asked to end: a worker draining)?
  // A durable run then suspends before its next effect or at its wait, due at once, so
  // that it goes on from its last checkpoint with nothing repeated.
  virtual bool StopRequested() { return false; }
  // The run's environment: the value of variable `name`, false if it is not set. The VM
  // reads it only to re-read the secrets of a restored run; stdlib's natives read it for
  // env.get, secret() and their own settings. The VM reads no process state itself: a host
  // that has no environment (tests, or one that only shows a run, whose secrets show as
  // ***) answers from what it has.
  virtual bool EnvironmentValue(const std::string& name, std::string* value) { return false; }
  virtual bool virtual_time() const { return false; }
  // The idempotency key of the effect being run (RUN/n), or "" outside a durable run.
  virtual std::string IdempotencyKey() { return ""; }
  // run.id and run.started_at: the run's id ("" when it has none, as an --ephemeral run),
  // and when it started, in ms since the epoch.
  virtual std::string RunId() { return ""; }
  virtual int64_t RunStartedMs() { return 0; }
  // Circuit breakers, shared by every run of the store. Enter: false (with *error set)
  // when the breaker is open. Exit: the body's outcome.
  struct BreakerPolicy {
    int64_t failures = 5;      // failures within `window` that open it
    int64_t window_ms = 60'000;
    int64_t cooldown_ms = 30'000;
  };
  virtual Status BreakerEnter(const std::string& name, const BreakerPolicy& policy, bool* admitted);
  virtual Status BreakerExit(const std::string& name, const BreakerPolicy& policy, bool success);
  // Shared limits (`limit NAME (...)`, vm/limit.h), shared like breakers: at most
  // `concurrency` bodies at once and `rate` starts per `per_ms` (0: no such bound).
  struct LimitPolicy {
    int64_t concurrency = 0;
    int64_t rate = 0;
    int64_t per_ms = 0;
  };
  // Takes a slot for the body task `task` opens with `depth` handlers below it (entering
  // again after a crash, it finds its slot held); or (*admitted false) keeps its place in
  // line and says when to try again, on the run's clock.
  virtual Status LimitEnter(const std::string& name, const LimitPolicy& policy, const std::string& task,
                            uint32_t depth, bool* admitted, int64_t* retry_at_ms);
  // The body ended, or the wait was given up: its slot, or its place in line, is freed.
  virtual Status LimitLeave(const std::string& name, const std::string& task, uint32_t depth);
};

// What a native (a builtin or a method) did: one value that callers switch on. (The VM's
// own slow paths that may abort, such as opening a breaker in the store, return it too.)
enum class NativeResult : uint8_t {
  kDone,       // *out holds the result
  kRaised,     // an error is pending (VM::Raise): the script's handlers may take it
  kAborted,    // the store failed (VM::Abort): the run stops, the effect still in flight
  kSuspended,  // the run suspends (VM::Suspend): the effect stays in flight, runs again on resume
  kInFlight,   // the effect is in flight and the task waits for it (VM::WaitUntil): others run
  kBlocked,    // the task waits for other tasks (VM::BlockOn): the call runs again when woken
};

// A builtin: reads args[0..argc) and writes *out, or raises, aborts or suspends.
using BuiltinFn = NativeResult (*)(VM& vm, Value* args, int argc, Value* out);
// A method of a string, list or map value (xs.push(v), s.split(","), m.keys()).
// A native method (vm/bytecode/methods.def): the VM has found it and checked its argument count.
using NativeMethodFn = NativeResult (*)(VM& vm, Value receiver, Value* args, int argc, Value* out);

// The native half of the language, supplied by stdlib/ (the VM does not depend on it).
struct Natives {
  const BuiltinFn* builtins = nullptr;  // indexed by builtin id, kBuiltinCount entries
  const NativeMethodFn* methods = nullptr;  // indexed by method id; null for those written in Flow
};

// Limits on a run, against runaway agents: exceeding one raises kind `budget`. Each budget
// grants one grace per run: the first time, the handler that catches the error may clean
// up (10 effects, 10,000 instructions, 1 s, no more tokens, an eighth more memory); past
// that the error is final: no handler catches it and the run stops, resumable with a
// larger budget. The grace is kept in checkpoints with the limit it was given for, so a
// resumed run gets a new one only when its budget changed.
inline constexpr uint64_t kBudgetGraceEffects = 10;
inline constexpr uint64_t kBudgetGraceInstructions = 10'000;
inline constexpr int64_t kBudgetGraceMs = 1000;
struct Budget {
  uint64_t max_effects = 0;       // 0: none
  uint64_t max_instructions = 0;  // 0: none
  int64_t deadline_ms = INT64_MAX;  // absolute, on the run's clock
  uint64_t max_tokens = 0;        // what natives charge (ChargeTokens); 0: none
  uint64_t max_memory = 0;        // bytes of the run's heap (Heap::bytes()); 0: none
};
// The values are on disk: they index the budget graces of a checkpoint (docs/checkpoint.md,
// "VM header"), in this order. Do not change them; a new kind takes the next number.
enum class BudgetKind : uint8_t { kEffects = 0, kInstructions = 1, kDeadline = 2, kTokens = 3, kMemory = 4 };
inline constexpr int kBudgetKinds = 5;
struct BudgetGrace {
  uint64_t limit = 0;  // the budget it was given for (0: not given yet)
  uint64_t end = 0;    // where it ends: effects, instructions, ms on the run's clock, tokens, bytes
};

enum class RunOutcome {
  kCompleted,  // the script returned
  kFailed,     // an uncaught Flow error: uncaught_error()
  kAborted,    // the journal could not record an effect (a store failure): abort_status()
  kSuspended,  // every task waits on a long timer, or one on a signal: suspension()
  kOutOfMemory,  // an allocation failed (std::bad_alloc): the state since the last
                 // checkpoint is lost, the run stops there
};

// Receives what changed since the previous checkpoint, encoded (docs/checkpoint.md), in
// the order a store applies it: what is gone, then the changed records.
class CheckpointDelta {
 public:
  static constexpr uint32_t kObject = UINT32_MAX;  // Put's chunk for a whole object's record
  virtual ~CheckpointDelta() = default;
  virtual void Freed(uint32_t id) = 0;  // a persisted object is gone
  // Chunks [from, to) of list `id` are gone (the list was freed, shrank, or is stored whole).
  virtual void DroppedChunks(uint32_t id, uint32_t from, uint32_t to) = 0;
  // `record` holds kRecordEnvelope bytes left for the store's envelope (vm/base/record.h),
  // then the payload of object `id` (chunk == kObject) or of chunk `chunk` of list `id`.
  // The buffer is reused for the next record: seal it in place, copy it, or leave it.
  virtual void Put(uint32_t id, uint32_t chunk, std::string* record) = 0;
};

class VM {
 public:
  VM(const Module* module, VmHost* host, Natives natives);
  ~VM();

  // Runs from the start, or from where a restored checkpoint left off.
  RunOutcome Run();
  // Sets up the top-level frame, so that a first checkpoint can be taken before Run().
  void PrepareToRun();
  const Status& abort_status() const { return abort_status_; }

  // Limits for this execution (the runtime keeps them with the run). Call after restoring
  // a checkpoint: its graces apply to the same limits only.
  void SetBudget(const Budget& budget);
  uint64_t instructions() const { return instructions_; }
  // The token budget: a count the natives charge, in units that are theirs to define
  // (stdlib's llm.chat charges the model tokens each response reports). The VM keeps the
  // count in its checkpoints and enforces the limit. TokensLeft is false (budget raised,
  // naming the `unit`) when the run has used its budget.
  bool TokensLeft(std::string_view unit);
  void ChargeTokens(uint64_t n) { tokens_used_ = AddSaturated(tokens_used_, n); }
  uint64_t tokens_used() const { return tokens_used_; }
  // Raises `budget` if the run's deadline passed, else `timeout` (for waits cut short).
  bool RaiseDeadline();
  // For whatever is about to add `bytes` to the heap (a string built, a list grown):
  // false (budget raised) when that would take the heap past its memory budget.
  bool AdmitBytes(uint64_t bytes) {
    return bytes <= limits_.max_memory - std::min<uint64_t>(heap_.bytes(), limits_.max_memory) || RaiseMemoryBudget();
  }

  // Durability: with a journal set, every effectful builtin call is reported to it.
  void SetJournal(EffectJournal* journal);
  EffectJournal* journal() const { return journal_; }  // null outside a durable run
  uint64_t effects_done() const { return effects_done_; }
  // The scope of the effect being run inside a step: "KEY/n" (the n-th effect of step KEY
  // in this execution of it), or "" outside steps. The journal builds idempotency keys
  // RUN/KEY/n from it.
  // What names the effect being run in its idempotency key RUN/<effect_key>: "KEY/n"
  // inside step KEY (its n-th effect), else the task's spawn path and its own count of
  // effects: "n" at the top level, "2.5/n" in a task. Stable across resumes.
  const std::string& effect_key() const { return task_.effect_scope; }
  // Is the effect being run inside a step (effect_key() is "KEY/n")?
  bool effect_in_step() const { return task_.effect_in_step; }
  // The running task's spawn path ("2.5"; "" for the top level, or between tasks).
  const std::string& task_path() const;
  // The earliest deadline of the open timeouts (ms on the run's clock), or INT64_MAX.
  int64_t deadline() const { return task_.deadline; }
  // True after restoring a checkpoint taken inside an open `once` step.
  bool resumes_in_doubt() const { return task_.resume_in_doubt; }
  // On such a resume, the effect that was in flight (number `seq`) is counted as done, in
  // doubt: what runs next gets the next number, and the next idempotency key.
  void CountInDoubtEffect(uint64_t seq);

  // Encodes the state for a checkpoint: everything when `full`, else only what changed
  // since the previous call. Valid between instructions (from a journal callback, or
  // before Run()).
  void EncodeCheckpoint(bool full, std::string* header, CheckpointDelta* delta);
  // Rebuilds the whole VM state from a checkpoint header and its objects (fetched by id
  // through `object`, and the chunks of long lists through `list_chunk`; each returns false
  // for a missing one). Checks every reference and every frame against the module, so a
  // damaged checkpoint is refused, never run. With `read_string_later`, strings are not
  // fetched now: each is read through it (as `object` would) when first used, and a damaged
  // one is found then (Heap::string_error); it must stay valid while the VM lives.
  using ObjectFetch = std::function<bool(uint32_t id, std::string* bytes)>;
  Status RestoreCheckpoint(std::string_view header, const ObjectFetch& object,
                           const std::function<bool(uint32_t id, uint32_t chunk, std::string* bytes)>& list_chunk = {},
                           ObjectFetch read_string_later = {});
  // For `flow inspect`: frames from the innermost, with their function, pc, line and locals.
  struct FrameView {
    std::string function;
    std::string file;  // the source file of its code
    uint32_t pc;
    uint32_t line;
    std::vector<std::pair<std::string, Value>> locals;
  };
  std::vector<FrameView> InspectFrames() const;  // the top level's
  // For `flow inspect`: every task that has not finished (and failed ones not awaited), the
  // top level first (path ""), then by spawn path: its state, what it waits for, its frames.
  struct TaskView {
    std::string path;
    std::string state;      // running, runnable, waiting, blocked, failed
    std::string waits_for;  // "sleep", "http.get", "await", "parallel for", "step \"k\"", ...
    int64_t wake_ms = 0;    // a timer's end, or 0
    std::vector<FrameView> frames;
  };
  std::vector<TaskView> InspectTasks() const;
  std::vector<std::pair<std::string, Value>> InspectGlobals() const;

  // Sets a global by name before Run() (the program's `args`); false if the program has none.
  bool SetGlobal(std::string_view name, Value v);
  // For `flow fork --set`: sets the variable `name` as the top level's code sees it (a local
  // of its innermost frame that has one, else a global) in a restored VM, to be written in
  // a full checkpoint. Says which it set ("global", "local of FN"), or "" if none is named so.
  std::string AssignVariable(std::string_view name, Value v);

  // After kFailed: the uncaught error as data, and rendered (FormatErrorReport).
  ErrorReport UncaughtReport() const;
  std::string FormatUncaught() const;
  Value uncaught_error() const { return uncaught_; }
  // The completed steps (a map: key -> value) and the `once` steps in doubt (key -> their
  // error), or null; and, before Run(), those a rerun starts with (flow rerun: entering
  // such a step returns its value, or raises its doubt, without running it).
  Value completed_steps() const { return steps_; }
  Value doubtful_steps() const { return doubtful_steps_; }
  void SeedSteps(Value completed, Value doubtful) {
    steps_ = completed;
    doubtful_steps_ = doubtful;
  }

  // For builtins: a wait asks the run to suspend instead of blocking; the effect stays
  // in flight and runs again (and decides again) on resume. `return vm.Suspend(...)`.
  NativeResult Suspend(Suspension s) {
    suspension_ = std::move(s);
    return NativeResult::kSuspended;
  }
  const Suspension& suspension() const { return suspension_; }
  // After kSuspended: the shared limit whose slot the task due first waits for, or "".
  const std::string& suspended_for_limit() const { return suspended_for_limit_; }
  // For an effect that waits (sleep): the task waits until `wake_ms` on the run's clock,
  // other tasks run meanwhile, and the effect then completes (null), or raises `timeout`
  // when the wake is a deadline (`cut_by_deadline`), or `cancelled`. `return vm.WaitUntil(...)`.
  NativeResult WaitUntil(int64_t wake_ms, bool cut_by_deadline);
  // For an effect that proceeds while other tasks run: operation `op` of `source` has
  // started; when it ends, `finish` runs on the VM's thread, the task's state restored,
  // and gives the effect's result (or raises). `return vm.WaitForOperation(...)`.
  using Finish = std::function<NativeResult(VM& vm, Value* out)>;
  NativeResult WaitForOperation(Completions* source, uint64_t op, Finish finish);
  // For signal.wait while other tasks run: the task waits for signal `name` (until
  // `wait_end` on the run's clock, or INT64_MAX); the VM reads the mailbox (VmHost::TakeSignal)
  // when its tasks wait. `finish` gets the signal's JSON, or null when the wait ended without
  // one (it raises the timeout). Only when the task is not the run's only one: a lone wait
  // suspends the run (Suspend) as before.
  using SignalFinish = std::function<NativeResult(VM& vm, const std::string* json, Value* out)>;
  NativeResult WaitForSignal(std::string name, int64_t wait_end, SignalFinish finish);
  bool OtherTasksLive() const;
  // After a native that returned kInFlight from WaitForOperation (a call it made): what
  // becomes of that result, as the caller's result (llm.chat over an http.post).
  NativeResult ThenWithResult(std::function<NativeResult(VM& vm, Value in, Value* out)> then);
  // Tasks (vm/scheduler.cc), for the natives of the `tasks` module and task methods.
  NativeResult RaceTasks(Value tasks, Value* out);    // the first to finish; cancels the rest
  NativeResult SettleTasks(Value tasks, Value* out);  // all, as {ok, value | error} maps
  void CancelTask(Value task, bool by_run = false);  // by_run: flow cancel
  bool TaskFinished(Value task) const;
  // For builtins: the store is damaged or failed (a run's mailbox), which no script may
  // catch: the run stops (kAborted, abort_status()) with the effect still in flight.
  NativeResult Abort(Status s) {
    abort_status_ = std::move(s);
    return NativeResult::kAborted;
  }

  // mock(name, fn) under flow test: calls of the effectful builtin `id` call fn instead,
  // with the same arguments. Never in a run that is checkpointed (the host refuses it).
  void SetMock(uint16_t id, Value fn) { mocks_[id] = fn; }
  int PadMockArguments(Value mock, int argc);

  // For builtins.
  Heap& heap() { return heap_; }
  VmHost& host() { return *host_; }
  const Module& module() const { return *module_; }
  bool Raise(std::string kind, std::string message, Value data = Value::Null());

  // The most a task's stack grows to (values, about 16 MiB); past it a call raises
  // stack_overflow.
  static constexpr uint32_t kStackCapacity = 1u << 20;
  // The most values a task's stack has held room for in this VM (stacks grow on demand).
  uint32_t largest_stack_capacity() const { return largest_stack_; }
  static constexpr uint32_t kMaxFrames = 100'000;

 private:
  // Out-of-line halves of instructions (vm_slow_paths.cc, binary_ops.cc). Each returns
  // false with pending_error_ set when the operation raises.
  bool BinaryOp(Op op, Value a, Value b, Value* out);
  bool GetIndex(Value container, Value index, Value* out);
  bool SetIndex(Value container, Value index, Value value);
  bool GetField(Value object, const std::string& name, Value* out);
  bool SetField(Value object, const std::string& name, Value value);
  bool BuildMap(const Value* pairs, int n, Value* out);
  bool BuildString(const Value* parts, int n, Value* out);
 public:
  Value JoinSecret(const Value* parts, int n);
 private:
  bool IterPrep(Value* sequence);
  bool MapIterNext(Value* slots, int vars);
  bool Negate(Value a, Value* out);
  bool ThrowValue(Value v);
  [[gnu::noinline]] NativeResult CallValue(Value* callee_slot, int argc, uint32_t call_pc);
  // What stopped the running task (Dispatch): the scheduler (Schedule) decides what runs next.
  enum class TaskStop : uint8_t {
    kReturned,   // its outermost function returned: its value is at stack[0]
    kUncaught,   // an error no handler took (StopUncaught)
    kWaiting,    // its effect is in flight (task_.in_flight)
    kBlocked,    // it waits for tasks or a step; its instruction runs again when woken
    kAborted,    // the store failed: the run stops
    kSuspended,  // a native suspended the run (a signal wait)
  };
  TaskStop Dispatch();
  RunOutcome Schedule();
  // Task switching and bookkeeping (vm/scheduler.cc).
  uint32_t NewTask(Value closure, const Value* args, int argc);  // a runnable task; returns its id
  void SwapIn(uint32_t id);
  void FitStack();  // the running task's stack as deep as its frames may use it
  void RebuildSchedule();  // after a restore: run queue, timers, running steps   // makes task `id` the running one (its record moves into task_)
  void ParkCurrent();         // moves the running task's record back into its TaskObj
  void MakeRunnable(uint32_t id);
  void Wake(uint32_t id, uint64_t epoch);
  void WakeAll(std::vector<std::pair<uint32_t, uint64_t>>* waiters);
  void AddTimer(int64_t wake_ms, uint32_t id);
  void FireTimers(int64_t until);
  void GiveUp(uint32_t id);
  void FinishTask(uint32_t id, TaskState state, Value result);
  void DropFromLive(uint32_t id);
  void CancelAll(bool by_run);
  // Raises `cancelled` (true) once when the running task's cancel was asked.
  bool RaiseTaskCancel();
  // The running task waits for the tasks in `ids` that have not finished (any of them):
  // kBlocked. A deadline of the task also wakes it.
  NativeResult BlockOn(const std::vector<uint32_t>& ids, bool on_stop = false);
  // Checks before a wait: cancelled, or past the task's deadline: raised.
  bool WaitAllowed();
  // `tasks` is a task or a list of tasks: their ids, or false with a type error raised.
  bool TaskIds(Value tasks, const char* what, std::vector<uint32_t>* ids);
  NativeResult Await(Value* slot);
  NativeResult Parallel(Value* operands, Value* out);
  NativeResult Spawn(Value closure, Value* out);
  // The in-flight effect of a woken task completes: its result lands, or its error is raised.
  NativeResult FinishInFlight();
  NativeResult CompleteEffect(uint64_t seq, uint16_t id, int step, NativeResult r, Value result, Value* result_slot,
                              uint32_t call_pc);
  // When every task waits: the earliest timer fires (the clock moves to it), or the run
  // suspends. False with *stop when the run ends here.
  bool WaitForTimers(RunOutcome* stop);
  bool PickNext(RunOutcome* stop);
  bool PollWaits(RunOutcome* stop, bool* aborted);
  RunOutcome SuspendRun(int64_t wake_ms, std::string signal);
  size_t CountFailedUnawaited() const;
  RunOutcome EndOfTopLevel();
  bool OwnsOpenStep(uint32_t task, const std::string& key) const;
  const Value* UpvalueStack(uint32_t owner) const;
  // On an error at a retry: waits and returns true to run the body again, or returns
  // false having added data.attempts to the error (or replaced it by an outer timeout).
  [[gnu::noinline]] bool RetryAfterError(Handler& h);
  [[gnu::noinline]] bool OpenRetry(Value options);
  // The handlers' slow paths that reach the store or the host: raised, or aborted (the
  // store failed) with abort_status(), never a bool whose meaning needs that status.
  [[gnu::noinline]] NativeResult OpenStep(uint32_t begin_pc, bool once, bool* done);
  bool IsOnceStep(const Handler& h) const;
  // The innermost open step among handlers_[0, below), or null.
  Handler* EnclosingStep(size_t below);
  [[gnu::noinline]] void RaiseInDoubt();
  [[gnu::noinline]] bool CloseStep();
  [[gnu::noinline]] bool OpenTimeout(Value duration);
  [[gnu::noinline]] NativeResult OpenBreaker(Value operand);
  [[gnu::noinline]] NativeResult CloseBreaker(const Handler& h, bool success);
  // `limit` (vm/limits.cc): takes a slot, or waits for one (kBlocked: LIMIT_BEGIN runs
  // again when the task wakes); and frees it when the body is left, however it is left
  // (kDone, or kAborted when the store failed).
  [[gnu::noinline]] NativeResult OpenLimit();
  [[gnu::noinline]] NativeResult CloseLimit(const Handler& h);
  // The running task waits (kBlocked) until `wake_ms` on the run's clock, or a cancel.
  NativeResult BlockUntil(int64_t wake_ms);
  // The name of the limit whose slot parked task `task` waits for, or "".
  std::string LimitWaitedFor(uint32_t task) const;
  void RecomputeDeadline();
  void PushHandler(Handler h);
  // False (aborted: a limit's slot could not be freed in the store) with abort_status_.
  [[gnu::noinline]] bool LeaveHandlers(uint32_t depth);
  // False with `fatal` raised unless the innermost handler is a `kind` of this frame (a
  // *_END opcode that the bytecode did not begin).
  bool EndsOpenHandler(HandlerKind kind);
  // Budgets: what the checks compare against (the budget, or the end of its grace), and
  // the error when one is exceeded (final once its grace is used).
  void ApplyLimits();
  bool RaiseBudget(BudgetKind kind, uint64_t limit, std::string message);
  [[gnu::noinline]] bool RaiseMemoryBudget();
  // Makes the running task's stack hold at least `needed` values (needed <= kStackCapacity).
  // Moves it: pointers into it are stale after.
  [[gnu::noinline]] void GrowStack(uint32_t needed);
  // The error path of Dispatch: unwinding to a handler, a run's end on an uncaught error,
  // a retry's wait.
  [[gnu::cold, gnu::noinline]] bool HandleError(TaskStop* stop);
  void CutToHandler(const Handler& h, uint32_t resume_pc);
  TaskStop StopUncaught();
  bool WaitBeforeRetry(TaskStop* stop);

  // Sets effect_scope_ for the effect about to run; returns the index of the step whose
  // count it takes (advanced once the effect is done), or -1 outside steps.
  int EnterEffectScope();
  void SetTaskEffectKey();
  [[gnu::noinline]] NativeResult RunEffect(uint16_t id, Value* args, int argc, Value* result_slot, uint32_t call_pc);
  [[gnu::noinline]] void CloseUpvalues(uint32_t from_slot);
  [[gnu::noinline]] uint32_t CaptureUpvalue(uint32_t slot);
  [[gnu::noinline]] void FillTrace(Value error, uint32_t pc);
  // Collects, then checks the memory budget: false (budget raised) when over it.
  [[gnu::noinline]] bool MaybeCollect();
  [[gnu::noinline]] void Collect();
  Value ReadUpvalue(uint32_t id) const;
  void WriteUpvalue(uint32_t id, Value v);

  int FindMethodOf(Value receiver, const std::string& name, int argc);
  NativeResult CallFlowMethod(uint32_t base, int argc, int method);

  const Module* module_;
  std::vector<int32_t> method_functions_;  // by method id: its function in module_, or -1
  VmHost* host_;
  Natives natives_;
  Heap heap_;
  std::vector<Value> constants_;  // module constants as values (strings on the heap)
  std::vector<uint32_t> constant_roots_;
  std::vector<Value> globals_;
  std::unordered_map<uint16_t, Value> mocks_;  // SetMock: by builtin id
  // The run's tasks. The running one's record lives in the VM itself, so the dispatch loop
  // reaches its fields at fixed offsets from `this`, as fast as when they were the VM's own;
  // the others wait in parked_ (none yet: a run has one task, the top level). Switching
  // tasks swaps records, which moves vectors, not values. What stays in the VM is run-wide:
  // globals, heap, constants, steps, budgets and their graces, the journal, the effect
  // count (idempotency keys number a run's effects), instructions and tokens, and the run's
  // outcome (uncaught_, abort_status_, budget_final_: a final budget stops the whole run).
  Task task_;
  uint32_t current_ = kNoTask;   // the running task's TaskObj (kNoTask: none, between tasks)
  uint32_t main_task_ = kNoTask; // the top level's
  Value live_tasks_ = Value::Null();  // list of the tasks not finished, and failed ones not awaited
  uint64_t next_order_ = 0;      // the next place in the run queue, or in finishing
  std::deque<uint32_t> ready_;   // the run queue (derived on restore from each task's order)
  struct Timer {
    int64_t wake_ms;
    uint64_t order;
    uint32_t task;
    uint64_t epoch;
    bool operator>(const Timer& o) const { return wake_ms != o.wake_ms ? wake_ms > o.wake_ms : order > o.order; }
  };
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;  // derived
  uint64_t timers_added_ = 0;  // orders timers of the same wake (derived)
  uint64_t wait_epochs_ = 0;   // numbers each wait of every task (derived)
  std::unordered_map<std::string, uint32_t> running_steps_;  // step key -> task running it (derived)
  Suspension suspension_;
  std::string suspended_for_limit_;
  uint32_t largest_stack_ = 0;
  // Operations in flight (never checkpointed: a restored task makes its call again).
  struct Operation {
    uint32_t task;
    Finish finish;
    Completions* source;
    uint64_t source_id;
  };
  std::vector<Completions*> sources_;  // http transfers, exec children: each polled when tasks wait
  std::unordered_map<uint64_t, Operation> operations_;  // by the VM's id (in_flight.operation)
  std::map<std::pair<Completions*, uint64_t>, uint64_t> operation_ids_;  // the source's id -> the VM's
  uint64_t next_operation_ = 0;
  uint64_t finishing_op_ = 0;  // the operation a native just started (ThenWithResult)
  bool OperationsPending() const;
  void AbandonOperation(uint64_t id);
  void PollOperations(int64_t timeout_ms);
  // Signal waits of tasks (never checkpointed: a restored task makes its call again).
  struct SignalWaiter {
    std::string name;
    SignalFinish finish;
    bool arrived = false;
    std::string json;
  };
  std::unordered_map<uint32_t, SignalWaiter> signal_waiters_;  // by task
  // Reads the mailbox for each waiting task: true when one was woken; false with
  // abort_status_ set when the store failed.
  bool PollSignals(bool* woke);
  Value uncaught_ = Value::Null();
  EffectJournal* journal_ = nullptr;
  uint64_t effects_done_ = 0;
  Status abort_status_;
  std::vector<uint32_t> changed_ids_;  // scratch for EncodeCheckpoint
  std::string record_scratch_;         // likewise: one record at a time
  Value steps_ = Value::Null();        // map: key of each completed step -> its value
  // map: key of each `once` step found in doubt on a resume -> its `in_doubt` error. It stays
  // in doubt for the rest of the run: a task that enters it later (one that waited for it)
  // gets the same error rather than running it again.
  Value doubtful_steps_ = Value::Null();
  Budget budget_;                    // as given
  Budget limits_{UINT64_MAX, UINT64_MAX, INT64_MAX, UINT64_MAX, UINT64_MAX};  // as enforced
                                                                             // (MAX: none)
  BudgetGrace graces_[kBudgetKinds];  // checkpointed
  bool budget_final_ = false;        // the pending `budget` error stops the run
  uint64_t instructions_ = 0;          // counted only under an instruction budget
  uint64_t tokens_used_ = 0;
};

}  // namespace flow
