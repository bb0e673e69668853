// The dispatch loop. One `switch`-free loop of computed gotos expanded from opcodes.def;
// hot state (ip, base, sp) lives in locals and is saved to the frame around anything that
// may look at it (calls, builtins, errors, collection).
#include "vm/vm.h"

#include <fmt/format.h>

#include <cmath>

#include "vm/base/coding.h"
#include "vm/bytecode/methods.h"
#include "vm/bytecode/opcodes.h"
#include "vm/value_ops.h"

namespace flow {

constexpr int kJumpSize = 1 + 4;  // a jump instruction: its opcode and J

VM::VM(const Module* module, VmHost* host, Natives natives)
    : module_(module), host_(host), natives_(natives) {
  // String constants are the first objects of a fresh heap, ids 0..n-1 in order: a
  // checkpoint need not list them, and the collector never frees them (they are roots).
  for (const Constant& c : module->constants) {
    switch (c.kind) {
      case Constant::Kind::kInt: constants_.push_back(Value::Int(c.i)); break;
      case Constant::Kind::kFloat: constants_.push_back(Value::Float(c.f)); break;
      case Constant::Kind::kString: {
        Value v = heap_.NewString(c.s);
        constants_.push_back(v);
        constant_roots_.push_back(v.ref);
        break;
      }
    }
  }
  globals_.assign(module->globals.size(), Value::Null());
  // The functions of the methods written in Flow that the program calls ("list.map"),
  // each taking every argument the method may be given.
  method_functions_.assign(kMethodCount, -1);
  for (size_t f = 0; f < module->functions.size(); ++f) {
    const Function& fn = module->functions[f];
    if (!fn.IsMethod()) continue;
    for (int m = 0; m < kMethodCount; ++m) {
      const MethodInfo& info = GetMethodInfo(m);
      if (info.written_in == WrittenIn::kFlow && info.max_args == fn.arity && FlowMethodFunctionName(info) == fn.name)
        method_functions_[m] = static_cast<int32_t>(f);
    }
  }
}

VM::~VM() {
  for (const auto& [id, op] : operations_) op.source->Abandon(op.source_id);  // transfers, children left running
}

bool VM::SetGlobal(std::string_view name, Value v) {
  for (size_t i = 0; i < module_->globals.size(); ++i) {
    if (module_->globals[i] == name) {
      globals_[i] = v;
      return true;
    }
  }
  return false;
}

bool VM::Raise(std::string kind, std::string message, Value data) {
  task_.pending_error = heap_.NewError(std::move(kind), std::move(message), data);
  return false;
}

// An open upvalue is a slot of its owner's stack: the running task's, or (a variable of
// the task that spawned this one) a parked task's.
const Value* VM::UpvalueStack(uint32_t owner) const {
  return owner == current_ ? task_.stack.data() : heap_.Get<TaskObj>(owner)->exec.stack.data();
}

Value VM::ReadUpvalue(uint32_t id) const {
  const UpvalueObj* up = heap_.Get<UpvalueObj>(id);
  return up->open ? UpvalueStack(up->owner)[up->slot] : up->closed;
}

void VM::WriteUpvalue(uint32_t id, Value v) {
  const UpvalueObj* up = heap_.Get<UpvalueObj>(id);
  if (!up->open) {
    heap_.Mutable<UpvalueObj>(id)->closed = v;
  } else if (up->owner == current_) {
    task_.stack[up->slot] = v;
  } else {
    heap_.Touch(up->owner);  // the parked owner's stack changed: its record is rewritten
    heap_.Mutable<TaskObj>(up->owner)->exec.stack[up->slot] = v;
  }
}

uint32_t VM::CaptureUpvalue(uint32_t slot) {
  auto it = task_.open_upvalues.end();
  while (it != task_.open_upvalues.begin()) {
    uint32_t existing = *(it - 1);
    uint32_t s = heap_.Get<UpvalueObj>(existing)->slot;
    if (s == slot) return existing;
    if (s < slot) break;
    --it;
  }
  uint32_t id = heap_.Make<UpvalueObj>(slot, current_);
  task_.open_upvalues.insert(it, id);
  return id;
}

void VM::CloseUpvalues(uint32_t from_slot) {
  while (!task_.open_upvalues.empty()) {
    UpvalueObj* up = heap_.Mutable<UpvalueObj>(task_.open_upvalues.back());
    if (up->slot < from_slot) break;
    up->closed = task_.stack[up->slot];
    up->open = false;
    task_.open_upvalues.pop_back();
  }
}

void VM::FillTrace(Value error, uint32_t pc) {
  if (error.tag != Tag::kError) return;
  if (!heap_.Get<ErrorObj>(error.ref)->trace.empty()) return;
  ErrorObj* e = heap_.Mutable<ErrorObj>(error.ref);
  for (size_t i = task_.frames.size(); i-- > 0;) {
    const Frame& fr = task_.frames[i];
    const Function& fn = module_->functions[fr.function];
    uint32_t at = (i + 1 == task_.frames.size() ? pc : fr.pc);
    uint32_t line = fn.LineAt(at > 0 ? at - 1 : 0);
    if (fn.IsMethod())  // stdlib/methods.flow: its lines are not the program's
      e->trace.push_back(fmt::format("{} (stdlib)", fn.name));
    else
      e->trace.push_back(fmt::format("{} ({}:{})", fn.name, module_->FileOf(fn), line));  // ParseTraceFrame reads it
  }
  if (current_ != kNoTask && current_ != main_task_)
    e->trace.push_back(fmt::format("task {}", heap_.Get<TaskObj>(current_)->path));
}

bool VM::MaybeCollect() {
  if (heap_.ShouldCollect()) Collect();
  return heap_.bytes() <= limits_.max_memory || RaiseMemoryBudget();
}

void VM::Collect() {
  std::vector<uint32_t> extra = constant_roots_;
  auto task_roots = [&extra](const Task& task) {
    for (uint32_t id : task.open_upvalues) extra.push_back(id);
    for (const Frame& f : task.frames)
      if (f.closure != kNoClosure) extra.push_back(f.closure);
  };
  task_roots(task_);  // the running task's record is not in its TaskObj
  if (current_ != kNoTask) extra.push_back(current_);
  if (main_task_ != kNoTask) extra.push_back(main_task_);  // the header names it, finished too
  heap_.Collect(
      [this](const std::function<void(Value)>& mark) {
        for (uint32_t i = 0; i < task_.sp; ++i) mark(task_.stack[i]);
        mark(task_.pending_error);
        mark(live_tasks_);
        for (const Value& g : globals_) mark(g);
        for (const auto& [id, fn] : mocks_) mark(fn);
        mark(uncaught_);
        mark(steps_);
        mark(doubtful_steps_);
      },
      extra);
}

std::string FormatErrorReport(const ErrorReport& e) {
  if (!e.is_error) return "error: uncaught\n";
  std::string out = fmt::format("error: {}: {}\n", e.kind, e.message);
  if (!e.data_json.empty()) out += fmt::format("  data: {}\n", e.data_json);
  for (const auto& t : e.trace) out += fmt::format("  at {}\n", t);
  return out;
}

ErrorReport VM::UncaughtReport() const {
  ErrorReport report;
  if (uncaught_.tag != Tag::kError) {
    report.is_error = false;
    return report;
  }
  const ErrorObj* e = heap_.Get<ErrorObj>(uncaught_.ref);
  report.kind = e->kind;
  report.message = e->message;
  std::string error;
  if (e->data.tag != Tag::kNull && !EncodeJson(heap_, e->data, true, &report.data_json, &error))
    report.data_json.clear();
  report.trace = e->trace;
  return report;
}

bool ParseTraceFrame(std::string_view frame, std::string* file, uint32_t* line) {
  // "function (file:line)", as FillTrace writes it.
  if (frame.empty() || frame.back() != ')') return false;
  size_t open = frame.rfind(" ("), colon = frame.rfind(':');
  if (open == std::string_view::npos || colon == std::string_view::npos || colon < open) return false;
  std::string_view digits = frame.substr(colon + 1, frame.size() - colon - 2);
  if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string_view::npos) return false;
  *file = std::string(frame.substr(open + 2, colon - open - 2));
  *line = static_cast<uint32_t>(std::stoul(std::string(digits)));
  return true;
}

