// The core builtins of builtins.def: print, conversions, range, error, json, time, math.
#include <fmt/format.h>

#include <charconv>
#include <cmath>

#include "stdlib/methods.h"
#include "stdlib/natives.h"
#include "stdlib/stdlib.h"
#include "vm/bytecode/opcodes.h"
#include "vm/value_ops.h"

namespace flow::stdlib {

namespace {

NativeResult Print(VM& vm, Value* args, int argc, Value* out) {
  std::string line, error;
  for (int i = 0; i < argc; ++i) {
    if (i) line.push_back(' ');
    if (!ToDisplayString(vm.heap(), args[i], &line, &error)) return Raise(vm, "type", error);
  }
  line.push_back('\n');
  vm.host().WriteOutput(line);
  *out = Value::Null();
  return kDone;
}

NativeResult Len(VM& vm, Value* args, int, Value* out) {
  Value v = args[0];
  switch (v.tag) {
    case Tag::kString: *out = Value::Int(Utf8Length(vm.heap().StringOf(v))); return kDone;
    case Tag::kList: *out = Value::Int(static_cast<int64_t>(vm.heap().Get<ListObj>(v.ref)->items.size())); return kDone;
    case Tag::kMap: *out = Value::Int(static_cast<int64_t>(vm.heap().Get<MapObj>(v.ref)->entries.size())); return kDone;
    default: return Raise(vm, "type", fmt::format("len() takes a string, list or map, not {}", TypeName(v.tag)));
  }
}

NativeResult Str(VM& vm, Value* args, int, Value* out) {
  if (args[0].tag == Tag::kString) {
    *out = args[0];
    return kDone;
  }
  std::string text, error;
  if (!ToDisplayString(vm.heap(), args[0], &text, &error)) return Raise(vm, "type", error);
  *out = vm.heap().NewString(std::move(text));
  return kDone;
}

std::string Trimmed(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

NativeResult Int(VM& vm, Value* args, int, Value* out) {
  Value v = args[0];
  switch (v.tag) {
    case Tag::kInt: *out = v; return kDone;
    case Tag::kBool: *out = Value::Int(v.b ? 1 : 0); return kDone;
    case Tag::kFloat:
      if (!std::isfinite(v.f) || v.f >= 9223372036854775808.0 || v.f < -9223372036854775808.0)
        return Raise(vm, "arith", fmt::format("{} does not fit in an int", FormatFloat(v.f)));
      *out = Value::Int(static_cast<int64_t>(v.f));
      return kDone;
    case Tag::kString: {
      std::string s = Trimmed(vm.heap().StringOf(v));
      int64_t n = 0;
      const char* begin = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
      auto [end, ec] = std::from_chars(begin, s.data() + s.size(), n);
      if (ec == std::errc::result_out_of_range) return Raise(vm, "arith", fmt::format("\"{}\" does not fit in an int", s));
      if (ec != std::errc() || end != s.data() + s.size() || s.empty())
        return Raise(vm, "type", fmt::format("cannot convert \"{}\" to an int", s));
      *out = Value::Int(n);
      return kDone;
    }
    default: return Raise(vm, "type", fmt::format("cannot convert {} to an int", TypeName(v.tag)));
  }
}

NativeResult Float(VM& vm, Value* args, int, Value* out) {
  Value v = args[0];
  switch (v.tag) {
    case Tag::kInt: *out = Value::Float(static_cast<double>(v.i)); return kDone;
    case Tag::kFloat: *out = v; return kDone;
    case Tag::kString: {
      std::string s = Trimmed(vm.heap().StringOf(v));
      char* end = nullptr;
      double d = s.empty() ? 0 : std::strtod(s.c_str(), &end);
      if (s.empty() || end != s.c_str() + s.size())
        return Raise(vm, "type", fmt::format("cannot convert \"{}\" to a float", s));
      *out = Value::Float(d);
      return kDone;
    }
    default: return Raise(vm, "type", fmt::format("cannot convert {} to a float", TypeName(v.tag)));
  }
}

NativeResult Type(VM& vm, Value* args, int, Value* out) {
  *out = vm.heap().NewString(TypeName(args[0].tag));
  return kDone;
}

NativeResult Range(VM& vm, Value* args, int argc, Value* out) {
  for (int i = 0; i < argc; ++i)
    if (args[i].tag != Tag::kInt) return Raise(vm, "type", fmt::format("range() takes ints, not {}", TypeName(args[i].tag)));
  int64_t start = argc == 1 ? 0 : args[0].i;
  int64_t end = argc == 1 ? args[0].i : args[1].i;
  int64_t step = argc == 3 ? args[2].i : 1;
  if (step == 0) return Raise(vm, "arith", "range() step must not be zero");
  // The count first (in 128 bits: end - start may overflow), so a huge range fails at once.
  constexpr int64_t kMaxRangeList = 100'000'000;
  __int128 span = step > 0 ? static_cast<__int128>(end) - start : static_cast<__int128>(start) - end;
  __int128 count = span <= 0 ? 0 : (span - 1) / (step > 0 ? step : -static_cast<__int128>(step)) + 1;
  if (count > kMaxRangeList) return Raise(vm, "index", "range() would build more than 100000000 items");
  std::vector<Value> items;
  items.reserve(static_cast<size_t>(count));
  for (int64_t k = 0; k < static_cast<int64_t>(count); ++k)
    items.push_back(Value::Int(static_cast<int64_t>(start + static_cast<__int128>(k) * step)));
  *out = vm.heap().NewList(std::move(items));
  return kDone;
}

NativeResult Error(VM& vm, Value* args, int argc, Value* out) {
  if (args[0].tag != Tag::kString) return Raise(vm, "type", "error() takes a kind string first");
  std::string message;
  if (argc >= 2) {
    std::string err;
    if (!ToDisplayString(vm.heap(), args[1], &message, &err)) return Raise(vm, "type", err);
  }
  *out = vm.heap().NewError(vm.heap().StringOf(args[0]), message, argc >= 3 ? args[2] : Value::Null());
  return kDone;
}

NativeResult JsonEncode(VM& vm, Value* args, int, Value* out) {
  std::string text, error;
  if (!EncodeJson(vm.heap(), args[0], false, &text, &error)) return Raise(vm, "type", error);
  *out = vm.heap().NewString(std::move(text));
  return kDone;
}

NativeResult JsonParse(VM& vm, Value* args, int, Value* out) {
  if (args[0].tag != Tag::kString) return Raise(vm, "type", fmt::format("json.parse() takes a string, not {}", TypeName(args[0].tag)));
  return ParseJson(vm, vm.heap().StringOf(args[0]), out) ? kDone : kRaised;
}

NativeResult TimeNow(VM& vm, Value*, int, Value* out) {
  *out = Value::Int(vm.host().NowMs());
  return kDone;
}

bool NeedNumber(VM& vm, Value v, const char* fn) {
  if (v.IsNumber()) return true;
  return vm.Raise("type", fmt::format("{}() takes numbers, not {}", fn, TypeName(v.tag)));
}

NativeResult MathAbs(VM& vm, Value* args, int, Value* out) {
  if (!NeedNumber(vm, args[0], "math.abs")) return kRaised;
  if (args[0].tag == Tag::kInt) {
    if (args[0].i == INT64_MIN) return Raise(vm, "arith", "integer overflow in math.abs");
    *out = Value::Int(args[0].i < 0 ? -args[0].i : args[0].i);
  } else {
    *out = Value::Float(std::fabs(args[0].f));
  }
  return kDone;
}

NativeResult MinMax(VM& vm, Value* args, int argc, Value* out, bool want_max, const char* name) {
  // One list argument, or several numbers.
  std::vector<Value> values;
  if (argc == 1 && args[0].tag == Tag::kList)
    values = vm.heap().Get<ListObj>(args[0].ref)->items;
  else
    values.assign(args, args + argc);
  if (values.empty()) return Raise(vm, "index", fmt::format("{}() of nothing", name));
  Value best = values[0];
  for (Value v : values) {
    if (!NeedNumber(vm, v, name)) return kRaised;
    int c = CompareNumbers(v, best);
    if (c != kUnordered && (want_max ? c > 0 : c < 0)) best = v;
  }
  *out = best;
  return kDone;
}
NativeResult MathMin(VM& vm, Value* args, int argc, Value* out) { return MinMax(vm, args, argc, out, false, "math.min"); }
NativeResult MathMax(VM& vm, Value* args, int argc, Value* out) { return MinMax(vm, args, argc, out, true, "math.max"); }

template <double (*Fn)(double)>
NativeResult Rounding(VM& vm, Value* args, int, Value* out) {
  if (!NeedNumber(vm, args[0], "math rounding")) return kRaised;
  if (args[0].tag == Tag::kInt) {
    *out = args[0];
    return kDone;
  }
  double r = Fn(args[0].f);
  if (!std::isfinite(r) || r >= 9223372036854775808.0 || r < -9223372036854775808.0)
    return Raise(vm, "arith", fmt::format("{} does not fit in an int", FormatFloat(r)));
  *out = Value::Int(static_cast<int64_t>(r));
  return kDone;
}
double Floor(double d) { return std::floor(d); }
double Ceil(double d) { return std::ceil(d); }
double Round(double d) { return std::round(d); }

NativeResult MathSqrt(VM& vm, Value* args, int, Value* out) {
  if (!NeedNumber(vm, args[0], "math.sqrt")) return kRaised;
  *out = Value::Float(std::sqrt(args[0].AsDouble()));
  return kDone;
}

NativeResult MathPow(VM& vm, Value* args, int, Value* out) {
  if (!NeedNumber(vm, args[0], "math.pow") || !NeedNumber(vm, args[1], "math.pow")) return kRaised;
  *out = Value::Float(std::pow(args[0].AsDouble(), args[1].AsDouble()));
  return kDone;
}

// Floored integer division: the quotient rounded toward negative infinity, so that
// a == math.div(a, b) * b + a % b for the floored `%`.
NativeResult MathDiv(VM& vm, Value* args, int, Value* out) {
  for (int i = 0; i < 2; ++i)
    if (args[i].tag != Tag::kInt)
      return Raise(vm, "type", fmt::format("math.div() takes ints, not {} (use math.floor(a / b) for floats)", TypeName(args[i].tag)));
  int64_t a = args[0].i, b = args[1].i;
  if (b == 0) return Raise(vm, "arith", "division by zero");
  if (a == INT64_MIN && b == -1) return Raise(vm, "arith", fmt::format("integer overflow in math.div({}, -1)", a));
  int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) --q;
  *out = Value::Int(q);
  return kDone;
}

// tasks.race(ts) and tasks.settle(ts): the VM's scheduler waits (vm/scheduler.cc).
NativeResult TasksRace(VM& vm, Value* args, int, Value* out) { return vm.RaceTasks(args[0], out); }
NativeResult TasksSettle(VM& vm, Value* args, int, Value* out) { return vm.SettleTasks(args[0], out); }

constexpr BuiltinFn kBuiltins[] = {
    Print, Len, Str, Int, Float, Type, Range, Error, JsonEncode, JsonParse, TimeNow,
    MathAbs, MathMin, MathMax, Rounding<Floor>, Rounding<Ceil>, Rounding<Round>, MathSqrt, MathPow,
    RandomInt, EnvGet, Sleep, FsRead, FsWrite, FsAppend, HttpGet, HttpPost, SignalWait,
    FsExists, FsList, FsRemove, HttpPut, HttpPatch, HttpDelete, HttpRequest, ExecRun, ExecShell, Secret, LlmChat,
    MathDiv, TasksRace, TasksSettle, LogInfo, LogWarn, LogError, RunId, RunStartedAt, Uuid, FsMkdir,
    TimeFormat, TimeParse, ReMatch, ReFindAll, ReReplace, Assert, AssertEq, SignalSend, Mock,
};
static_assert(sizeof(kBuiltins) / sizeof(kBuiltins[0]) == kBuiltinCount,
              "every builtin of builtins.def needs an implementation here, in the same order");

}  // namespace

#define METHOD_kNative(id) id
#define METHOD_kFlow(id) nullptr
const NativeMethodFn kNativeMethods[kMethodCount] = {
#define METHOD(id, receiver, name, min_args, max_args, written_in, ...) METHOD_##written_in(id),
#include "vm/bytecode/methods.def"
#undef METHOD
};
#undef METHOD_kFlow
#undef METHOD_kNative

Natives GetNatives() { return Natives{kBuiltins, kNativeMethods}; }

}  // namespace flow::stdlib
