// `limit NAME (concurrency: N, rate: R, per: D) { body }`: the VM's half. The slot is the
// host's business (VmHost::LimitEnter, shared through the store by durable runs); the VM
// keeps a handler for the open body, so that the slot is freed however the body is left
// (its end, an error, break/continue, return, a task's cancellation), and waits for a slot
// as a blocked task with a timer: other tasks run meanwhile, and when every task waits and
// the next try is far, the run suspends like a timer (due at that try).
#include <fmt/format.h>

#include <map>

#include "vm/limit.h"
#include "vm/value_ops.h"
#include "vm/vm.h"

namespace flow {

namespace {

// Without a store (ephemeral runs, tests), limits live in this process: every holder is a
// task of a live run of it.
std::map<std::string, LimitState>& InProcessLimits() {
  static auto* states = new std::map<std::string, LimitState>;
  return *states;
}

}  // namespace

Status VmHost::LimitEnter(const std::string& name, const LimitPolicy& policy, const std::string& task, uint32_t depth,
                          bool* admitted, int64_t* retry_at_ms) {
  LimitState::World world{[](const std::string&) { return false; }, [](const LimitState::Entry&) { return true; }};
  const int64_t now = NowMs();
  LimitState::Decision d = InProcessLimits()[name].Enter({"", task, depth}, now, now, policy, world);
  *admitted = d.verdict == LimitState::Verdict::kAdmitted;
  *retry_at_ms = LimitState::RetryAt(d, now);
  return Status::Ok();
}

Status VmHost::LimitLeave(const std::string& name, const std::string& task, uint32_t depth) {
  InProcessLimits()[name].Leave({"", task, depth});
  return Status::Ok();
}

// The operand [name, options]: the options were checked at compile time where they are
// literals; here whatever they evaluated to.
static bool ParseLimit(VM& vm, const Heap& heap, Value operand, std::string* name, VmHost::LimitPolicy* p) {
  const auto& parts = heap.Get<ListObj>(operand.ref)->items;
  if (parts.size() != 2 || parts[0].tag != Tag::kString || parts[1].tag != Tag::kMap)
    return vm.Raise("type", fmt::format("a limit's name must be a string, not {}",
                                        parts.empty() ? "nothing" : TypeName(parts[0].tag)));
  *name = heap.StringOf(parts[0]);
  if (name->empty() || name->size() > 100) return vm.Raise("type", "a limit's name must be 1 to 100 bytes");
  const MapObj* m = heap.Get<MapObj>(parts[1].ref);
  auto positive = [&](const char* key, int64_t* out) {
    const Value* v = m->Find(key);
    if (!v) return true;
    if (v->tag != Tag::kInt || v->i < 1)
      return vm.Raise("type", fmt::format("limit option {} must be a positive int, not {}", key,
                                          v->tag == Tag::kInt ? std::to_string(v->i) : TypeName(v->tag)));
    *out = v->i;
    return true;
  };
  if (!positive("concurrency", &p->concurrency) || !positive("rate", &p->rate) || !positive("per", &p->per_ms))
    return false;
  if ((p->rate > 0) != (p->per_ms > 0)) return vm.Raise("type", "limit options rate and per go together");
  if (p->concurrency == 0 && p->rate == 0) return vm.Raise("type", "a limit needs concurrency, or rate and per");
  return true;
}

NativeResult VM::BlockUntil(int64_t wake_ms) {
  TaskObj* t = heap_.Mutable<TaskObj>(current_);
  t->state = TaskState::kBlocked;
  t->wait_epoch = ++wait_epochs_;
  AddTimer(wake_ms, current_);
  return NativeResult::kBlocked;
}

NativeResult VM::OpenLimit() {
  std::string name;
  VmHost::LimitPolicy policy;
  if (!ParseLimit(*this, heap_, task_.stack[task_.sp - 1], &name, &policy)) return NativeResult::kRaised;
  const uint32_t depth = static_cast<uint32_t>(task_.handlers.size());
  // Entering is a wait: a cancelled task, or one past its deadline, gives up its place.
  if (!WaitAllowed()) {
    const Value error = task_.pending_error;
    if (Status s = host_->LimitLeave(name, task_path(), depth); !s.ok()) return Abort(std::move(s));
    task_.pending_error = error;
    return NativeResult::kRaised;
  }
  bool admitted = false;
  int64_t retry_at = 0;
  if (Status s = host_->LimitEnter(name, policy, task_path(), depth, &admitted, &retry_at); !s.ok())
    return Abort(std::move(s));
  if (admitted) {
    PushHandler(Handler::Limit(static_cast<uint32_t>(task_.frames.size() - 1), task_.sp));
    return NativeResult::kDone;
  }
  return BlockUntil(std::min(retry_at, task_.deadline));
}

std::string VM::LimitWaitedFor(uint32_t task) const {
  const Object* o = heap_.GetObject(task);
  if (!o || o->kind != ObjKind::kTask || task == current_) return "";
  const auto* t = static_cast<const TaskObj*>(o);
  const Task& exec = t->exec;
  if (t->state != TaskState::kBlocked || exec.frames.empty() || exec.sp == 0) return "";
  const Frame& f = exec.frames.back();
  if (static_cast<Op>(module_->functions[f.function].code[f.pc]) != Op::LIMIT_BEGIN) return "";
  const Value operand = exec.stack[exec.sp - 1];
  if (operand.tag != Tag::kList) return "";
  const auto& parts = heap_.Get<ListObj>(operand.ref)->items;
  return !parts.empty() && parts[0].tag == Tag::kString ? heap_.StringOf(parts[0]) : "";
}

NativeResult VM::CloseLimit(const Handler& h) {
  std::string name;
  VmHost::LimitPolicy policy;
  const Value error = task_.pending_error;
  // The operand was parsed when the body opened: it parses the same now.
  if (!ParseLimit(*this, heap_, task_.stack[h.stack_height - 1], &name, &policy)) {
    task_.pending_error = error;
    return NativeResult::kDone;
  }
  const uint32_t depth = static_cast<uint32_t>(&h - task_.handlers.data());
  if (Status s = host_->LimitLeave(name, task_path(), depth); !s.ok()) return Abort(std::move(s));
  return NativeResult::kDone;
}

}  // namespace flow