std::string VM::FormatUncaught() const { return FormatErrorReport(UncaughtReport()); }

// Running out of memory ends the run cleanly: nothing after its last checkpoint is kept
// (the state may be half-changed), and it resumes from there.
RunOutcome VM::Run() {
  RunOutcome outcome = RunOutcome::kOutOfMemory;
  try {
    outcome = Schedule();
  } catch (const std::bad_alloc&) {
  } catch (const std::length_error&) {
  }
  // A string of the restored state was found damaged when first read: what the run did
  // since rests on it (it read as empty), so the run stops as at a damaged resume.
  if (!heap_.string_error().ok() && outcome != RunOutcome::kAborted) {
    abort_status_ = heap_.string_error();
    return RunOutcome::kAborted;
  }
  return outcome;
}

VM::TaskStop VM::Dispatch() {
  static void* const kLabels[] = {
#define OP(name, operands, pops, pushes, flags, meaning) &&op_##name,
#include "vm/bytecode/opcodes.def"
#undef OP
  };
  // With an instruction budget, every opcode goes through count_instruction first; without
  // one the loop pays nothing for it.
  static void* const kCountingLabels[] = {
#define OP(name, operands, pops, pushes, flags, meaning) &&count_instruction,
#include "vm/bytecode/opcodes.def"
#undef OP
  };
  void* const* labels = budget_.max_instructions > 0 ? kCountingLabels : kLabels;

  Value* const globals = globals_.data();
  const Value* const constants = constants_.data();
  // The task's stack moves when it grows (only CallValue grows it): re-derived after it.
  Value* stack;
  const Value* stack_end;
#define RELOAD_STACK()                      \
  do {                                      \
    stack = task_.stack.data();             \
    stack_end = stack + task_.stack.size(); \
  } while (0)
  RELOAD_STACK();

  const Function* fn;
  const uint8_t* code;
  const uint8_t* ip;
  Value* base;
  Value* sp = stack + task_.sp;
  const ClosureObj* closure;

#define LOAD_FRAME()                                                                    \
  do {                                                                                  \
    const Frame& f_ = task_.frames.back();                                              \
    fn = &module_->functions[f_.function];                                              \
    code = reinterpret_cast<const uint8_t*>(fn->code.data());                           \
    ip = code + f_.pc;                                                                  \
    base = stack + f_.base;                                                             \
    closure = f_.closure == kNoClosure ? nullptr : heap_.Get<ClosureObj>(f_.closure);   \
  } while (0)
#define SAVE_STATE()                                                   \
  do {                                                                 \
    task_.frames.back().pc = static_cast<uint32_t>(ip - code);         \
    task_.sp = static_cast<uint32_t>(sp - stack);                      \
  } while (0)
#define READ8() (ip += 1, ip[-1])
#define READ16() (ip += 2, DecodeFixed16(ip - 2))
#define READ32() (ip += 4, DecodeFixed32(ip - 4))
#define DISPATCH() goto* labels[*ip++]
// Pure computation inside a timeout is interrupted: the clock is read every 1024 back
// edges or calls while a deadline is open (nothing is read when none is).
#define CHECK_DEADLINE()                                                              \
  do {                                                                                \
    if (task_.deadline != INT64_MAX && ++task_.deadline_ticks >= 1024) {              \
      task_.deadline_ticks = 0;                                                       \
      if (host_->NowMs() >= task_.deadline) {                                         \
        SAVE_STATE();                                                                 \
        RaiseDeadline();                                                              \
        goto handle_error;                                                            \
      }                                                                               \
    }                                                                                 \
  } while (0)

// An outcome other than kDone (a native's, or a handler's that reaches the store): its
// error is handled; or the task waits (for its effect, or from the instruction at
// `op_pc` again for other tasks); or the run stops (aborted by a failed store, or
// suspended with the effect in flight).
#define NATIVE_NOT_DONE(r, op_pc)                                  \
  do {                                                             \
    switch (r) {                                                   \
      case NativeResult::kRaised: goto handle_error;               \
      case NativeResult::kInFlight: return TaskStop::kWaiting;     \
      case NativeResult::kBlocked:                                 \
        task_.frames.back().pc = (op_pc);                          \
        return TaskStop::kBlocked;                                 \
      case NativeResult::kAborted: return TaskStop::kAborted;      \
      default: return TaskStop::kSuspended;                        \
    }                                                              \
  } while (0)

// At back edges and calls: collect when the heap asks for it, and check an open deadline.
#define AT_LOOP_EDGE()                        \
  do {                                        \
    if (heap_.ShouldCollect()) {              \
      SAVE_STATE();                           \
      if (!MaybeCollect()) goto handle_error; \
    }                                         \
    CHECK_DEADLINE();                         \
  } while (0)

  LOAD_FRAME();
  if (task_.resume_in_doubt) {
    task_.resume_in_doubt = false;
    RaiseInDoubt();
    goto handle_error;
  }
  if (task_.in_flight.seq != 0) {  // woken: its effect completes first
    if (NativeResult r = FinishInFlight(); r != NativeResult::kDone) NATIVE_NOT_DONE(r, task_.frames.back().pc);
    sp = stack + task_.sp;
  }
  DISPATCH();

count_instruction:
  if (++instructions_ > limits_.max_instructions) {
    --ip;
    SAVE_STATE();
    RaiseBudget(BudgetKind::kInstructions, budget_.max_instructions,
                fmt::format("the run used its budget of {} instructions", budget_.max_instructions));
    goto handle_error;
  }
  goto* kLabels[ip[-1]];
op_NOP:
  DISPATCH();
op_CONST:
  *sp++ = constants[READ32()];
  DISPATCH();
op_PUSH_NULL:
  *sp++ = Value::Null();
  DISPATCH();
op_PUSH_TRUE:
  *sp++ = Value::Bool(true);
  DISPATCH();
op_PUSH_FALSE:
  *sp++ = Value::Bool(false);
  DISPATCH();
op_POP:
  --sp;
  DISPATCH();
op_POPN:
  sp -= READ16();
  DISPATCH();
op_GET_LOCAL:
  *sp++ = base[READ16()];
  DISPATCH();
op_GET_LOCAL2:
  sp[0] = base[DecodeFixed16(ip)];
  sp[1] = base[DecodeFixed16(ip + 2)];
  sp += 2;
  ip += 4;
  DISPATCH();
op_SET_LOCAL:
  base[READ16()] = *--sp;
  DISPATCH();
op_GET_GLOBAL:
  *sp++ = globals[READ16()];
  DISPATCH();
op_SET_GLOBAL:
  globals[READ16()] = *--sp;
  DISPATCH();
op_ADD_SET_GLOBAL: {
  Value b = sp[-1], a = sp[-2];
  Value& global = globals[READ16()];
  sp -= 2;
  int64_t r;
  if (a.tag == Tag::kInt && b.tag == Tag::kInt && !__builtin_add_overflow(a.i, b.i, &r)) {
    global = Value::Int(r);
    DISPATCH();
  }
  SAVE_STATE();
  if (!BinaryOp(Op::ADD, a, b, &global)) goto handle_error;
  DISPATCH();
}
op_GET_UPVAL:
  *sp++ = ReadUpvalue(closure->upvalues[READ16()]);
  DISPATCH();
op_SET_UPVAL:
  --sp;
  WriteUpvalue(closure->upvalues[READ16()], *sp);
  DISPATCH();
op_CLOSE_FROM:
  CloseUpvalues(static_cast<uint32_t>(base - stack) + READ16());
  DISPATCH();
op_CLOSURE: {
  uint32_t index = READ32();
  const Function& inner = module_->functions[index];
  uint32_t id = heap_.Make<ClosureObj>(index);
  ClosureObj* made = heap_.Mutable<ClosureObj>(id);
  made->upvalues.reserve(inner.upvalues.size());
  for (const UpvalueDesc& u : inner.upvalues) {
    made->upvalues.push_back(u.from_parent_local ? CaptureUpvalue(static_cast<uint32_t>(base - stack) + u.index)
                                                 : closure->upvalues[u.index]);
  }
  *sp++ = Value::Ref(Tag::kFunction, id);
  DISPATCH();
}
op_GET_BUILTIN:
  *sp++ = Value::Builtin(READ16());
  DISPATCH();

// Binary operators: an inline fast path for two ints, BinaryOp() for the rest. The _K
// forms take their right operand from the constant table (`n - 1`, `i % 7`).
#define BINARY(name, a_expr, b_expr, kind, fast)                          \
  {                                                                      \
    Value b = (b_expr), a = (a_expr);                                    \
    if (a.tag == Tag::kInt && b.tag == Tag::kInt) {                      \
      fast                                                               \
    }                                                                    \
    SAVE_STATE();                                                        \
    if (!BinaryOp(Op::name, a, b, &result_slot)) goto handle_error;      \
    DISPATCH();                                                          \
  }
#define INT_ARITH(builtin)                                               \
  int64_t r;                                                             \
  if (!builtin(a.i, b.i, &r)) {                                          \
    result_slot = Value::Int(r);                                         \
    DISPATCH();                                                          \
  }
// A comparison that an `if` or `while` tests (JUMP_IF_FALSE next) branches at once,
// without pushing its result or dispatching the jump. With an instruction budget every
// instruction is counted, so there the jump runs on its own.
#define INT_COMPARE(cmp)                                                 \
  if (*ip == static_cast<uint8_t>(Op::JUMP_IF_FALSE) && labels == kLabels) { \
    --sp;                                                                \
    ip = a.i cmp b.i ? ip + kJumpSize : code + DecodeFixed32(ip + 1);    \
    DISPATCH();                                                          \
  }                                                                      \
  result_slot = Value::Bool(a.i cmp b.i);                                \
  DISPATCH();
#define INT_MOD                                                          \
  if (b.i > 0) {                                                         \
    int64_t r = a.i % b.i;                                               \
    result_slot = Value::Int(r < 0 ? r + b.i : r);                       \
    DISPATCH();                                                          \
  }
#define STACK_FORM(name, fast)                                           \
  op_##name : {                                                          \
    --sp;                                                                \
    Value& result_slot = sp[-1];                                         \
    BINARY(name, sp[-1], sp[0], stack, fast)                             \
  }                                                                      \
  op_##name##_K : {                                                      \
    Value& result_slot = sp[-1];                                         \
    BINARY(name, sp[-1], constants[READ32()], konst, fast)               \
  }

