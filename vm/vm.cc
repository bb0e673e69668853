// The dispatch loop. One `switch`-free loop of computed gotos expanded from opcodes.def;
// hot state (ip, base, sp) lives in locals and is saved to the frame around anything that
// may look at it (calls, builtins, errors, collection).
#include "vm/vm.h"

#include <fmt/format.h>

#include <cmath>

#include "vm/base/coding.h"
#include "vm/bytecode/opcodes.h"
#include "vm/value_ops.h"

namespace flow {

VM::VM(const Module* module, VmHost* host, Natives natives)
    : module_(module), host_(host), natives_(natives), stack_(new Value[kStackCapacity]) {
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
}

VM::~VM() = default;

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
  pending_error_ = heap_.NewError(std::move(kind), std::move(message), data);
  return false;
}

Value& VM::UpvalueRef(uint32_t id) {
  UpvalueObj* up = heap_.Get<UpvalueObj>(id);
  return up->open ? stack_[up->slot] : up->closed;
}

uint32_t VM::CaptureUpvalue(uint32_t slot) {
  auto it = open_upvalues_.end();
  while (it != open_upvalues_.begin()) {
    uint32_t existing = *(it - 1);
    uint32_t s = heap_.Get<UpvalueObj>(existing)->slot;
    if (s == slot) return existing;
    if (s < slot) break;
    --it;
  }
  uint32_t id = heap_.Make<UpvalueObj>(slot);
  open_upvalues_.insert(it, id);
  return id;
}

void VM::CloseUpvalues(uint32_t from_slot) {
  while (!open_upvalues_.empty()) {
    UpvalueObj* up = heap_.Get<UpvalueObj>(open_upvalues_.back());
    if (up->slot < from_slot) break;
    up->closed = stack_[up->slot];
    up->open = false;
    open_upvalues_.pop_back();
  }
}

void VM::FillTrace(Value error, uint32_t pc) {
  if (error.tag != Tag::kError) return;
  ErrorObj* e = heap_.Get<ErrorObj>(error.ref);
  if (!e->trace.empty()) return;
  for (size_t i = frames_.size(); i-- > 0;) {
    const Frame& fr = frames_[i];
    const Function& fn = module_->functions[fr.function];
    uint32_t at = (i + 1 == frames_.size() ? pc : fr.pc);
    uint32_t line = fn.LineAt(at > 0 ? at - 1 : 0);
    e->trace.push_back(fmt::format("{} ({}:{})", fn.name, module_->source_name, line));
  }
}

void VM::MaybeCollect() {
  if (!heap_.ShouldCollect()) return;
  std::vector<uint32_t> extra = constant_roots_;
  for (uint32_t id : open_upvalues_) extra.push_back(id);
  for (const Frame& f : frames_)
    if (f.closure != kNoClosure) extra.push_back(f.closure);
  heap_.Collect(
      [this](const std::function<void(Value)>& mark) {
        for (uint32_t i = 0; i < sp_; ++i) mark(stack_[i]);
        for (const Value& g : globals_) mark(g);
        mark(pending_error_);
        mark(uncaught_);
      },
      extra);
}

std::string VM::FormatUncaught() const {
  if (uncaught_.tag != Tag::kError) return "error: uncaught\n";
  const ErrorObj* e = heap_.Get<ErrorObj>(uncaught_.ref);
  std::string out = fmt::format("error: {}: {}\n", e->kind, e->message);
  if (e->data.tag != Tag::kNull) {
    std::string data, err;
    if (EncodeJson(heap_, e->data, true, &data, &err)) out += fmt::format("  data: {}\n", data);
  }
  for (const auto& t : e->trace) out += fmt::format("  at {}\n", t);
  return out;
}

