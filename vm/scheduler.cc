// Tasks: the threads of execution of one run, scheduled cooperatively on one thread.
// A task runs until it finishes, waits for an effect (a sleep's timer), or blocks on other
// tasks (await, tasks.race/settle, parallel for, a step another task is running); then
// the next runnable one runs, first in, first out. When none can run, the earliest timer
// fires (the clock jumps to it under --virtual-time) or, when it is far, the run
// suspends. Everything here is plain data on the heap (TaskObj), so a checkpoint holds
// every task; what is derived (run queue, timers, waiters) is rebuilt on restore.
#include <fmt/format.h>

#include <algorithm>

#include "vm/base/coding.h"
#include "vm/vm.h"

namespace flow {

namespace {

constexpr const char* kCancelledByRun = "the run was cancelled (flow cancel)";
constexpr const char* kCancelledTask = "the task was cancelled";

}  // namespace

// ---- task records ----

// A task's spawn path: its parent's, a dot, its number among the parent's spawns. Past 64
// characters (tasks spawned 30 deep) the parent's part is its hash, so that paths, keys
// and traces stay short however deep spawns nest, and stay the same across resumes.
std::string ChildPath(const std::string& parent, uint32_t n) {
  constexpr size_t kMaxPath = 64;
  const bool in_step = !parent.empty() && parent.back() == ':';  // "KEY:" (NewTask)
  std::string path = parent.empty() || in_step ? parent + std::to_string(n) : parent + "." + std::to_string(n);
  if (path.size() <= kMaxPath) return path;
  return fmt::format("~{:016x}{}{}", Checksum(parent), in_step ? ":" : ".", n);
}

const std::string& VM::task_path() const {
  static const std::string kNone;
  return current_ == kNoTask ? kNone : heap_.Get<TaskObj>(current_)->path;
}

uint32_t VM::NewTask(Value closure, const Value* args, int argc) {
  const ClosureObj* c = heap_.Get<ClosureObj>(closure.ref);
  const Function& fn = module_->functions[c->function];
  // Spawned inside a step, a task is named by the step and its place among the step's
  // spawns (KEY:n), so that a retry of the step's body spawns it under the same name and
  // its effects carry the same keys; else by its place among its spawner's (PATH.n).
  std::string path;
  if (Handler* step = EnclosingStep(task_.handlers.size())) {
    path = ChildPath(heap_.StringOf(task_.stack[step->stack_height - 1]) + ":", ++step->spawned);
  } else {
    path = ChildPath(heap_.Get<TaskObj>(current_)->path, ++task_.spawned);
  }
  uint32_t id = heap_.Make<TaskObj>(std::move(path));
  TaskObj* t = heap_.Mutable<TaskObj>(id);
  Task& e = t->exec;
  e.stack.assign(std::max<uint32_t>(fn.max_stack + 1, static_cast<uint32_t>(argc) + 1), Value::Null());
  e.stack[0] = closure;
  for (int i = 0; i < argc; ++i) e.stack[1 + i] = args[i];
  e.sp = static_cast<uint32_t>(argc) + 1;
  e.frames.push_back({c->function, closure.ref, 0, 0});
  e.deadline = limits_.deadline_ms;
  t->list_index = static_cast<uint32_t>(heap_.Get<ListObj>(live_tasks_.ref)->items.size());
  heap_.PushItem(live_tasks_.ref, Value::Ref(Tag::kTask, id));
  MakeRunnable(id);
  return id;
}

void VM::MakeRunnable(uint32_t id) {
  TaskObj* t = heap_.Mutable<TaskObj>(id);
  t->state = TaskState::kRunnable;
  t->order = next_order_++;
  ready_.push_back(id);
}

void VM::Wake(uint32_t id, uint64_t epoch) {
  const TaskObj* t = heap_.Get<TaskObj>(id);
  if (t->wait_epoch != epoch || (t->state != TaskState::kBlocked && t->state != TaskState::kWaiting)) return;
  heap_.Mutable<TaskObj>(id)->wait_epoch = ++wait_epochs_;  // its other registrations are stale now
  MakeRunnable(id);
}

// Tasks blocked on another (await, a step): each runs its instruction again. Only blocked
// ones: a waiting task is woken by its own timer or operation, never by another task.
void VM::WakeAll(std::vector<std::pair<uint32_t, uint64_t>>* waiters) {
  std::vector<std::pair<uint32_t, uint64_t>> woken;
  woken.swap(*waiters);
  for (auto [id, epoch] : woken) {
    const Object* o = heap_.GetObject(id);
    if (o && o->kind == ObjKind::kTask && static_cast<const TaskObj*>(o)->state == TaskState::kBlocked) Wake(id, epoch);
  }
}

// Wakes the tasks whose timers end at `until` or before (stale ones wake nobody).
void VM::FireTimers(int64_t until) {
  while (!timers_.empty() && timers_.top().wake_ms <= until) {
    Timer t = timers_.top();
    timers_.pop();
    Wake(t.task, t.epoch);
  }
}

void VM::AddTimer(int64_t wake_ms, uint32_t id) {
  timers_.push({wake_ms, timers_added_++, id, heap_.Get<TaskObj>(id)->wait_epoch});
}

void VM::SwapIn(uint32_t id) {
  TaskObj* t = heap_.Mutable<TaskObj>(id);  // its record is rewritten: the state moves out
  task_ = std::move(t->exec);
  t->exec = Task{};
  current_ = id;
  FitStack();
  RecomputeDeadline();  // budgets may have changed since it ran (a resume's)
}

void VM::FitStack() {
  uint32_t needed = task_.sp;
  for (const Frame& f : task_.frames) needed = std::max(needed, f.base + module_->functions[f.function].max_stack);
  if (needed > task_.stack.size()) GrowStack(needed);
}

void VM::RebuildSchedule() {
  ready_.clear();
  timers_ = {};
  running_steps_.clear();
  std::vector<std::pair<uint64_t, uint32_t>> runnable, blocked;
  const std::vector<Value>& live = heap_.Get<ListObj>(live_tasks_.ref)->items;
  for (uint32_t i = 0; i < live.size(); ++i) {
    const uint32_t id = live[i].ref;
    TaskObj* t = const_cast<TaskObj*>(heap_.Get<TaskObj>(id));  // derived fields only
    t->list_index = i;
    const Task& exec = id == current_ ? task_ : t->exec;
    for (const Handler& h : exec.handlers)
      if (h.kind == HandlerKind::kStep) running_steps_[heap_.StringOf(exec.stack[h.stack_height - 1])] = id;
    if (id == current_) continue;
    switch (t->state) {
      case TaskState::kRunnable: runnable.emplace_back(t->order, id); break;
      case TaskState::kWaiting: AddTimer(t->exec.in_flight.wake_ms, id); break;
      case TaskState::kBlocked: blocked.emplace_back(t->order, id); break;  // it waits again
      default: break;
    }
  }
  std::sort(runnable.begin(), runnable.end());
  for (auto [order, id] : runnable) ready_.push_back(id);
  // A blocked task runs its instruction again, which waits again if it must: behind the
  // runnable ones. (Its record may keep saying blocked: it reads the same on restore.)
  std::sort(blocked.begin(), blocked.end());
  for (auto [order, id] : blocked) ready_.push_back(id);
}

void VM::ParkCurrent() {
  TaskObj* t = heap_.Mutable<TaskObj>(current_);
  t->exec = std::move(task_);
  task_ = Task{};
  current_ = kNoTask;
}

void VM::DropFromLive(uint32_t id) {
  TaskObj* t = heap_.Mutable<TaskObj>(id);
  const auto& items = heap_.Get<ListObj>(live_tasks_.ref)->items;
  uint32_t at = t->list_index;
  if (at >= items.size() || items[at].ref != id) return;  // not there
  uint32_t last = static_cast<uint32_t>(items.size() - 1);
  if (at != last) {
    Value moved = items[last];
    heap_.SetItem(live_tasks_.ref, at, moved);
    heap_.Mutable<TaskObj>(moved.ref)->list_index = at;
  }
  heap_.PopItem(live_tasks_.ref);
}

// A finished task keeps its value or error; its execution is gone. A failed one stays
// among the live tasks until it is awaited: one never awaited fails the run at its end.
void VM::FinishTask(uint32_t id, TaskState state, Value result) {
  if (id == current_) CloseUpvalues(0);  // its variables that other tasks' closures hold live on
  TaskObj* t = heap_.Mutable<TaskObj>(id);
  t->state = state;
  t->result = result;
  t->order = next_order_++;
  if (id == current_)
    task_ = Task{};
  else
    t->exec = Task{};
  if (state == TaskState::kDone || t->awaited) DropFromLive(id);
  WakeAll(&heap_.Mutable<TaskObj>(id)->finish_waiters);
  WakeAll(&heap_.Mutable<TaskObj>(id)->stop_waiters);
}

static void MarkAwaited(Heap& heap, uint32_t id) { heap.Mutable<TaskObj>(id)->awaited = true; }

// Its outcome is taken (another task's error, or a race's winner, decided): cancelled if
// it still runs, and no longer among the live tasks once it has finished.
void VM::GiveUp(uint32_t id) {
  MarkAwaited(heap_, id);
  CancelTask(Value::Ref(Tag::kTask, id));
  if (heap_.Get<TaskObj>(id)->finished()) DropFromLive(id);
}

// ---- cancellation ----

void VM::CancelTask(Value task, bool by_run) {
  uint32_t id = task.ref;
  TaskObj* t = heap_.Mutable<TaskObj>(id);
  if (t->finished() || t->cancel != TaskCancel::kNone) return;
  t->cancel = by_run ? TaskCancel::kAskedByRun : TaskCancel::kAsked;
  if (id != current_) Wake(id, t->wait_epoch);  // a waiting task takes it at once
}

void VM::CancelAll(bool by_run) {
  std::vector<Value> live = heap_.Get<ListObj>(live_tasks_.ref)->items;
  for (Value v : live) CancelTask(v, by_run);
}

bool VM::RaiseTaskCancel() {
  if (host_->TakeCancel()) CancelAll(true);
  const TaskCancel asked = heap_.Get<TaskObj>(current_)->cancel;
  if (asked != TaskCancel::kAsked && asked != TaskCancel::kAskedByRun) return false;
  heap_.Mutable<TaskObj>(current_)->cancel = TaskCancel::kRaised;
  Raise("cancelled", asked == TaskCancel::kAskedByRun ? kCancelledByRun : kCancelledTask);
  return true;
}

bool VM::WaitAllowed() {
  if (RaiseTaskCancel()) return false;
  if (task_.deadline != INT64_MAX && host_->NowMs() >= task_.deadline) return RaiseDeadline();
  return true;
}

// ---- waiting ----

NativeResult VM::WaitUntil(int64_t wake_ms, bool cut_by_deadline) {
  TaskObj* t = heap_.Mutable<TaskObj>(current_);
  t->state = TaskState::kWaiting;
  t->wait_epoch = ++wait_epochs_;
  task_.in_flight.kind = InFlightEffect::Kind::kTimer;
  task_.in_flight.wake_ms = wake_ms;
  task_.in_flight.cut_by_deadline = cut_by_deadline;
  return NativeResult::kInFlight;
}

NativeResult VM::WaitForOperation(Completions* source, uint64_t source_id, Finish finish) {
  if (std::find(sources_.begin(), sources_.end(), source) == sources_.end()) sources_.push_back(source);
  const uint64_t op = ++next_operation_;
  operations_[op] = {current_, std::move(finish), source, source_id};
  operation_ids_[{source, source_id}] = op;
  finishing_op_ = op;
  TaskObj* t = heap_.Mutable<TaskObj>(current_);
  t->state = TaskState::kWaiting;
  t->wait_epoch = ++wait_epochs_;
  task_.in_flight.kind = InFlightEffect::Kind::kOperation;
  task_.in_flight.operation = op;
  task_.in_flight.wake_ms = 0;
  task_.in_flight.cut_by_deadline = false;
  return NativeResult::kInFlight;
}

NativeResult VM::ThenWithResult(std::function<NativeResult(VM& vm, Value in, Value* out)> then) {
  Operation& op = operations_.at(finishing_op_);
  op.finish = [first = std::move(op.finish), then = std::move(then)](VM& vm, Value* out) {
    Value in;
    NativeResult r = first(vm, &in);
    return r == NativeResult::kDone ? then(vm, in, out) : r;
  };
  return NativeResult::kInFlight;
}

bool VM::OtherTasksLive() const {
  if (live_tasks_.tag != Tag::kList) return false;
  for (Value v : heap_.Get<ListObj>(live_tasks_.ref)->items)
    if (v.ref != current_ && !heap_.Get<TaskObj>(v.ref)->finished()) return true;
  return false;
}

NativeResult VM::WaitForSignal(std::string name, int64_t wait_end, SignalFinish finish) {
  signal_waiters_[current_] = {std::move(name), std::move(finish), false, ""};
  TaskObj* t = heap_.Mutable<TaskObj>(current_);
  t->state = TaskState::kWaiting;
  t->wait_epoch = ++wait_epochs_;
  task_.in_flight.kind = InFlightEffect::Kind::kSignal;
  task_.in_flight.wake_ms = wait_end;
  task_.in_flight.cut_by_deadline = false;
  if (wait_end != INT64_MAX) AddTimer(wait_end, current_);
  return NativeResult::kInFlight;
}

bool VM::PollSignals(bool* woke) {
  *woke = false;
  for (auto& [task, w] : signal_waiters_) {
    if (w.arrived) continue;
    bool found = false;
    if (Status s = host_->TakeSignal(w.name, &found, &w.json); !s.ok()) {
      abort_status_ = s;  // a damaged mailbox is store damage: the run stops, the wait in flight
      return false;
    }
    if (!found) continue;
    w.arrived = true;
    const TaskObj* t = heap_.Get<TaskObj>(task);
    if (t->state == TaskState::kWaiting) Wake(task, t->wait_epoch);
    *woke = true;
  }
  return true;
}

bool VM::OperationsPending() const {
  for (const Completions* s : sources_)
    if (s->pending() > 0) return true;
  return false;
}

void VM::AbandonOperation(uint64_t id) {
  auto it = operations_.find(id);
  if (it == operations_.end()) return;
  it->second.source->Abandon(it->second.source_id);
  operation_ids_.erase({it->second.source, it->second.source_id});
  operations_.erase(it);
}

// Polls each source with operations in flight; with several, none waits long, so that
// neither keeps the other's ends waiting.
void VM::PollOperations(int64_t timeout_ms) {
  size_t busy = 0;
  for (const Completions* s : sources_) busy += s->pending() > 0;
  if (busy == 0) return;
  if (busy > 1) timeout_ms = std::min<int64_t>(timeout_ms, 10);
  std::vector<uint64_t> ended;
  for (Completions* s : sources_) {
    if (s->pending() == 0) continue;
    ended.clear();
    s->Poll(timeout_ms, &ended);
    for (uint64_t source_id : ended) {
      auto id = operation_ids_.find({s, source_id});
      if (id == operation_ids_.end()) continue;
      const uint32_t task = operations_.at(id->second).task;
      const TaskObj* t = heap_.Get<TaskObj>(task);
      if (t->state == TaskState::kWaiting) Wake(task, t->wait_epoch);
    }
  }
}

NativeResult VM::BlockOn(const std::vector<uint32_t>& ids, bool on_stop) {
  TaskObj* self = heap_.Mutable<TaskObj>(current_);
  self->state = TaskState::kBlocked;
  uint64_t epoch = self->wait_epoch = ++wait_epochs_;
  for (uint32_t id : ids) {
    TaskObj* t = heap_.Mutable<TaskObj>(id);
    (on_stop ? t->stop_waiters : t->finish_waiters).emplace_back(current_, epoch);
  }
  if (task_.deadline != INT64_MAX) AddTimer(task_.deadline, current_);
  return NativeResult::kBlocked;
}

NativeResult VM::FinishInFlight() {
  InFlightEffect f = task_.in_flight;
  task_.in_flight = InFlightEffect{};
  NativeResult r = NativeResult::kDone;
  Value result = Value::Null();
  if (RaiseTaskCancel()) {
    if (f.kind == InFlightEffect::Kind::kSignal) signal_waiters_.erase(current_);
    if (f.kind == InFlightEffect::Kind::kOperation) AbandonOperation(f.operation);
    r = NativeResult::kRaised;
  } else if (f.kind == InFlightEffect::Kind::kSignal) {
    auto node = signal_waiters_.extract(current_);
    r = node.mapped().finish(*this, node.mapped().arrived ? &node.mapped().json : nullptr, &result);
  } else if (f.kind == InFlightEffect::Kind::kOperation) {
    auto node = operations_.extract(f.operation);
    operation_ids_.erase({node.mapped().source, node.mapped().source_id});
    r = node.mapped().finish(*this, &result);
    if (r != NativeResult::kDone && r != NativeResult::kRaised) return r;  // aborted: the run stops
  } else if (f.cut_by_deadline) {
    RaiseDeadline();
    r = NativeResult::kRaised;
  }
  Value* slot = f.result_slot == InFlightEffect::kNoResult ? nullptr : &task_.stack[f.result_slot];
  return CompleteEffect(f.seq, f.builtin, f.step, r, result, slot, f.call_pc);
}

bool VM::TaskIds(Value tasks, const char* what, std::vector<uint32_t>* ids) {
  ids->clear();
  if (tasks.tag == Tag::kTask) {
    ids->push_back(tasks.ref);
    return true;
  }
  if (tasks.tag == Tag::kList) {
    for (Value v : heap_.Get<ListObj>(tasks.ref)->items) {
      if (v.tag != Tag::kTask) return Raise("type", fmt::format("{} takes tasks, not a list holding {}", what, TypeName(v.tag)));
      ids->push_back(v.ref);
    }
    return true;
  }
  return Raise("type", fmt::format("{} takes a task or a list of tasks, not {}", what, TypeName(tasks.tag)));
}

// An error taken from a task (parallel for) says which item's task raised it.
static void AddToErrorData(Heap& heap, Value error, const char* key, Value v) {
  if (error.tag != Tag::kError) return;
  Value data = heap.Get<ErrorObj>(error.ref)->data;
  if (data.tag != Tag::kMap) {
    Value wrapped = heap.NewMap();
    if (data.tag != Tag::kNull) heap.Mutable<MapObj>(wrapped.ref)->Set("value", data);
    heap.Mutable<ErrorObj>(error.ref)->data = wrapped;
    data = wrapped;
  }
  heap.Mutable<MapObj>(data.ref)->Set(key, v);
}

// ---- the language's operations ----

NativeResult VM::Spawn(Value closure, Value* out) {
  if (closure.tag != Tag::kFunction ||
      module_->functions[heap_.Get<ClosureObj>(closure.ref)->function].arity != 0) {
    Raise("type", "spawn takes a block");
    return NativeResult::kRaised;
  }
  *out = Value::Ref(Tag::kTask, NewTask(closure, nullptr, 0));
  return NativeResult::kDone;
}

NativeResult VM::Await(Value* slot) {
  if (!WaitAllowed()) return NativeResult::kRaised;
  std::vector<uint32_t> ids;
  if (!TaskIds(*slot, "await", &ids)) return NativeResult::kRaised;
  // The first failed one (in the list's order) raises its error; the others are cancelled.
  for (uint32_t id : ids) {
    const TaskObj* t = heap_.Get<TaskObj>(id);
    if (t->state != TaskState::kFailed) continue;
    for (uint32_t other : ids) GiveUp(other);
    task_.pending_error = t->result;
    return NativeResult::kRaised;
  }
  std::vector<uint32_t> pending;
  for (uint32_t id : ids)
    if (!heap_.Get<TaskObj>(id)->finished()) pending.push_back(id);
  if (!pending.empty()) return BlockOn(pending);
  for (uint32_t id : ids) MarkAwaited(heap_, id);
  if (slot->tag == Tag::kTask) {
    *slot = heap_.Get<TaskObj>(slot->ref)->result;
    return NativeResult::kDone;
  }
  std::vector<Value> values;
  values.reserve(ids.size());
  for (uint32_t id : ids) values.push_back(heap_.Get<TaskObj>(id)->result);
  *slot = heap_.NewList(std::move(values));
  return NativeResult::kDone;
}

NativeResult VM::RaceTasks(Value tasks, Value* out) {
  if (!WaitAllowed()) return NativeResult::kRaised;
  std::vector<uint32_t> ids;
  if (!TaskIds(tasks, "tasks.race", &ids)) return NativeResult::kRaised;
  if (ids.empty()) {
    Raise("type", "tasks.race takes at least one task");
    return NativeResult::kRaised;
  }
  const TaskObj* first = nullptr;  // the first to finish
  for (uint32_t id : ids) {
    const TaskObj* t = heap_.Get<TaskObj>(id);
    if (t->finished() && (!first || t->order < first->order)) first = t;
  }
  if (!first) return BlockOn(ids);
  for (uint32_t id : ids) GiveUp(id);
  if (first->state == TaskState::kFailed) {
    task_.pending_error = first->result;
    return NativeResult::kRaised;
  }
  *out = first->result;
  return NativeResult::kDone;
}

// [{ok: true, value: v} or {ok: false, error: e}, ...], in the order of `ids`.
static Value SettledList(Heap& heap, const std::vector<uint32_t>& ids) {
  std::vector<Value> out;
  for (uint32_t id : ids) {
    const TaskObj* t = heap.Get<TaskObj>(id);
    Value m = heap.NewMap();
    MapObj* map = heap.Mutable<MapObj>(m.ref);
    bool ok = t->state == TaskState::kDone;
    map->Set("ok", Value::Bool(ok));
    map->Set(ok ? "value" : "error", t->result);
    out.push_back(m);
  }
  return heap.NewList(std::move(out));
}

NativeResult VM::SettleTasks(Value tasks, Value* out) {
  if (!WaitAllowed()) return NativeResult::kRaised;
  std::vector<uint32_t> ids;
  if (!TaskIds(tasks, "tasks.settle", &ids)) return NativeResult::kRaised;
  std::vector<uint32_t> pending;
  for (uint32_t id : ids)
    if (!heap_.Get<TaskObj>(id)->finished()) pending.push_back(id);
  if (!pending.empty()) return BlockOn(pending);
  for (uint32_t id : ids) {
    MarkAwaited(heap_, id);
    DropFromLive(id);
  }
  *out = SettledList(heap_, ids);
  return NativeResult::kDone;
}

bool VM::TaskFinished(Value task) const { return heap_.Get<TaskObj>(task.ref)->finished(); }

namespace {

struct ParallelOptions {
  int64_t limit = INT64_MAX;
  bool settle = false;
};

bool ParseParallel(VM& vm, const Heap& heap, Value v, ParallelOptions* o) {
  if (v.tag == Tag::kNull) return true;
  if (v.tag != Tag::kMap) return vm.Raise("type", "parallel options must be a map");
  for (const auto& [k, x] : heap.Get<MapObj>(v.ref)->entries) {
    if (k == "limit") {
      if (x.tag != Tag::kInt || x.i < 1) return vm.Raise("type", "parallel option limit must be an int >= 1");
      o->limit = x.i;
    } else if (k == "settle") {
      if (x.tag != Tag::kBool) return vm.Raise("type", "parallel option settle must be true or false");
      o->settle = x.b;
    } else {
      return vm.Raise("type", fmt::format("parallel has no option `{}` (limit, settle)", k));
    }
  }
  return true;
}

}  // namespace

// operands: the body fn(i, x), the list, the options, and the group: the list of the tasks
// spawned so far, one per item in order (null before the first). Runs again each time one
// of them finishes, until every item has its value.
NativeResult VM::Parallel(Value* operands, Value* out) {
  const Value body = operands[0], items = operands[1];
  ParallelOptions o;
  auto cancel_group = [&] {
    if (operands[3].tag != Tag::kList) return;
    for (Value t : heap_.Get<ListObj>(operands[3].ref)->items) GiveUp(t.ref);
  };
  if (!WaitAllowed()) {
    cancel_group();
    return NativeResult::kRaised;
  }
  if (items.tag != Tag::kList) {
    Raise("type", fmt::format("parallel for takes a list, not {}", TypeName(items.tag)));
    return NativeResult::kRaised;
  }
  if (body.tag != Tag::kFunction || module_->functions[heap_.Get<ClosureObj>(body.ref)->function].arity != 2) {
    Raise("fatal", "parallel for without its body");
    return NativeResult::kRaised;
  }
  if (!ParseParallel(*this, heap_, operands[2], &o)) return NativeResult::kRaised;
  if (operands[3].tag != Tag::kList) operands[3] = heap_.NewList();
  const uint32_t group = operands[3].ref;
  int64_t running = 0;
  std::vector<uint32_t> pending;
  const std::vector<Value>& spawned = heap_.Get<ListObj>(group)->items;
  for (size_t i = 0; i < spawned.size(); ++i) {
    const TaskObj* t = heap_.Get<TaskObj>(spawned[i].ref);
    if (!t->finished()) {
      ++running;
      pending.push_back(spawned[i].ref);
    } else if (t->state == TaskState::kFailed && !o.settle) {
      Value error = t->result;
      cancel_group();
      AddToErrorData(heap_, error, "index", Value::Int(static_cast<int64_t>(i)));
      task_.pending_error = error;
      return NativeResult::kRaised;
    }
  }
  for (;;) {
    const size_t next = heap_.Get<ListObj>(group)->items.size();
    const std::vector<Value>& list = heap_.Get<ListObj>(items.ref)->items;
    if (running >= o.limit || next >= list.size()) break;
    Value args[2] = {Value::Int(static_cast<int64_t>(next)), list[next]};
    uint32_t id = NewTask(body, args, 2);
    heap_.PushItem(group, Value::Ref(Tag::kTask, id));
    pending.push_back(id);
    ++running;
  }
  if (!pending.empty()) return BlockOn(pending);
  std::vector<uint32_t> ids;
  for (Value t : heap_.Get<ListObj>(group)->items) {
    ids.push_back(t.ref);
    MarkAwaited(heap_, t.ref);
    DropFromLive(t.ref);
  }
  if (o.settle) {
    *out = SettledList(heap_, ids);
  } else {
    std::vector<Value> values;
    for (uint32_t id : ids) values.push_back(heap_.Get<TaskObj>(id)->result);
    *out = heap_.NewList(std::move(values));
  }
  return NativeResult::kDone;
}

// Does `task` have step `key` open (its handlers, running or parked)?
bool VM::OwnsOpenStep(uint32_t task, const std::string& key) const {
  const Object* o = heap_.GetObject(task);
  if (!o || o->kind != ObjKind::kTask) return false;
  const Task& exec = task == current_ ? task_ : static_cast<const TaskObj*>(o)->exec;
  for (const Handler& h : exec.handlers) {
    if (h.kind != HandlerKind::kStep) continue;
    Value k = exec.stack[h.stack_height - 1];
    if (k.tag == Tag::kString && heap_.StringOf(k) == key) return true;
  }
  return false;
}

// ---- the scheduler ----

RunOutcome VM::Schedule() {
  PrepareToRun();
  for (;;) {
    if (current_ == kNoTask) {
      RunOutcome stop;
      if (!PickNext(&stop)) return stop;
    }
    const uint32_t id = current_;
    const TaskStop stop = Dispatch();
    switch (stop) {
      case TaskStop::kAborted: return RunOutcome::kAborted;
      case TaskStop::kSuspended: return RunOutcome::kSuspended;
      case TaskStop::kReturned: {
        Value result = task_.stack[task_.sp - 1];
        FinishTask(id, TaskState::kDone, result);
        if (id == main_task_) CancelAll(false);  // tasks still running when the top level ends
        break;
      }
      case TaskStop::kUncaught:
        if (budget_final_) return RunOutcome::kFailed;  // a final budget stops every task at once
        if (id == main_task_ && uncaught_.tag == Tag::kError && heap_.Get<ErrorObj>(uncaught_.ref)->kind == "budget")
          return RunOutcome::kFailed;  // it stops where it stood, to resume with a larger budget
        if (id == main_task_) {
          // The run fails with the top level's error, once the other tasks, cancelled,
          // have run their handlers (compensations).
          FinishTask(id, TaskState::kFailed, uncaught_);
          heap_.Mutable<TaskObj>(id)->awaited = true;  // its error is the run's, reported at the end
          CancelAll(false);
        }
        break;  // a task's error waits for an await
      case TaskStop::kWaiting:
        if (!task_.in_flight.made_again()) AddTimer(task_.in_flight.wake_ms, id);  // (a signal wait's: WaitForSignal)
        break;
      case TaskStop::kBlocked: break;
    }
    WakeAll(&heap_.Mutable<TaskObj>(id)->stop_waiters);
    if (heap_.Get<TaskObj>(id)->finished()) {
      task_ = Task{};
      current_ = kNoTask;
    } else {
      ParkCurrent();
    }
  }
}

// The next task to run: the first runnable one, once the timers that are due have fired.
bool VM::PickNext(RunOutcome* stop) {
  for (;;) {
    PollOperations(0);
    if (!timers_.empty()) FireTimers(host_->NowMs());
    while (!ready_.empty()) {
      uint32_t id = ready_.front();
      ready_.pop_front();
      const Object* o = heap_.GetObject(id);
      if (!o || o->kind != ObjKind::kTask) continue;
      // Runnable, or blocked since a restore: it runs its instruction again (and may block again).
      const TaskState state = static_cast<const TaskObj*>(o)->state;
      if (state != TaskState::kRunnable && state != TaskState::kBlocked) continue;
      SwapIn(id);
      return true;
    }
    if (heap_.Get<TaskObj>(main_task_)->finished() && heap_.Get<ListObj>(live_tasks_.ref)->items.size() == CountFailedUnawaited()) {
      *stop = EndOfTopLevel();
      return false;
    }
    if (!WaitForTimers(stop)) return false;
  }
}

size_t VM::CountFailedUnawaited() const {
  size_t n = 0;
  for (Value v : heap_.Get<ListObj>(live_tasks_.ref)->items) n += heap_.Get<TaskObj>(v.ref)->state == TaskState::kFailed;
  return n;
}

// Every task waits long: a checkpoint of every task as it waits, then exit 75, due at
// `wake_ms` (or when `signal` comes).
RunOutcome VM::SuspendRun(int64_t wake_ms, std::string signal) {
  suspension_ = {wake_ms, std::move(signal)};
  if (journal_) {
    if (Status s = journal_->Suspending(*this); !s.ok()) {
      abort_status_ = s;
      return RunOutcome::kAborted;
    }
  }
  return RunOutcome::kSuspended;
}

// What tasks wait for besides timers: signals in the mailbox, then transfers and children
// (polled up to the earliest timer). True when it waited or woke a task.
bool VM::PollWaits(RunOutcome* stop, bool* aborted) {
  *aborted = false;
  if (!signal_waiters_.empty()) {  // signals that came while tasks ran
    bool woke = false;
    if (!PollSignals(&woke)) {
      *stop = RunOutcome::kAborted;
      *aborted = true;
      return true;
    }
    if (woke) return true;
  }
  if (!OperationsPending()) return false;
  // Under --virtual-time the clock jumps only when every task waits on a timer.
  int64_t timeout = signal_waiters_.empty() ? 1000 : 50;  // the mailbox is read every 50 ms
  if (!timers_.empty() && !host_->virtual_time())
    timeout = std::clamp<int64_t>(timers_.top().wake_ms - host_->NowMs(), 0, timeout);
  PollOperations(timeout);
  return true;
}

// Every task waits: the earliest timer is what comes next. Waits for it (the clock just
// moves under --virtual-time), or suspends the run when it is far (a checkpoint of every
// task as it waits, then exit 75; resuming fires it when due).
bool VM::WaitForTimers(RunOutcome* stop) {
  if (host_->TakeCancel()) {  // flow cancel: every task takes `cancelled` now
    CancelAll(true);
    return true;
  }
  while (!timers_.empty()) {
    const Timer& t = timers_.top();
    const TaskObj* task = heap_.Get<TaskObj>(t.task);
    if (task->wait_epoch == t.epoch && (task->state == TaskState::kWaiting || task->state == TaskState::kBlocked)) break;
    timers_.pop();  // stale: woken otherwise
  }
  bool aborted;
  if (PollWaits(stop, &aborted)) return !aborted;
  if (timers_.empty() && signal_waiters_.empty()) {
    uncaught_ = heap_.NewError("deadlock", "every task is waiting for another task: none can go on");
    *stop = RunOutcome::kFailed;
    return false;
  }
  const int64_t wake = timers_.empty() ? INT64_MAX : timers_.top().wake_ms, now = host_->NowMs();
  if (wake <= now) return true;
  int64_t ignored;
  // Waiting for a signal: a live process reads its mailbox every 50 ms while the earliest
  // timer is near; else (or under --detach) the run suspends, due at that timer, or when
  // the signal comes.
  const bool for_signal = !signal_waiters_.empty();
  if (wake == INT64_MAX || host_->ShouldSuspend(wake - now, &ignored)) {
    suspended_for_limit_ = timers_.empty() ? "" : LimitWaitedFor(timers_.top().task);  // said in the run's record
    *stop = SuspendRun(wake == INT64_MAX ? 0 : wake, for_signal ? signal_waiters_.begin()->second.name : "");
    return false;
  }
  if (for_signal && !host_->virtual_time()) {
    host_->SleepMs(std::min<int64_t>(wake - now, 50));
    return true;
  }
  host_->SleepMs(wake - now);
  if (journal_ && host_->StopRequested()) {  // the sleep was cut short: the timer stays
    *stop = SuspendRun(wake, "");
    return false;
  }
  if (host_->TakeCancel()) {
    CancelAll(true);
    return true;
  }
  // The wait for the earliest timer is over: it fires, even on a host whose clock the
  // wait did not move (tests), so that the run always goes on.
  FireTimers(wake);
  return true;
}

// The top level has returned and every task has finished: a task that failed and was
// never awaited fails the run (the first to fail), unless it was cancelled.
RunOutcome VM::EndOfTopLevel() {
  const TaskObj* top = heap_.Get<TaskObj>(main_task_);
  if (top->state == TaskState::kFailed) {  // its error, after the other tasks' handlers ran
    uncaught_ = top->result;
    return RunOutcome::kFailed;
  }
  const TaskObj* first = nullptr;
  for (Value v : heap_.Get<ListObj>(live_tasks_.ref)->items) {
    const TaskObj* t = heap_.Get<TaskObj>(v.ref);
    if (t->state != TaskState::kFailed || t->awaited) continue;
    if (t->result.tag == Tag::kError && heap_.Get<ErrorObj>(t->result.ref)->kind == "cancelled") continue;
    if (!first || t->order < first->order) first = t;
  }
  if (!first) return RunOutcome::kCompleted;
  uncaught_ = first->result;
  return RunOutcome::kFailed;
}

}  // namespace flow