STACK_FORM(ADD, INT_ARITH(__builtin_add_overflow))
STACK_FORM(SUB, INT_ARITH(__builtin_sub_overflow))
STACK_FORM(MUL, INT_ARITH(__builtin_mul_overflow))
STACK_FORM(MOD, INT_MOD)
STACK_FORM(LT, INT_COMPARE(<))
STACK_FORM(LE, INT_COMPARE(<=))
STACK_FORM(GT, INT_COMPARE(>))
STACK_FORM(GE, INT_COMPARE(>=))
STACK_FORM(EQ, INT_COMPARE(==))
STACK_FORM(NE, INT_COMPARE(!=))
op_DIV: {
  --sp;
  Value& result_slot = sp[-1];
  BINARY(DIV, sp[-1], sp[0], stack, )
}
op_FLOORDIV: {
  --sp;
  Value& result_slot = sp[-1];
  BINARY(FLOORDIV, sp[-1], sp[0], stack, )
}
#undef STACK_FORM
#undef INT_MOD
#undef INT_COMPARE
#undef INT_ARITH
#undef BINARY
op_NEG:
  if (sp[-1].tag == Tag::kInt && sp[-1].i != INT64_MIN) {
    sp[-1].i = -sp[-1].i;
    DISPATCH();
  }
  SAVE_STATE();
  if (!Negate(sp[-1], &sp[-1])) goto handle_error;
  DISPATCH();
op_NOT:
  sp[-1] = Value::Bool(!sp[-1].Truthy());
  DISPATCH();