namespace {

// Floored integer division and remainder, as `//` and `%` define them.
inline int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}
inline int64_t FloorMod(int64_t a, int64_t b) {
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}
inline double FloatMod(double a, double b) {
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

// Splits UTF-8 text into one string per code point.
std::vector<std::string> CodePoints(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    size_t j = i + 1;
    while (j < s.size() && (static_cast<unsigned char>(s[j]) & 0xC0) == 0x80) ++j;
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

RunOutcome VM::Run() {
  static void* const kLabels[] = {
#define OP(name, operands, pops, pushes, flags, meaning) &&op_##name,
#include "vm/bytecode/opcodes.def"
#undef OP
  };

  Value* const stack = stack_.get();
  stack[0] = Value::Null();
  sp_ = 1;
  frames_.push_back({0, kNoClosure, 0, 0});

  const Function* fn;
  const uint8_t* code;
  const uint8_t* ip;
  Value* base;
  Value* sp = stack + sp_;
  ClosureObj* closure;

#define LOAD_FRAME()                                                                    \
  do {                                                                                  \
    const Frame& f_ = frames_.back();                                                   \
    fn = &module_->functions[f_.function];                                              \
    code = reinterpret_cast<const uint8_t*>(fn->code.data());                           \
    ip = code + f_.pc;                                                                  \
    base = stack + f_.base;                                                             \
    closure = f_.closure == kNoClosure ? nullptr : heap_.Get<ClosureObj>(f_.closure);   \
  } while (0)
#define SAVE_STATE()                                                   \
  do {                                                                 \
    frames_.back().pc = static_cast<uint32_t>(ip - code);              \
    sp_ = static_cast<uint32_t>(sp - stack);                           \
  } while (0)
#define READ8() (ip += 1, ip[-1])
#define READ16() (ip += 2, DecodeFixed16(ip - 2))
#define READ32() (ip += 4, DecodeFixed32(ip - 4))
#define DISPATCH() goto* kLabels[*ip++]
#define RAISE(kind, ...)                                                 \
  do {                                                                   \
    SAVE_STATE();                                                        \
    pending_error_ = heap_.NewError(kind, fmt::format(__VA_ARGS__));     \
    goto handle_error;                                                   \
  } while (0)
#define TYPE_ERROR_2(what, a, b) RAISE("type", "cannot {} {} and {}", what, TypeName((a).tag), TypeName((b).tag))

  LOAD_FRAME();
  DISPATCH();

op_NOP:
  DISPATCH();
op_CONST:
  *sp++ = constants_[READ32()];
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
op_SET_LOCAL:
  base[READ16()] = *--sp;
  DISPATCH();
op_GET_GLOBAL:
  *sp++ = globals_[READ16()];
  DISPATCH();
op_SET_GLOBAL:
  globals_[READ16()] = *--sp;
  DISPATCH();
op_GET_UPVAL:
  *sp++ = UpvalueRef(closure->upvalues[READ16()]);
  DISPATCH();
op_SET_UPVAL:
  UpvalueRef(closure->upvalues[READ16()]) = *--sp;
  DISPATCH();
op_CLOSE_FROM:
  CloseUpvalues(static_cast<uint32_t>(base - stack) + READ16());
  DISPATCH();
op_CLOSURE: {
  uint32_t index = READ32();
  const Function& inner = module_->functions[index];
  uint32_t id = heap_.Make<ClosureObj>(index);
  ClosureObj* made = heap_.Get<ClosureObj>(id);
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

op_ADD: {
  Value b = sp[-1], a = sp[-2];
  if (a.tag == Tag::kInt && b.tag == Tag::kInt) {
    int64_t r;
    if (__builtin_add_overflow(a.i, b.i, &r)) RAISE("arith", "integer overflow in {} + {}", a.i, b.i);
    sp[-2] = Value::Int(r);
  } else if (a.IsNumber() && b.IsNumber()) {
    sp[-2] = Value::Float(a.AsDouble() + b.AsDouble());
  } else if (a.tag == Tag::kString && b.tag == Tag::kString) {
    sp[-2] = heap_.NewString(heap_.StringOf(a) + heap_.StringOf(b));
  } else if (a.tag == Tag::kList && b.tag == Tag::kList) {
    std::vector<Value> items = heap_.Get<ListObj>(a.ref)->items;
    const auto& more = heap_.Get<ListObj>(b.ref)->items;
    items.insert(items.end(), more.begin(), more.end());
    sp[-2] = heap_.NewList(std::move(items));
  } else {
    TYPE_ERROR_2("add", a, b);
  }
  --sp;
  DISPATCH();
}
op_SUB: {
  Value b = sp[-1], a = sp[-2];
  if (a.tag == Tag::kInt && b.tag == Tag::kInt) {
    int64_t r;
    if (__builtin_sub_overflow(a.i, b.i, &r)) RAISE("arith", "integer overflow in {} - {}", a.i, b.i);
    sp[-2] = Value::Int(r);
  } else if (a.IsNumber() && b.IsNumber()) {
    sp[-2] = Value::Float(a.AsDouble() - b.AsDouble());
  } else {
    TYPE_ERROR_2("subtract", a, b);
  }
  --sp;
  DISPATCH();
}
op_MUL: {
  Value b = sp[-1], a = sp[-2];
  if (a.tag == Tag::kInt && b.tag == Tag::kInt) {
    int64_t r;
    if (__builtin_mul_overflow(a.i, b.i, &r)) RAISE("arith", "integer overflow in {} * {}", a.i, b.i);
    sp[-2] = Value::Int(r);
  } else if (a.IsNumber() && b.IsNumber()) {
    sp[-2] = Value::Float(a.AsDouble() * b.AsDouble());
  } else {
    TYPE_ERROR_2("multiply", a, b);
  }
  --sp;
  DISPATCH();
}
op_DIV: {
  Value b = sp[-1], a = sp[-2];
  if (!a.IsNumber() || !b.IsNumber()) TYPE_ERROR_2("divide", a, b);
  if (b.AsDouble() == 0) RAISE("arith", "division by zero");
  sp[-2] = Value::Float(a.AsDouble() / b.AsDouble());
  --sp;
  DISPATCH();
}
op_FLOORDIV: {
  Value b = sp[-1], a = sp[-2];
  if (a.tag == Tag::kInt && b.tag == Tag::kInt) {
    if (b.i == 0) RAISE("arith", "division by zero");
    if (b.i == -1 && a.i == INT64_MIN) RAISE("arith", "integer overflow in {} // -1", a.i);
    sp[-2] = Value::Int(FloorDiv(a.i, b.i));
  } else if (a.IsNumber() && b.IsNumber()) {
    if (b.AsDouble() == 0) RAISE("arith", "division by zero");
    sp[-2] = Value::Float(std::floor(a.AsDouble() / b.AsDouble()));
  } else {
    TYPE_ERROR_2("divide", a, b);
  }
  --sp;
  DISPATCH();
}
op_MOD: {
  Value b = sp[-1], a = sp[-2];
  if (a.tag == Tag::kInt && b.tag == Tag::kInt) {
    if (b.i == 0) RAISE("arith", "modulo by zero");
    sp[-2] = Value::Int(FloorMod(a.i, b.i));
  } else if (a.IsNumber() && b.IsNumber()) {
    if (b.AsDouble() == 0) RAISE("arith", "modulo by zero");
    sp[-2] = Value::Float(FloatMod(a.AsDouble(), b.AsDouble()));
  } else {
    TYPE_ERROR_2("take the remainder of", a, b);
  }
  --sp;
  DISPATCH();
}
op_NEG: {
  Value a = sp[-1];
  if (a.tag == Tag::kInt) {
    if (a.i == INT64_MIN) RAISE("arith", "integer overflow in -({})", a.i);
    sp[-1] = Value::Int(-a.i);
  } else if (a.tag == Tag::kFloat) {
    sp[-1] = Value::Float(-a.f);
  } else {
    RAISE("type", "cannot negate {}", TypeName(a.tag));
  }
  DISPATCH();
}
op_NOT:
  sp[-1] = Value::Bool(!sp[-1].Truthy());
  DISPATCH();
op_EQ:
op_NE: {
  bool negate = ip[-1] == static_cast<uint8_t>(Op::NE);
  Value b = sp[-1], a = sp[-2];
  bool equal;
  if (a.tag == Tag::kInt && b.tag == Tag::kInt) {
    equal = a.i == b.i;
  } else {
    bool too_deep;
    equal = ValuesEqual(heap_, a, b, &too_deep);
    if (too_deep) RAISE("type", "values nest too deeply to compare (or contain themselves)");
  }
  sp[-2] = Value::Bool(equal != negate);
  --sp;
  DISPATCH();
}
op_LT:
op_LE:
op_GT:
op_GE: {
  Op op = static_cast<Op>(ip[-1]);
  Value b = sp[-1], a = sp[-2];
  int cmp;
  if (a.tag == Tag::kInt && b.tag == Tag::kInt) {
    cmp = a.i < b.i ? -1 : a.i > b.i ? 1 : 0;
  } else if (a.IsNumber() && b.IsNumber()) {
    double x = a.AsDouble(), y = b.AsDouble();
    if (std::isnan(x) || std::isnan(y)) {
      sp[-2] = Value::Bool(false);
      --sp;
      DISPATCH();
    }
    cmp = x < y ? -1 : x > y ? 1 : 0;
  } else if (a.tag == Tag::kString && b.tag == Tag::kString) {
    int c = heap_.StringOf(a).compare(heap_.StringOf(b));
    cmp = c < 0 ? -1 : c > 0 ? 1 : 0;
  } else {
    TYPE_ERROR_2("compare", a, b);
  }
  bool r = op == Op::LT ? cmp < 0 : op == Op::LE ? cmp <= 0 : op == Op::GT ? cmp > 0 : cmp >= 0;
  sp[-2] = Value::Bool(r);
  --sp;
  DISPATCH();
}
op_JUMP:
  ip = code + DecodeFixed32(ip);
  DISPATCH();
op_LOOP:
  ip = code + DecodeFixed32(ip);
  if (heap_.ShouldCollect()) {
    SAVE_STATE();
    MaybeCollect();
  }
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
op_CALL: {
  int argc = READ8();
  SAVE_STATE();
  if (!CallValue(sp - argc - 1, argc, static_cast<uint32_t>(ip - code))) goto handle_error;
  sp = stack + sp_;
  LOAD_FRAME();
  DISPATCH();
}
op_CALL_BUILTIN: {
  uint16_t id = READ16();
  int argc = READ8();
  SAVE_STATE();
  Value result;
  if (!natives_.builtins[id](*this, sp - argc, argc, &result)) goto handle_error;
  sp -= argc;
  *sp++ = result;
  DISPATCH();
}
op_INVOKE: {
  const std::string& name = heap_.StringOf(constants_[READ32()]);
  int argc = READ8();
  Value receiver = sp[-argc - 1];
  SAVE_STATE();
  if (receiver.tag == Tag::kMap) {
    const Value* member = heap_.Get<MapObj>(receiver.ref)->Find(name);
    if (member && (member->tag == Tag::kFunction || member->tag == Tag::kBuiltin)) {
      sp[-argc - 1] = *member;
      if (!CallValue(sp - argc - 1, argc, static_cast<uint32_t>(ip - code))) goto handle_error;
      sp = stack + sp_;
      LOAD_FRAME();
      DISPATCH();
    }
  }
  Value result;
  if (!natives_.invoke_method(*this, receiver, name, sp - argc, argc, &result)) goto handle_error;
  sp -= argc;
  sp[-1] = result;
  DISPATCH();
}
op_RETURN: {
  Value result = sp[-1];
  uint32_t depth = static_cast<uint32_t>(frames_.size() - 1);
  uint32_t frame_base = frames_.back().base;
  if (!open_upvalues_.empty()) CloseUpvalues(frame_base);
  while (!handlers_.empty() && handlers_.back().frame_depth >= depth) handlers_.pop_back();
  frames_.pop_back();
  sp = stack + frame_base;
  if (frames_.empty()) {
    sp_ = static_cast<uint32_t>(sp - stack);
    return RunOutcome::kCompleted;
  }
  *sp++ = result;
  LOAD_FRAME();
  DISPATCH();
}
op_BUILD_LIST: {
  uint16_t n = READ16();
  std::vector<Value> items(sp - n, sp);
  sp -= n;
  *sp++ = heap_.NewList(std::move(items));
  DISPATCH();
}
op_BUILD_MAP: {
  uint16_t n = READ16();
  Value map = heap_.NewMap();
  MapObj* m = heap_.Get<MapObj>(map.ref);
  Value* first = sp - 2 * n;
  for (uint16_t i = 0; i < n; ++i) {
    if (first[2 * i].tag != Tag::kString) RAISE("type", "map keys must be strings, not {}", TypeName(first[2 * i].tag));
    m->Set(heap_.StringOf(first[2 * i]), first[2 * i + 1]);
  }
  sp = first;
  *sp++ = map;
  DISPATCH();
}
op_BUILD_STRING: {
  uint16_t n = READ16();
  std::string text, error;
  for (Value* v = sp - n; v < sp; ++v) {
    if (!ToDisplayString(heap_, *v, &text, &error)) RAISE("type", "{}", error);
  }
  sp -= n;
  *sp++ = heap_.NewString(std::move(text));
  DISPATCH();
}
op_GET_INDEX: {
  Value index = sp[-1], container = sp[-2];
  if (container.tag == Tag::kList) {
    if (index.tag != Tag::kInt) RAISE("type", "list index must be an int, not {}", TypeName(index.tag));
    const auto& items = heap_.Get<ListObj>(container.ref)->items;
    int64_t i = index.i < 0 ? index.i + static_cast<int64_t>(items.size()) : index.i;
    if (i < 0 || i >= static_cast<int64_t>(items.size()))
      RAISE("index", "list index {} out of range (length {})", index.i, items.size());
    sp[-2] = items[i];
  } else if (container.tag == Tag::kMap) {
    if (index.tag != Tag::kString) RAISE("type", "map key must be a string, not {}", TypeName(index.tag));
    const Value* v = heap_.Get<MapObj>(container.ref)->Find(heap_.StringOf(index));
    sp[-2] = v ? *v : Value::Null();
  } else if (container.tag == Tag::kString) {
    if (index.tag != Tag::kInt) RAISE("type", "string index must be an int, not {}", TypeName(index.tag));
    std::vector<std::string> chars = CodePoints(heap_.StringOf(container));
    int64_t i = index.i < 0 ? index.i + static_cast<int64_t>(chars.size()) : index.i;
    if (i < 0 || i >= static_cast<int64_t>(chars.size()))
      RAISE("index", "string index {} out of range (length {})", index.i, chars.size());
    sp[-2] = heap_.NewString(chars[i]);
  } else {
    RAISE("type", "cannot index {}", TypeName(container.tag));
  }
  --sp;
  DISPATCH();
}
op_SET_INDEX: {
  Value value = sp[-1], index = sp[-2], container = sp[-3];
  if (container.tag == Tag::kList) {
    if (index.tag != Tag::kInt) RAISE("type", "list index must be an int, not {}", TypeName(index.tag));
    auto& items = heap_.Get<ListObj>(container.ref)->items;
    int64_t i = index.i < 0 ? index.i + static_cast<int64_t>(items.size()) : index.i;
    if (i < 0 || i >= static_cast<int64_t>(items.size()))
      RAISE("index", "list index {} out of range (length {})", index.i, items.size());
    items[i] = value;
  } else if (container.tag == Tag::kMap) {
    if (index.tag != Tag::kString) RAISE("type", "map key must be a string, not {}", TypeName(index.tag));
    heap_.Get<MapObj>(container.ref)->Set(heap_.StringOf(index), value);
  } else {
    RAISE("type", "cannot assign into an element of {}", TypeName(container.tag));
  }
  sp -= 3;
  DISPATCH();
}
op_GET_FIELD: {
  const std::string& name = heap_.StringOf(constants_[READ32()]);
  Value object = sp[-1];
  if (object.tag == Tag::kMap) {
    const Value* v = heap_.Get<MapObj>(object.ref)->Find(name);
    sp[-1] = v ? *v : Value::Null();
  } else if (object.tag == Tag::kError) {
    const ErrorObj* e = heap_.Get<ErrorObj>(object.ref);
    if (name == "kind") {
      sp[-1] = heap_.NewString(e->kind);
    } else if (name == "message") {
      sp[-1] = heap_.NewString(e->message);
    } else if (name == "data") {
      sp[-1] = e->data;
    } else {
      RAISE("type", "an error has no field `{}` (it has kind, message and data)", name);
    }
  } else {
    RAISE("type", "cannot read field `{}` of {}", name, TypeName(object.tag));
  }
  DISPATCH();
}
op_SET_FIELD: {
  const std::string& name = heap_.StringOf(constants_[READ32()]);
  Value value = sp[-1], object = sp[-2];
  if (object.tag != Tag::kMap) RAISE("type", "cannot set field `{}` of {}", name, TypeName(object.tag));
  heap_.Get<MapObj>(object.ref)->Set(name, value);
  sp -= 2;
  DISPATCH();
}
op_THROW: {
  Value v = sp[-1];
  if (v.tag != Tag::kError) RAISE("type", "throw takes an error value (made by error(kind, message)), not {}", TypeName(v.tag));
  --sp;
  SAVE_STATE();
  pending_error_ = v;
  goto handle_error;
}
op_TRY_BEGIN:
  handlers_.push_back({static_cast<uint32_t>(frames_.size() - 1), static_cast<uint32_t>(sp - stack), READ32()});
  DISPATCH();
op_TRY_END:
  if (handlers_.empty() || handlers_.back().frame_depth != frames_.size() - 1)
    RAISE("fatal", "bytecode ends a try that it did not begin");
  handlers_.pop_back();
  DISPATCH();
op_ITER_PREP: {
  Value seq = sp[-1];
  if (seq.tag == Tag::kString) {
    std::vector<Value> chars;
    for (auto& c : CodePoints(heap_.StringOf(seq))) chars.push_back(heap_.NewString(std::move(c)));
    sp[-1] = heap_.NewList(std::move(chars));
  } else if (seq.tag != Tag::kList && seq.tag != Tag::kMap) {
    RAISE("type", "cannot iterate over {}", TypeName(seq.tag));
  }
  *sp++ = Value::Int(0);
  DISPATCH();
}
op_FOR_ITER: {
  uint16_t slot = READ16();
  uint8_t vars = READ8();
  uint32_t exit = READ32();
  Value seq = base[slot];
  int64_t i = base[slot + 1].i;
  if (seq.tag == Tag::kList) {
    const auto& items = heap_.Get<ListObj>(seq.ref)->items;
    if (i >= static_cast<int64_t>(items.size())) {
      ip = code + exit;
      DISPATCH();
    }
    if (vars == 1) {
      base[slot + 2] = items[i];
    } else {
      base[slot + 2] = Value::Int(i);
      base[slot + 3] = items[i];
    }
  } else {
    const MapObj* m = heap_.Get<MapObj>(seq.ref);
    if (i >= static_cast<int64_t>(m->entries.size())) {
      ip = code + exit;
      DISPATCH();
    }
    Value value = m->entries[i].second;
    base[slot + 2] = heap_.NewString(m->entries[i].first);
    if (vars == 2) base[slot + 3] = value;
  }
  base[slot + 1].i = i + 1;
  DISPATCH();
}
op_RANGE_PREP: {
  uint16_t slot = READ16();
  uint32_t exit = READ32();
  if (base[slot].tag != Tag::kInt || base[slot + 1].tag != Tag::kInt)
    RAISE("type", "range bounds must be ints, not {} and {}", TypeName(base[slot].tag), TypeName(base[slot + 1].tag));
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
    if (heap_.ShouldCollect()) {
      SAVE_STATE();
      MaybeCollect();
    }
  }
  DISPATCH();
}

handle_error : {
  // Unwind to the innermost try; state was saved by whoever jumped here.
  FillTrace(pending_error_, frames_.back().pc);
  if (handlers_.empty()) {
    uncaught_ = pending_error_;
    return RunOutcome::kFailed;
  }
  Handler h = handlers_.back();
  handlers_.pop_back();
  frames_.resize(h.frame_depth + 1);
  CloseUpvalues(h.stack_height);
  sp = stack + h.stack_height;
  *sp++ = pending_error_;
  pending_error_ = Value::Null();
  LOAD_FRAME();
  ip = code + h.catch_pc;
  DISPATCH();
}
#undef LOAD_FRAME
#undef SAVE_STATE
#undef READ8
#undef READ16
#undef READ32
#undef DISPATCH
#undef RAISE
#undef TYPE_ERROR_2
}

// Calls the value at callee_slot with the argc values above it. On success a Flow function
// has a new frame (sp_ is its base + arity + 1), or a builtin's result has replaced the callee.
bool VM::CallValue(Value* callee_slot, int argc, uint32_t pc_after) {
  Value callee = *callee_slot;
  Value* stack = stack_.get();
  frames_.back().pc = pc_after;
  if (callee.tag == Tag::kFunction) {
    const ClosureObj* c = heap_.Get<ClosureObj>(callee.ref);
    const Function& target = module_->functions[c->function];
    if (argc != target.arity) {
      return Raise("type", fmt::format("{}() takes {} argument{}, got {}", target.name, target.arity,
                                       target.arity == 1 ? "" : "s", argc));
    }
    uint32_t base = static_cast<uint32_t>(callee_slot - stack);
    if (frames_.size() >= kMaxFrames || base + target.max_stack > kStackCapacity)
      return Raise("stack_overflow", fmt::format("call depth exceeded {} frames", frames_.size()));
    frames_.push_back({c->function, callee.ref, 0, base});
    sp_ = base + argc + 1;
    if (heap_.ShouldCollect()) MaybeCollect();
    return true;
  }
  if (callee.tag == Tag::kBuiltin) {
    const BuiltinInfo& info = GetBuiltinInfo(static_cast<uint16_t>(callee.ref));
    if (argc < info.min_args || (info.max_args >= 0 && argc > info.max_args))
      return Raise("type", fmt::format("{}() does not take {} argument{}", info.name, argc, argc == 1 ? "" : "s"));
    Value result;
    if (!natives_.builtins[callee.ref](*this, callee_slot + 1, argc, &result)) return false;
    *callee_slot = result;
    sp_ = static_cast<uint32_t>(callee_slot - stack) + 1;
    return true;
  }
  return Raise("type", fmt::format("cannot call {}", TypeName(callee.tag)));
}

}  // namespace flow
