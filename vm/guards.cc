// The resilience handlers of the VM: step (memoized, optionally at-most-once), retry
// (backoff, jitter, retryable kinds) and timeout (deadlines on the run's clock). Their
// state is Handler records and the steps_ map: plain data, checkpointed with the rest.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "vm/base/coding.h"
#include "vm/base/saturate.h"
#include "vm/value_ops.h"
#include "vm/vm.h"

namespace flow {

namespace {

// Kinds a retry never retries unless its `on` names them: running the body again cannot
// help (a stack overflow recurs, and each attempt would nest deeper still).
bool NeverRetriedByDefault(const std::string& kind) {
  return kind == "fatal" || kind == "cancelled" || kind == "in_doubt" || kind == "budget" || kind == "stack_overflow";
}

// The wait an error asks for before the next attempt: its data's `retry_after_ms` (an int
// >= 0), or -1 when it names none. Natives put it there from what they know (stdlib's http,
// from what the server asked); a script may too.
int64_t RetryAfterMs(const Heap& heap, Value error) {
  if (error.tag != Tag::kError) return -1;
  const ErrorObj* e = heap.Get<ErrorObj>(error.ref);
  if (e->data.tag != Tag::kMap) return -1;
  const Value* after = heap.Get<MapObj>(e->data.ref)->Find("retry_after_ms");
  return after && after->tag == Tag::kInt && after->i >= 0 ? after->i : -1;
}

struct RetryOptions {
  int64_t attempts = 3;
  int64_t backoff_ms = 1000;
  double factor = 2.0;
  int64_t max_delay_ms = INT64_MAX;
  std::string jitter = "none";
  Value on = Value::Null();  // a list of kinds, or null
};

}  // namespace

// The innermost handler carries the earliest deadline of the open timeouts.
void VM::RecomputeDeadline() {
  task_.deadline = task_.handlers.empty() ? limits_.deadline_ms
                                         : std::min(limits_.deadline_ms, task_.handlers.back().deadline_in_force);
}

void VM::PushHandler(Handler h) {
  int64_t enclosing = task_.handlers.empty() ? INT64_MAX : task_.handlers.back().deadline_in_force;
  h.deadline_in_force = h.kind == HandlerKind::kTimeout ? std::min(enclosing, h.deadline_ms) : enclosing;
  int32_t enclosing_step = task_.handlers.empty() ? -1 : task_.handlers.back().step_in_force;
  h.step_in_force = h.kind == HandlerKind::kStep ? static_cast<int32_t>(task_.handlers.size()) : enclosing_step;
  task_.handlers.push_back(h);
}

bool VM::EndsOpenHandler(HandlerKind kind) {
  if (!task_.handlers.empty() && task_.handlers.back().kind == kind &&
      task_.handlers.back().frame_depth == task_.frames.size() - 1)
    return true;
  return Raise("fatal", "bytecode ends a handler that it did not begin");
}

void VM::SetBudget(const Budget& budget) {
  budget_ = budget;
  ApplyLimits();
}

void VM::ApplyLimits() {
  auto limit = [&](BudgetKind kind, uint64_t given) -> uint64_t {
    if (given == 0) return UINT64_MAX;
    const BudgetGrace& g = graces_[static_cast<int>(kind)];
    return g.limit == given ? g.end : given;
  };
  limits_.max_effects = limit(BudgetKind::kEffects, budget_.max_effects);
  limits_.max_instructions = limit(BudgetKind::kInstructions, budget_.max_instructions);
  limits_.max_tokens = limit(BudgetKind::kTokens, budget_.max_tokens);
  limits_.max_memory = limit(BudgetKind::kMemory, budget_.max_memory);
  limits_.deadline_ms = budget_.deadline_ms == INT64_MAX
                            ? INT64_MAX
                            : static_cast<int64_t>(limit(BudgetKind::kDeadline, static_cast<uint64_t>(budget_.deadline_ms)));
  heap_.set_memory_budget(limits_.max_memory == UINT64_MAX ? SIZE_MAX : limits_.max_memory);
  RecomputeDeadline();
}

bool VM::RaiseBudget(BudgetKind kind, uint64_t limit, std::string message) {
  BudgetGrace& grace = graces_[static_cast<int>(kind)];
  if (grace.limit == limit) {
    budget_final_ = true;
    return Raise("budget", message + ", and the grace to clean up after it: the run stops");
  }
  uint64_t end = 0;
  switch (kind) {
    case BudgetKind::kEffects: end = effects_done_ + kBudgetGraceEffects; break;
    case BudgetKind::kInstructions: end = instructions_ + kBudgetGraceInstructions; break;
    case BudgetKind::kDeadline: end = static_cast<uint64_t>(AddSaturated(host_->NowMs(), kBudgetGraceMs)); break;
    case BudgetKind::kTokens: end = tokens_used_; break;
    case BudgetKind::kMemory: end = std::max<uint64_t>(heap_.bytes(), limit) + limit / 8; break;
  }
  grace = {limit, end};
  ApplyLimits();
  return Raise("budget", std::move(message));
}

namespace {

std::string FormatBytes(uint64_t n) {
  static const char* const kUnits[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int unit = 0;
  for (; v >= 1024 && unit < 4; ++unit) v /= 1024;
  return unit == 0 ? fmt::format("{} bytes", n) : fmt::format("{:.3g} {}", v, kUnits[unit]);
}

}  // namespace

bool VM::RaiseMemoryBudget() {
  return RaiseBudget(BudgetKind::kMemory, budget_.max_memory,
                     fmt::format("the run used its memory budget of {} (--max-memory)", FormatBytes(budget_.max_memory)));
}

bool VM::TokensLeft(std::string_view unit) {
  if (tokens_used_ < limits_.max_tokens) return true;
  return RaiseBudget(BudgetKind::kTokens, budget_.max_tokens,
                     fmt::format("the run used its budget of {} {}", budget_.max_tokens, unit));
}

bool VM::RaiseDeadline() {
  if (host_->NowMs() >= limits_.deadline_ms)
    return RaiseBudget(BudgetKind::kDeadline, static_cast<uint64_t>(budget_.deadline_ms),
                       "the run passed its deadline (--deadline)");
  return Raise("timeout", "the deadline passed");
}

bool VM::OpenTimeout(Value duration) {
  if (duration.tag != Tag::kInt || duration.i < 0)
    return Raise("type", fmt::format("timeout takes a duration (an int of ms), not {}", TypeName(duration.tag)));
  int64_t deadline = AddSaturated(host_->NowMs(), duration.i);
  PushHandler(Handler::Timeout(static_cast<uint32_t>(task_.frames.size() - 1), task_.sp, deadline));
  RecomputeDeadline();
  task_.deadline_ticks = 1023;  // read the clock at the next back edge
  return true;
}

// Parses the retry operand: an attempt count, or the options map.
static bool ParseRetry(VM& vm, const Heap& heap, Value v, RetryOptions* o) {
  if (v.tag == Tag::kInt) {
    o->attempts = v.i;
  } else if (v.tag == Tag::kMap) {
    const MapObj* m = heap.Get<MapObj>(v.ref);
    auto duration = [&](const char* name, int64_t* out) {
      const Value* x = m->Find(name);
      if (!x) return true;
      if (x->tag != Tag::kInt || x->i < 0) return vm.Raise("type", fmt::format("retry option {} must be a duration", name));
      *out = x->i;
      return true;
    };
    if (const Value* x = m->Find("attempts")) {
      if (x->tag != Tag::kInt) return vm.Raise("type", "retry option attempts must be an int");
      o->attempts = x->i;
    }
    if (!duration("backoff", &o->backoff_ms) || !duration("max_delay", &o->max_delay_ms)) return false;
    if (const Value* x = m->Find("factor")) {
      if (!x->IsNumber() || x->AsDouble() < 1) return vm.Raise("type", "retry option factor must be a number >= 1");
      o->factor = x->AsDouble();
    }
    if (const Value* x = m->Find("jitter")) {
      if (x->tag != Tag::kString) return vm.Raise("type", "retry option jitter must be \"none\", \"full\" or \"equal\"");
      o->jitter = heap.StringOf(*x);
      if (o->jitter != "none" && o->jitter != "full" && o->jitter != "equal")
        return vm.Raise("type", "retry option jitter must be \"none\", \"full\" or \"equal\"");
    }
    if (const Value* x = m->Find("on")) {
      if (x->tag != Tag::kList) return vm.Raise("type", "retry option on must be a list of error kinds");
      o->on = *x;
    }
  } else {
    return vm.Raise("type", fmt::format("retry takes an attempt count or options, not {}", TypeName(v.tag)));
  }
  if (o->attempts < 1) return vm.Raise("type", "retry needs at least 1 attempt");
  return true;
}

bool VM::OpenRetry(Value options) {
  RetryOptions o;
  if (!ParseRetry(*this, heap_, options, &o)) return false;
  const Handler* step = EnclosingStep(task_.handlers.size());
  PushHandler(Handler::Retry(static_cast<uint32_t>(task_.frames.size() - 1), task_.sp, task_.frames.back().pc,
                             step ? step->effects_done : 0, step ? step->spawned : 0));
  return true;
}

bool VM::RetryAfterError(Handler& h) {
  RetryOptions o;
  Value error = task_.pending_error;
  if (!ParseRetry(*this, heap_, task_.stack[h.stack_height - 1], &o)) return false;  // task_.pending_error replaced
  const std::string kind = error.tag == Tag::kError ? heap_.Get<ErrorObj>(error.ref)->kind : "type";
  bool retryable;
  if (o.on.tag == Tag::kList) {
    retryable = false;
    for (const Value& k : heap_.Get<ListObj>(o.on.ref)->items)
      if (k.tag == Tag::kString && heap_.StringOf(k) == kind) retryable = true;
  } else {
    retryable = !NeverRetriedByDefault(kind);
  }
  if (retryable && h.attempts < static_cast<uint64_t>(o.attempts)) {
    // Delay before attempt k+1 = min(max_delay, backoff * factor^(k-1)), then jitter. The
    // jitter draw is a function of the run's durable state (effects done, attempt, where),
    // so a resumed run that reaches this wait again draws the very same delay.
    double raw = static_cast<double>(o.backoff_ms) * std::pow(o.factor, static_cast<double>(h.attempts - 1));
    // Rounded to the millisecond, so that 100 * 1.7^2 is 289, not 288.99999999999994.
    int64_t delay = raw >= static_cast<double>(o.max_delay_ms) ? o.max_delay_ms : std::llround(raw);
    // An error that says when to come back is obeyed, up to max_delay: the user's bound
    // holds against a server that asks for years.
    int64_t server_delay = RetryAfterMs(heap_, error);
    if (server_delay >= 0) {
      delay = std::min(server_delay, o.max_delay_ms);
    } else if (o.jitter != "none" && delay > 0) {
      std::string seed;
      PutFixed64(&seed, effects_done_);
      PutFixed32(&seed, h.attempts);
      PutFixed32(&seed, h.body_pc);
      PutFixed32(&seed, h.frame_depth);
      double u = static_cast<double>(Checksum(seed) >> 11) / static_cast<double>(1ull << 53);  // [0, 1)
      delay = o.jitter == "full" ? static_cast<int64_t>(u * static_cast<double>(delay + 1))
                                 : delay / 2 + static_cast<int64_t>(u * static_cast<double>(delay / 2 + 1));
    }
    // An enclosing deadline cuts the wait short, and then its timeout is what propagates.
    int64_t outer = &h == &task_.handlers.front() ? INT64_MAX : (&h - 1)->deadline_in_force;
    int64_t now = host_->NowMs();
    if (outer != INT64_MAX && AddSaturated(now, delay) >= outer) {
      host_->SleepMs(std::max<int64_t>(0, outer - now));
      Raise("timeout", "the deadline passed while waiting to retry");
      FillTrace(task_.pending_error, task_.frames.back().pc);
      return false;
    }
    task_.retry_wait_ms = delay;  // waited by the dispatch loop, at the body's start
    ++h.attempts;
    // The next attempt counts the step's effects from where this retry began: its calls
    // are the same calls again, with the same idempotency keys.
    if (Handler* step = EnclosingStep(static_cast<size_t>(&h - task_.handlers.data())))
      step->effects_done = h.step_effects_at_open, step->spawned = h.step_spawned_at_open;
    return true;
  }
  // Giving up: the last error goes on, with the attempts made in its data.
  if (error.tag == Tag::kError) {
    const ErrorObj* e = heap_.Get<ErrorObj>(error.ref);
    Value data = e->data;
    if (data.tag != Tag::kMap) {
      Value wrapped = heap_.NewMap();
      if (data.tag != Tag::kNull) heap_.Mutable<MapObj>(wrapped.ref)->Set("value", data);
      heap_.Mutable<ErrorObj>(error.ref)->data = wrapped;
      data = wrapped;
    }
    heap_.Mutable<MapObj>(data.ref)->Set("attempts", Value::Int(h.attempts));
  }
  return false;
}

NativeResult VM::OpenStep(uint32_t begin_pc, bool once, bool* done) {
  Value key = task_.stack[task_.sp - 1];
  if (key.tag != Tag::kString) {
    Raise("type", fmt::format("a step key must be a string, not {}", TypeName(key.tag)));
    return NativeResult::kRaised;
  }
  const std::string& name = heap_.StringOf(key);
  if (steps_.tag == Tag::kMap) {
    if (const Value* v = heap_.Get<MapObj>(steps_.ref)->Find(name)) {
      task_.stack[task_.sp - 1] = *v;
      *done = true;
      if (journal_) journal_->OnStepReused(*this, name);
      return NativeResult::kDone;
    }
  }
  if (doubtful_steps_.tag == Tag::kMap) {
    if (const Value* e = heap_.Get<MapObj>(doubtful_steps_.ref)->Find(name); e && e->tag == Tag::kError) {
      const ErrorObj* doubt = heap_.Get<ErrorObj>(e->ref);
      Raise(doubt->kind, doubt->message, doubt->data);  // still in doubt: never run again
      return NativeResult::kRaised;
    }
  }
  // Keys are per run: another task running this step is waited for (its value is then
  // this one's; if it fails, this task runs the step itself).
  auto running = running_steps_.find(name);
  if (running != running_steps_.end() && running->second != current_ && OwnsOpenStep(running->second, name)) {
    if (!WaitAllowed()) return NativeResult::kRaised;
    return BlockOn({running->second}, /*on_stop=*/true);
  }
  running_steps_[name] = current_;
  PushHandler(Handler::Step(static_cast<uint32_t>(task_.frames.size() - 1), task_.sp, begin_pc, host_->NowMs()));
  if (journal_) journal_->OnStep(*this, heap_.StringOf(key), false, 0);
  if (once && journal_) {
    if (Status s = journal_->OnceStepStarted(*this); !s.ok()) return Abort(std::move(s));
  }
  return NativeResult::kDone;
}

bool VM::IsOnceStep(const Handler& h) const {
  const Function& fn = module_->functions[task_.frames[h.frame_depth].function];
  return h.kind == HandlerKind::kStep && static_cast<uint8_t>(fn.code[h.begin_pc + 1]) != 0;
}

// Resuming inside a `once` step: the innermost one raises `in_doubt`, naming itself.
void VM::RaiseInDoubt() {
  for (size_t i = task_.handlers.size(); i-- > 0;) {
    const Handler& h = task_.handlers[i];
    if (!IsOnceStep(h)) continue;
    const Value key_value = task_.stack[h.stack_height - 1];
    const std::string key = heap_.StringOf(key_value);
    uint32_t line = module_->functions[task_.frames[h.frame_depth].function].LineAt(h.begin_pc);
    Value data = heap_.NewMap();
    heap_.Mutable<MapObj>(data.ref)->Set("step", key_value);
    heap_.Mutable<MapObj>(data.ref)->Set("line", Value::Int(line));
    Raise("in_doubt",
          fmt::format("the `once` step \"{}\" (line {}) was running when the run stopped: it may have had its "
                      "effect, so it is not run again",
                      key, line),
          data);
    if (doubtful_steps_.tag != Tag::kMap) doubtful_steps_ = heap_.NewMap();
    heap_.Mutable<MapObj>(doubtful_steps_.ref)->Set(key, task_.pending_error);
    return;
  }
  Raise("in_doubt", "a `once` step was running when the run stopped: it may have had its effect, so it is not run again");
}

void VM::CountInDoubtEffect(uint64_t seq) {
  if (seq != effects_done_ + 1) return;
  effects_done_ = seq;
  ++task_.effects;
  if (Handler* step = EnclosingStep(task_.handlers.size())) ++step->effects_done;
}

bool VM::CloseStep() {
  Handler h = task_.handlers.back();
  Value key = task_.stack[h.stack_height - 1];
  Value value = task_.stack[task_.sp - 1];
  if (steps_.tag != Tag::kMap) steps_ = heap_.NewMap();
  heap_.Mutable<MapObj>(steps_.ref)->Set(heap_.StringOf(key), value);
  if (journal_) journal_->OnStep(*this, heap_.StringOf(key), true, host_->NowMs() - h.started_ms);
  task_.handlers.pop_back();
  task_.stack[task_.sp - 2] = value;
  return true;
}

}  // namespace flow

#include <map>

#include "vm/breaker.h"

namespace flow {

// Without a store (ephemeral runs, tests), breakers live in this process.
static std::map<std::string, BreakerState>& InProcessBreakers() {
  static auto* states = new std::map<std::string, BreakerState>;
  return *states;
}

Status VmHost::BreakerEnter(const std::string& name, const BreakerPolicy& policy, bool* admitted) {
  *admitted = InProcessBreakers()[name].Admit(NowMs(), policy);
  return Status::Ok();
}

Status VmHost::BreakerExit(const std::string& name, const BreakerPolicy& policy, bool success) {
  InProcessBreakers()[name].Record(NowMs(), policy, success);
  return Status::Ok();
}

// The longest breaker name (docs/language.md). A store keeps a breaker's state under a name
// of at most 127 bytes ("breaker:" + NAME); a longer name must be the program's error (a
// catchable `type`), the same with or without a store, never a run the store stops.
constexpr size_t kMaxBreakerNameBytes = 100;

static bool ParseBreaker(VM& vm, const Heap& heap, Value operand, std::string* name, VmHost::BreakerPolicy* p) {
  const auto& parts = heap.Get<ListObj>(operand.ref)->items;
  if (parts.size() != 2 || parts[0].tag != Tag::kString || parts[1].tag != Tag::kMap)
    return vm.Raise("type", "a breaker's name must be a string");
  *name = heap.StringOf(parts[0]);
  if (name->size() > kMaxBreakerNameBytes)
    return vm.Raise("type", fmt::format("a breaker's name must be at most {} bytes, not {}", kMaxBreakerNameBytes, name->size()));
  const MapObj* m = heap.Get<MapObj>(parts[1].ref);
  auto number = [&](const char* key, int64_t* out) {
    const Value* v = m->Find(key);
    if (!v) return true;
    if (v->tag != Tag::kInt || v->i < 1) return vm.Raise("type", fmt::format("breaker option {} must be a positive int", key));
    *out = v->i;
    return true;
  };
  return number("failures", &p->failures) && number("window", &p->window_ms) && number("cooldown", &p->cooldown_ms);
}

NativeResult VM::OpenBreaker(Value operand) {
  std::string name;
  VmHost::BreakerPolicy policy;
  if (!ParseBreaker(*this, heap_, operand, &name, &policy)) return NativeResult::kRaised;
  bool admitted = false;
  if (Status s = host_->BreakerEnter(name, policy, &admitted); !s.ok()) return Abort(std::move(s));
  if (!admitted) {
    Raise("circuit_open", fmt::format("circuit breaker `{}` is open", name));
    return NativeResult::kRaised;
  }
  PushHandler(Handler::Breaker(static_cast<uint32_t>(task_.frames.size() - 1), task_.sp));
  return NativeResult::kDone;
}

NativeResult VM::CloseBreaker(const Handler& h, bool success) {
  std::string name;
  VmHost::BreakerPolicy policy;
  if (!ParseBreaker(*this, heap_, task_.stack[h.stack_height - 1], &name, &policy)) return NativeResult::kRaised;
  if (Status s = host_->BreakerExit(name, policy, success); !s.ok()) return Abort(std::move(s));
  return NativeResult::kDone;
}

}  // namespace flow