op_JUMP:
  ip = code + DecodeFixed32(ip);
  DISPATCH();
op_LOOP:
  ip = code + DecodeFixed32(ip);
  AT_LOOP_EDGE();
  DISPATCH();
op_JUMP_IF_FALSE: {
  uint32_t target = READ32();
  if (!(*--sp).Truthy()) ip = code + target;
  DISPATCH();
}
op_AND_JUMP: {
  uint32_t target = READ32();
  if (!sp[-1].Truthy())
    ip = code + target;
  else
    --sp;
  DISPATCH();
}
op_OR_JUMP: {
  uint32_t target = READ32();
  if (sp[-1].Truthy())
    ip = code + target;
  else
    --sp;
  DISPATCH();
}
op_NONNULL_JUMP: {
  uint32_t target = READ32();
  if (sp[-1].tag != Tag::kNull)
    ip = code + target;
  else
    --sp;
  DISPATCH();
}
op_DUP:
  sp[0] = sp[-1];
  ++sp;
  DISPATCH();
op_DUP2:
  sp[0] = sp[-2];
  sp[1] = sp[-1];
  sp += 2;
  DISPATCH();
op_CALL: {
  const uint8_t* const call_ip = ip - 1;
  int argc = READ8();
  Value* callee = sp - argc - 1;
  // Fast path: a Flow function called with the right number of arguments.
  if (callee->tag == Tag::kFunction) {
    const ClosureObj* target = heap_.Get<ClosureObj>(callee->ref);
    const Function* target_fn = &module_->functions[target->function];
    uint32_t new_base = static_cast<uint32_t>(callee - stack);
    if (argc == target_fn->arity && task_.frames.size() < kMaxFrames && callee + target_fn->max_stack <= stack_end) {
      task_.frames.back().pc = static_cast<uint32_t>(ip - code);
      task_.frames.push_back({target->function, callee->ref, 0, new_base});
      fn = target_fn;
      code = reinterpret_cast<const uint8_t*>(fn->code.data());
      ip = code;
      base = callee;
      closure = target;
      AT_LOOP_EDGE();
      DISPATCH();
    }
  }
  SAVE_STATE();
  if (NativeResult r = CallValue(callee, argc, static_cast<uint32_t>(call_ip - code)); r != NativeResult::kDone)
    NATIVE_NOT_DONE(r, static_cast<uint32_t>(call_ip - code));
  RELOAD_STACK();
  sp = stack + task_.sp;
  LOAD_FRAME();
  DISPATCH();
}
op_CALL_BUILTIN: {
  const uint8_t* const call_ip = ip - 1;
  uint16_t id = READ16();
  int argc = READ8();
  SAVE_STATE();
  if (GetBuiltinInfo(id).effectful) {
    if (!mocks_.empty() && mocks_.count(id)) {  // under flow test: a Flow function stands in for the effect
      // CALL's layout, the callee below its arguments: the result lands where the
      // builtin's would.
      if (task_.sp + 1 > task_.stack.size()) GrowStack(task_.sp + 1);
      RELOAD_STACK();
      sp = stack + task_.sp;
      std::copy_backward(sp - argc, sp, sp + 1);
      sp[-argc] = mocks_.at(id);
      ++sp;
      task_.sp = static_cast<uint32_t>(sp - stack);
      argc = PadMockArguments(mocks_.at(id), argc);
      RELOAD_STACK();
      sp = stack + task_.sp;
      if (NativeResult r = CallValue(sp - argc - 1, argc, static_cast<uint32_t>(call_ip - code)); r != NativeResult::kDone)
        NATIVE_NOT_DONE(r, static_cast<uint32_t>(call_ip - code));
      RELOAD_STACK();
      sp = stack + task_.sp;
      LOAD_FRAME();
      DISPATCH();
    }
    if (NativeResult r = RunEffect(id, sp - argc, argc, sp - argc, static_cast<uint32_t>(call_ip - code));
        r != NativeResult::kDone)
      NATIVE_NOT_DONE(r, static_cast<uint32_t>(call_ip - code));
    sp = stack + task_.sp;
    DISPATCH();
  }
  Value result;
  if (NativeResult r = natives_.builtins[id](*this, sp - argc, argc, &result); r != NativeResult::kDone)
    NATIVE_NOT_DONE(r, static_cast<uint32_t>(call_ip - code));
  sp -= argc;
  *sp++ = result;
  DISPATCH();
}
op_INVOKE: {
  const uint8_t* const call_ip = ip - 1;
  const std::string& name = heap_.StringOf(constants_[READ32()]);
  int argc = READ8();
  Value receiver = sp[-argc - 1];
  SAVE_STATE();
  if (receiver.tag == Tag::kMap) {
    const Value* member = heap_.Get<MapObj>(receiver.ref)->Find(name);
    if (member && (member->tag == Tag::kFunction || member->tag == Tag::kBuiltin)) {
      sp[-argc - 1] = *member;
      const uint32_t receiver_slot = static_cast<uint32_t>(sp - argc - 1 - stack);
      if (NativeResult r = CallValue(sp - argc - 1, argc, static_cast<uint32_t>(call_ip - code)); r != NativeResult::kDone) {
        // The stack as INVOKE found it: a run stopped at this call (an effect's uncaught
        // budget error) resumes by running the INVOKE again.
        task_.stack[receiver_slot] = receiver;
        NATIVE_NOT_DONE(r, static_cast<uint32_t>(call_ip - code));
      }
      RELOAD_STACK();
      sp = stack + task_.sp;
      LOAD_FRAME();
      DISPATCH();
    }
  }
  const int method = FindMethodOf(receiver, name, argc);
  if (method < 0) goto handle_error;
  if (GetMethodInfo(method).written_in == WrittenIn::kFlow) {
    if (NativeResult r = CallFlowMethod(static_cast<uint32_t>(sp - argc - 1 - stack), argc, method); r != NativeResult::kDone)
      NATIVE_NOT_DONE(r, static_cast<uint32_t>(call_ip - code));
    RELOAD_STACK();
    sp = stack + task_.sp;
    LOAD_FRAME();
    DISPATCH();
  }
  Value result;
  if (NativeResult r = natives_.methods[method](*this, receiver, sp - argc, argc, &result); r != NativeResult::kDone)
    NATIVE_NOT_DONE(r, static_cast<uint32_t>(call_ip - code));
  sp -= argc;
  sp[-1] = result;
  DISPATCH();
}
op_RETURN: {
  Value result = sp[-1];
  uint32_t depth = static_cast<uint32_t>(task_.frames.size() - 1);
  uint32_t frame_base = task_.frames.back().base;
  if (!task_.open_upvalues.empty()) CloseUpvalues(frame_base);
  if (!task_.handlers.empty() && task_.handlers.back().frame_depth >= depth && !LeaveHandlers(depth))
    return TaskStop::kAborted;
  task_.frames.pop_back();
  sp = stack + frame_base;
  if (task_.frames.empty()) {  // the task's value stays, at stack[0]
    *sp++ = result;
    task_.sp = static_cast<uint32_t>(sp - stack);
    return TaskStop::kReturned;
  }
  *sp++ = result;
  LOAD_FRAME();
  DISPATCH();
}
op_BUILD_LIST: {
  uint16_t n = READ16();
  Value list = heap_.NewList(std::vector<Value>(sp - n, sp));
  sp -= n;
  *sp++ = list;
  DISPATCH();
}
op_BUILD_MAP: {
  uint16_t n = READ16();
  SAVE_STATE();
  Value map;
  if (!BuildMap(sp - 2 * n, n, &map)) goto handle_error;
  sp -= 2 * n;
  *sp++ = map;
  DISPATCH();
}
op_BUILD_STRING: {
  uint16_t n = READ16();
  SAVE_STATE();
  Value text;
  if (!BuildString(sp - n, n, &text)) goto handle_error;
  sp -= n;
  *sp++ = text;
  DISPATCH();
}
op_GET_INDEX: {
  Value index = sp[-1], container = sp[-2];
  if (container.tag == Tag::kList && index.tag == Tag::kInt) {
    const auto& items = heap_.Get<ListObj>(container.ref)->items;
    if (index.i >= 0 && index.i < static_cast<int64_t>(items.size())) {
      sp[-2] = items[index.i];
      --sp;
      DISPATCH();
    }
  }
  SAVE_STATE();
  if (!GetIndex(container, index, &sp[-2])) goto handle_error;
  --sp;
  DISPATCH();
}
op_SET_INDEX:
  SAVE_STATE();
  if (!SetIndex(sp[-3], sp[-2], sp[-1])) goto handle_error;
  sp -= 3;
  DISPATCH();
op_GET_FIELD:
  SAVE_STATE();
  if (!GetField(sp[-1], heap_.StringOf(constants[READ32()]), &sp[-1])) goto handle_error;
  DISPATCH();
op_SET_FIELD:
  SAVE_STATE();
  if (!SetField(sp[-2], heap_.StringOf(constants[READ32()]), sp[-1])) goto handle_error;
  sp -= 2;
  DISPATCH();
op_THROW:
  --sp;
  SAVE_STATE();
  ThrowValue(*sp);
  goto handle_error;
op_TRY_BEGIN:
  PushHandler(
      Handler::Try(static_cast<uint32_t>(task_.frames.size() - 1), static_cast<uint32_t>(sp - stack), READ32()));
  DISPATCH();
op_POP_HANDLER:
  if (task_.handlers.empty() || task_.handlers.back().frame_depth != task_.frames.size() - 1) {
    SAVE_STATE();
    Raise("fatal", "bytecode ends a try that it did not begin");
    goto handle_error;
  }
  if (task_.handlers.back().kind == HandlerKind::kLimit) {  // break or continue out of its body
    SAVE_STATE();
    if (CloseLimit(task_.handlers.back()) == NativeResult::kAborted) return TaskStop::kAborted;
  }
  task_.handlers.pop_back();
  RecomputeDeadline();
  DISPATCH();
op_STEP_BEGIN: {
  const uint32_t begin_pc = static_cast<uint32_t>(ip - 1 - code);
  uint8_t once = READ8();
  uint32_t skip = READ32();
  SAVE_STATE();
  bool done = false;
  if (NativeResult r = OpenStep(begin_pc, once != 0, &done); r != NativeResult::kDone) NATIVE_NOT_DONE(r, begin_pc);
  if (done) ip = code + skip;  // the key on the stack was replaced by the step's value
  DISPATCH();
}
op_STEP_END:
  SAVE_STATE();
  if (!EndsOpenHandler(HandlerKind::kStep) || !CloseStep()) goto handle_error;
  --sp;
  DISPATCH();
op_RETRY_BEGIN:
  SAVE_STATE();
  if (!OpenRetry(sp[-1])) goto handle_error;
  DISPATCH();
op_TIMEOUT_BEGIN:
  SAVE_STATE();
  if (!OpenTimeout(sp[-1])) goto handle_error;
  DISPATCH();
op_BREAKER_BEGIN:
  SAVE_STATE();
  if (NativeResult r = OpenBreaker(sp[-1]); r != NativeResult::kDone)
    NATIVE_NOT_DONE(r, static_cast<uint32_t>(ip - 1 - code));
  DISPATCH();
op_BREAKER_END:
  SAVE_STATE();
  if (!EndsOpenHandler(HandlerKind::kBreaker)) goto handle_error;
  if (NativeResult r = CloseBreaker(task_.handlers.back(), true); r != NativeResult::kDone)
    NATIVE_NOT_DONE(r, static_cast<uint32_t>(ip - 1 - code));
  goto close_handler;
op_LIMIT_BEGIN:
  SAVE_STATE();
  if (NativeResult r = OpenLimit(); r != NativeResult::kDone) NATIVE_NOT_DONE(r, static_cast<uint32_t>(ip - 1 - code));
  DISPATCH();
op_LIMIT_END:
  SAVE_STATE();
  if (!EndsOpenHandler(HandlerKind::kLimit)) goto handle_error;
  if (CloseLimit(task_.handlers.back()) == NativeResult::kAborted) return TaskStop::kAborted;
  goto close_handler;
op_RETRY_END:
  SAVE_STATE();
  if (!EndsOpenHandler(HandlerKind::kRetry)) goto handle_error;
  goto close_handler;
op_TIMEOUT_END:
  SAVE_STATE();
  if (!EndsOpenHandler(HandlerKind::kTimeout)) goto handle_error;
close_handler:
  // The body's value takes the operand's slot; the handler closes.
  task_.handlers.pop_back();
  RecomputeDeadline();
  sp[-2] = sp[-1];
  --sp;
  DISPATCH();
op_ITER_PREP:
  SAVE_STATE();
  if (!IterPrep(&sp[-1])) goto handle_error;
  *sp++ = Value::Int(0);
  DISPATCH();
op_FOR_ITER: {
  uint16_t slot = READ16();
  uint8_t vars = READ8();
  uint32_t exit = READ32();
  Value* loop = base + slot;
  if (loop[0].tag == Tag::kList) {
    const auto& items = heap_.Get<ListObj>(loop[0].ref)->items;
    int64_t i = loop[1].i;
    if (i >= static_cast<int64_t>(items.size())) {
      ip = code + exit;
      DISPATCH();
    }
    if (vars == 1) {
      loop[2] = items[i];
    } else {
      loop[2] = Value::Int(i);
      loop[3] = items[i];
    }
    loop[1].i = i + 1;
  } else if (!MapIterNext(loop, vars)) {
    ip = code + exit;
  }
  DISPATCH();
}
op_RANGE_PREP: {
  uint16_t slot = READ16();
  uint32_t exit = READ32();
  if (base[slot].tag != Tag::kInt || base[slot + 1].tag != Tag::kInt) {
    SAVE_STATE();
    Raise("type", "range bounds must be ints");
    goto handle_error;
  }
  if (base[slot].i >= base[slot + 1].i)
    ip = code + exit;
  else
    base[slot + 2] = base[slot];
  DISPATCH();
}
op_RANGE_LOOP: {
  uint16_t slot = READ16();
  uint32_t body = READ32();
  int64_t next = base[slot].i + 1;
  if (next < base[slot + 1].i) {
    base[slot].i = next;
    base[slot + 2] = Value::Int(next);
    ip = code + body;
    AT_LOOP_EDGE();
  }
  DISPATCH();
}
op_SPAWN:
  SAVE_STATE();
  if (NativeResult r = Spawn(sp[-1], &sp[-1]); r != NativeResult::kDone)
    NATIVE_NOT_DONE(r, static_cast<uint32_t>(ip - 1 - code));
  DISPATCH();
op_AWAIT:
  SAVE_STATE();
  if (NativeResult r = Await(&sp[-1]); r != NativeResult::kDone) NATIVE_NOT_DONE(r, static_cast<uint32_t>(ip - 1 - code));
  DISPATCH();
op_PARALLEL: {
  const uint32_t op_pc = static_cast<uint32_t>(ip - 1 - code);
  ip += 1;  // A: reserved
  SAVE_STATE();
  Value result;
  if (NativeResult r = Parallel(sp - 4, &result); r != NativeResult::kDone) NATIVE_NOT_DONE(r, op_pc);
  sp -= 4;
  *sp++ = result;
  DISPATCH();
}

handle_error : {
  TaskStop stop;
  if (!HandleError(&stop)) return stop;
  RELOAD_STACK();
  LOAD_FRAME();
  sp = stack + task_.sp;
  DISPATCH();
}
#undef LOAD_FRAME
#undef RELOAD_STACK
#undef SAVE_STATE
#undef READ8
#undef READ16
#undef READ32
#undef DISPATCH
#undef CHECK_DEADLINE
#undef AT_LOOP_EDGE
#undef NATIVE_NOT_DONE
}

// Unwinds a raised error (the state saved by whoever raised it) to the innermost handler
// that takes it. Timeouts and steps are left; a retry may run its body again. True when
// execution goes on at the handler (task_.frames, task_.sp and its pc set), false with *stop the
// outcome the run ends with.
bool VM::HandleError(TaskStop* stop) {
  FillTrace(task_.pending_error, task_.frames.back().pc);
  const Value raised = task_.pending_error;
  bool retry_wait = false;
  for (;;) {
    if (task_.handlers.empty() || budget_final_) {  // a final budget error stops the run
      *stop = StopUncaught();
      return false;
    }
    Handler& h = task_.handlers.back();
    if (h.kind == HandlerKind::kTry) {
      Handler try_handler = h;
      task_.handlers.pop_back();
      Value error = task_.pending_error;
      CutToHandler(try_handler, try_handler.catch_pc);
      task_.stack[task_.sp++] = error;  // the catch variable
      break;
    }
    if (h.kind == HandlerKind::kRetry && RetryAfterError(h)) {
      // Back to the start of the body; the wait happens there (below), as a durable
      // effect whose checkpoint is that state.
      CutToHandler(h, h.body_pc);
      retry_wait = true;
      break;
    }
    if (h.kind == HandlerKind::kBreaker) {
      Handler breaker = h;
      Value error = task_.pending_error;
      if (CloseBreaker(breaker, false) == NativeResult::kAborted) {
        *stop = TaskStop::kAborted;
        return false;
      }
      task_.pending_error = error;
    }
    if (h.kind == HandlerKind::kLimit && CloseLimit(h) == NativeResult::kAborted) {
      *stop = TaskStop::kAborted;
      return false;
    }
    task_.handlers.pop_back();
    RecomputeDeadline();
  }
  if (task_.effect_raised) {
    // The effect's error has reached its handler: that state is the checkpoint.
    task_.effect_raised = false;
    Status s = journal_->AfterEffect(*this, task_.raised_seq, task_.raised_builtin, raised, true);
    if (!s.ok()) {
      abort_status_ = s;
      *stop = TaskStop::kAborted;
      return false;
    }
  }
  return !retry_wait || WaitBeforeRetry(stop);
}

// Frames, upvalues and stack cut back to handler h; execution resumes at resume_pc.
void VM::CutToHandler(const Handler& h, uint32_t resume_pc) {
  task_.frames.resize(h.frame_depth + 1);
  CloseUpvalues(h.stack_height);
  task_.sp = h.stack_height;
  task_.pending_error = Value::Null();
  task_.frames.back().pc = resume_pc;
}

// No handler took the error: the task ends failed (the run, for the top level, or when a
// budget's grace is used up).
VM::TaskStop VM::StopUncaught() {
  const bool whole_run = current_ == main_task_ || budget_final_;
  if (whole_run) uncaught_ = task_.pending_error;
  if (task_.effect_raised && !whole_run) {
    // The task's end is the checkpoint of the effect that raised.
    task_.effect_raised = false;
    Value error = task_.pending_error;
    const uint64_t seq = task_.raised_seq;
    const uint16_t builtin = task_.raised_builtin;
    FinishTask(current_, TaskState::kFailed, error);
    if (Status s = journal_->AfterEffect(*this, seq, builtin, error, true); !s.ok()) {
      abort_status_ = s;
      return TaskStop::kAborted;
    }
    return TaskStop::kUncaught;
  }
  if (task_.effect_raised) {
    task_.effect_raised = false;
    // No handler took the effect's error: the run stops at the call itself, its
    // handlers and step count as they were, so that resuming it (a budget stop may be
    // resumed with a new budget) makes the call again, with the same idempotency key.
    task_.handlers = std::move(task_.raised_handlers);
    task_.frames.back().pc = task_.raised_call_pc;
    RecomputeDeadline();
    Status s = journal_->AfterEffect(*this, task_.raised_seq, task_.raised_builtin, uncaught_, true);
    if (!s.ok()) {
      abort_status_ = s;
      return TaskStop::kAborted;
    }
  }
  if (!whole_run) FinishTask(current_, TaskState::kFailed, task_.pending_error);
  return TaskStop::kUncaught;
}

// A retry's backoff: a `sleep` effect of its own, so the wait is on record (a resumed run
// that reaches it again waits only what is left) and its checkpoint is the body's start.
// It is not one of the step's effects (its key is the task's): the attempts around it are
// the same logical call and must count alike. A timer of the scheduler, as a sleep is:
// the task waits at the body's start, other tasks run.
bool VM::WaitBeforeRetry(TaskStop* stop) {
  const uint64_t seq = ++effects_done_;
  ++task_.effects;
  const uint16_t sleep_id = static_cast<uint16_t>(Builtin::SLEEP);
  Value arg = Value::Int(task_.retry_wait_ms);
  SetTaskEffectKey();
  if (journal_) {
    if (Status s = journal_->BeforeEffect(*this, seq, sleep_id, &arg, 1); !s.ok()) {
      --effects_done_, --task_.effects;
      abort_status_ = s;
      *stop = TaskStop::kAborted;
      return false;
    }
  }
  int64_t wake_ms;
  host_->ShouldSuspend(task_.retry_wait_ms, &wake_ms);  // a wait begun before a crash keeps its end
  WaitUntil(wake_ms, false);
  InFlightEffect& f = task_.in_flight;
  f.seq = seq;
  f.builtin = sleep_id;
  f.result_slot = InFlightEffect::kNoResult;  // the body starts again: nothing to push
  f.call_pc = task_.frames.back().pc;
  f.step = -1;
  *stop = TaskStop::kWaiting;
  return false;
}

// A `return` leaves the handlers its frame opened (a timeout's deadline with them, a
// limit's slot).
bool VM::LeaveHandlers(uint32_t depth) {
  while (!task_.handlers.empty() && task_.handlers.back().frame_depth >= depth) {
    if (task_.handlers.back().kind == HandlerKind::kLimit && CloseLimit(task_.handlers.back()) == NativeResult::kAborted)
      return false;
    task_.handlers.pop_back();
  }
  RecomputeDeadline();
  return true;
}

void VM::GrowStack(uint32_t needed) {
  constexpr uint32_t kInitialStack = 256;  // values: 4 KiB
  std::vector<Value>& stack = task_.stack;
  const uint32_t doubled = static_cast<uint32_t>(std::min<size_t>(kStackCapacity, stack.size() * 2));
  stack.resize(std::max({needed, doubled, kInitialStack}), Value::Null());
  largest_stack_ = std::max(largest_stack_, static_cast<uint32_t>(stack.size()));
}

void VM::PrepareToRun() {
  if (main_task_ != kNoTask) return;  // restored, or already prepared
  task_.frames.reserve(256);
  GrowStack(module_->functions[0].max_stack + 1);
  task_.stack[0] = Value::Null();
  task_.sp = 1;
  task_.frames.push_back({0, kNoClosure, 0, 0});
  // The top level is a task like the others (path ""), the first of the live ones.
  main_task_ = current_ = heap_.Make<TaskObj>("");
  live_tasks_ = heap_.NewList({Value::Ref(Tag::kTask, main_task_)});
}

void VM::SetJournal(EffectJournal* journal) {
  journal_ = journal;
  heap_.StartTracking();
}

// Runs an effectful builtin between the journal's two records. The frame's pc is already
// past the call; on success the result replaces args[-1] or the callee (result_slot).
// Without a journal (--ephemeral) the budgets are checked and effects counted the same way,
// with nothing recorded.
NativeResult VM::RunEffect(uint16_t id, Value* args, int argc, Value* result_slot, uint32_t call_pc) {
  // The state is the last checkpoint's plus pure steps since, which a resume runs again.
  if (journal_ && host_->StopRequested()) return Suspend({std::max<int64_t>(1, host_->NowMs()), "", true});
  if (effects_done_ >= limits_.max_effects) {
    RaiseBudget(BudgetKind::kEffects, budget_.max_effects,
                fmt::format("the run used its budget of {} effects", budget_.max_effects));
    return NativeResult::kRaised;
  }
  if (limits_.deadline_ms != INT64_MAX && host_->NowMs() >= limits_.deadline_ms) {
    RaiseDeadline();
    return NativeResult::kRaised;
  }
  // The effect's number in the run, and in its task (its key), are taken as it begins:
  // other tasks' effects may begin before it ends.
  uint64_t seq = ++effects_done_;
  ++task_.effects;
  int step = EnterEffectScope();
  if (journal_) {
    if (Status s = journal_->BeforeEffect(*this, seq, id, args, argc); !s.ok()) {
      --effects_done_, --task_.effects;
      abort_status_ = s;
      return NativeResult::kAborted;
    }
  }
  Value result;
  NativeResult r;
  if (RaiseTaskCancel()) {  // flow cancel (every task), or t.cancel()
    r = NativeResult::kRaised;
  } else {
    r = natives_.builtins[id](*this, args, argc, &result);
    // Suspended or aborted, the effect stays in flight: the run stops here, and runs it
    // again (with the same numbers) when resumed.
    if (r == NativeResult::kSuspended || r == NativeResult::kAborted) {
      --effects_done_, --task_.effects;
      return r;
    }
    if (r == NativeResult::kInFlight) {  // it ends later (a timer): the task waits for it
      InFlightEffect& f = task_.in_flight;
      f.seq = seq;
      f.builtin = id;
      f.result_slot = static_cast<uint32_t>(result_slot - task_.stack.data());
      f.call_pc = call_pc;
      f.step = step;
      return r;
    }
  }
  return CompleteEffect(seq, id, step, r, result, result_slot, call_pc);
}

// The end of an effect (at once, or when a waiting one ends): its result lands in
// result_slot and the journal checkpoints; or its error is raised, and the checkpoint is
// taken where a handler takes it.
NativeResult VM::CompleteEffect(uint64_t seq, uint16_t id, int step, NativeResult r, Value result,
                                Value* result_slot, uint32_t call_pc) {
  const bool ok = r == NativeResult::kDone;
  if (!ok) {
    task_.effect_raised = journal_ != nullptr;
    task_.raised_seq = seq;
    task_.raised_builtin = id;
    task_.raised_call_pc = call_pc;
    task_.raised_handlers = task_.handlers;  // before the step counts the effect
  }
  if (step >= 0) ++task_.handlers[step].effects_done;
  if (!ok) return NativeResult::kRaised;
  if (result_slot) {  // null: a retry's wait, which pushes nothing
    *result_slot = result;
    task_.sp = static_cast<uint32_t>(result_slot - task_.stack.data()) + 1;
  }
  if (!journal_) return NativeResult::kDone;
  if (Status s = journal_->AfterEffect(*this, seq, id, result, false); !s.ok()) {
    abort_status_ = s;
    return NativeResult::kAborted;
  }
  return NativeResult::kDone;
}

// The effect scope ("KEY/n") of an effect about to run inside a step, or "": n is one past
// the effects the innermost step has done (retry attempts rewind that count, see
// RetryAfterError).
int VM::EnterEffectScope() {
  task_.effect_scope.clear();
  Handler* step = EnclosingStep(task_.handlers.size());
  task_.effect_in_step = step != nullptr;
  if (!step) {
    SetTaskEffectKey();
    return -1;
  }
  task_.effect_scope =
      heap_.StringOf(task_.stack[step->stack_height - 1]) + "/" + std::to_string(step->effects_done + 1);
  return static_cast<int>(step - task_.handlers.data());
}

// The key of the task's effect numbered task_.effects, outside steps: "n" at the top level,
// "PATH/n" in a task.
void VM::SetTaskEffectKey() {
  const std::string& path = heap_.Get<TaskObj>(current_)->path;
  task_.effect_scope = path.empty() ? std::to_string(task_.effects) : path + "/" + std::to_string(task_.effects);
}

Handler* VM::EnclosingStep(size_t below) {
  if (below == 0) return nullptr;
  int32_t step = task_.handlers[below - 1].step_in_force;
  return step < 0 ? nullptr : &task_.handlers[step];
}

// The method `name` of receiver's type (vm/bytecode/methods.def), called with argc
// arguments; -1 with the error raised when there is none or the count is wrong.
int VM::FindMethodOf(Value receiver, const std::string& name, int argc) {
  int method = -1;
  switch (receiver.tag) {
    case Tag::kString: method = FindMethod(MethodReceiver::kString, name); break;
    case Tag::kList: method = FindMethod(MethodReceiver::kList, name); break;
    case Tag::kMap: method = FindMethod(MethodReceiver::kMap, name); break;
    case Tag::kTask: method = FindMethod(MethodReceiver::kTask, name); break;
    default: break;
  }
  if (method < 0) {
    Raise("type", fmt::format("{} has no method `{}`", TypeName(receiver.tag), name));
    return -1;
  }
  if (std::string wrong = MethodArityError(GetMethodInfo(method), argc); !wrong.empty()) {
    Raise("type", std::move(wrong));
    return -1;
  }
  return method;
}

// A method written in Flow (stdlib/methods.flow): a frame whose slot 0 is the receiver
// (`self`), the arguments left out null. No closure: such a function captures nothing.
NativeResult VM::CallFlowMethod(uint32_t base, int argc, int method) {
  const int32_t function = method_functions_[method];
  if (function < 0) {
    Raise("fatal", fmt::format("the program has no code for the method {} (stdlib/methods.flow)",
                               FlowMethodFunctionName(GetMethodInfo(method))));
    return NativeResult::kRaised;
  }
  const Function& target = module_->functions[function];
  if (task_.frames.size() >= kMaxFrames || base + target.max_stack > kStackCapacity) {
    Raise("stack_overflow", fmt::format("call depth exceeded {} frames", task_.frames.size()));
    return NativeResult::kRaised;
  }
  if (base + target.max_stack > task_.stack.size()) GrowStack(base + target.max_stack);
  for (int i = argc; i < target.arity; ++i) task_.stack[base + 1 + i] = Value::Null();
  task_.frames.push_back({static_cast<uint32_t>(function), kNoClosure, 0, base});
  task_.sp = base + target.arity + 1;
  if (heap_.ShouldCollect() && !MaybeCollect()) return NativeResult::kRaised;
  return NativeResult::kDone;
}

// Calls the value at callee_slot with the argc values above it (the frame's pc already past
// the call instruction at call_pc). kDone: a Flow function has a new frame (task_.sp is its base
// + arity + 1), or a builtin's result has replaced the callee. An effectful builtin runs
// between the journal's records (RunEffect), however it is reached: `f(x)` or `m.f(x)`.
// The arguments on top of the stack of a call to a mock (SetMock), padded with nulls up to
// its parameters: http.post(url) may be mocked by fn(url, opts). Returns the new count.
int VM::PadMockArguments(Value mock, int argc) {
  const int want = module_->functions[heap_.Get<ClosureObj>(mock.ref)->function].arity;
  if (argc >= want) return argc;
  const uint32_t end = task_.sp + static_cast<uint32_t>(want - argc);
  if (end > task_.stack.size()) GrowStack(end);
  for (uint32_t i = task_.sp; i < end; ++i) task_.stack[i] = Value::Null();
  task_.sp = end;
  return want;
}

NativeResult VM::CallValue(Value* callee_slot, int argc, uint32_t call_pc) {
  Value callee = *callee_slot;
  Value* stack = task_.stack.data();
  if (callee.tag == Tag::kFunction) {
    const ClosureObj* c = heap_.Get<ClosureObj>(callee.ref);
    const Function& target = module_->functions[c->function];
    if (argc != target.arity) {
      Raise("type", fmt::format("{}() takes {} argument{}, got {}", target.name, target.arity,
                                target.arity == 1 ? "" : "s", argc));
      return NativeResult::kRaised;
    }
    uint32_t base = static_cast<uint32_t>(callee_slot - stack);
    if (task_.frames.size() >= kMaxFrames || base + target.max_stack > kStackCapacity) {
      Raise("stack_overflow", fmt::format("call depth exceeded {} frames", task_.frames.size()));
      return NativeResult::kRaised;
    }
    if (base + target.max_stack > task_.stack.size()) GrowStack(base + target.max_stack);
    task_.frames.push_back({c->function, callee.ref, 0, base});
    task_.sp = base + argc + 1;
    if (heap_.ShouldCollect() && !MaybeCollect()) return NativeResult::kRaised;
    return NativeResult::kDone;
  }
  if (callee.tag == Tag::kBuiltin) {
    const uint16_t id = static_cast<uint16_t>(callee.ref);
    const BuiltinInfo& info = GetBuiltinInfo(id);
    if (argc < info.min_args || (info.max_args >= 0 && argc > info.max_args)) {
      Raise("type", fmt::format("{}() does not take {} argument{}", info.name, argc, argc == 1 ? "" : "s"));
      return NativeResult::kRaised;
    }
    if (info.effectful && mocks_.count(id)) {  // under flow test: a Flow function stands in for the effect
      const uint32_t callee_at = static_cast<uint32_t>(callee_slot - stack);
      *callee_slot = mocks_.at(id);
      argc = PadMockArguments(mocks_.at(id), argc);
      return CallValue(task_.stack.data() + callee_at, argc, call_pc);
    }
    if (info.effectful) return RunEffect(id, callee_slot + 1, argc, callee_slot, call_pc);
    Value result;
    if (NativeResult r = natives_.builtins[id](*this, callee_slot + 1, argc, &result); r != NativeResult::kDone) return r;
    *callee_slot = result;
    task_.sp = static_cast<uint32_t>(callee_slot - stack) + 1;
    return NativeResult::kDone;
  }
  Raise("type", fmt::format("cannot call {}", TypeName(callee.tag)));
  return NativeResult::kRaised;
}

}  // namespace flow
