// assert, assert_eq and signal.send: what tests (flow test) are written with. The
// assertions work in any program; signal.send needs a host with a mailbox of its own.
#include <fmt/format.h>

#include "stdlib/natives.h"
#include "vm/bytecode/opcodes.h"
#include "vm/value_ops.h"

namespace flow::stdlib {

namespace {

// A value as an assertion message shows it: compact JSON, cut past 200 characters.
std::string Shown(VM& vm, Value v) {
  std::string text, error;
  if (!EncodeJson(vm.heap(), v, true, &text, &error)) return "<" + error + ">";
  return text.size() > 200 ? text.substr(0, 197) + "..." : text;
}

// The optional message argument, after ": ".
std::string Because(VM& vm, Value* args, int argc, int at) {
  if (argc <= at) return "";
  return ": " + (args[at].tag == Tag::kString ? vm.heap().StringOf(args[at]) : Shown(vm, args[at]));
}

}  // namespace

// assert(cond [, message]): raises `assert` unless cond is true (not merely truthy: a
// forgotten comparison, assert(x), fails for every x but true).
NativeResult Assert(VM& vm, Value* args, int argc, Value* out) {
  if (args[0].tag == Tag::kBool && args[0].b) {
    *out = Value::Null();
    return kDone;
  }
  std::string what = args[0].tag == Tag::kBool ? "assertion failed" : fmt::format("assert takes a bool, got {}", Shown(vm, args[0]));
  return Raise(vm, "assert", what + Because(vm, args, argc, 1));
}

// assert_eq(got, want [, message]): raises `assert` unless got == want (== as Flow's).
NativeResult AssertEq(VM& vm, Value* args, int argc, Value* out) {
  bool too_deep = false;
  if (ValuesEqual(vm.heap(), args[0], args[1], &too_deep) && !too_deep) {
    *out = Value::Null();
    return kDone;
  }
  return Raise(vm, "assert", fmt::format("got {}, want {}{}", Shown(vm, args[0]), Shown(vm, args[1]), Because(vm, args, argc, 2)));
}

// signal.send(name, value): value (as JSON) into the mailbox, for a signal.wait(name).
NativeResult SignalSend(VM& vm, Value* args, int, Value* out) {
  if (args[0].tag != Tag::kString) return Raise(vm, "type", "signal.send(name, value) takes a signal name");
  std::string json, error;
  if (!EncodeJson(vm.heap(), args[1], false, &json, &error)) return Raise(vm, "json", "signal.send: " + error);
  if (Status s = vm.host().SendSignal(vm.heap().StringOf(args[0]), std::move(json)); !s.ok())
    return Raise(vm, "signal", s.message());
  *out = Value::Null();
  return kDone;
}

// mock(name, fn): in this test, a call of the effect `name` ("http.post") calls fn with the
// same arguments and returns what it returns; the effect does not run.
NativeResult Mock(VM& vm, Value* args, int, Value* out) {
  if (!vm.host().AllowsMocks()) return Raise(vm, "type", "mock() works in tests only (flow test)");
  if (args[0].tag != Tag::kString) return Raise(vm, "type", "mock(name, fn) takes the name of an effect, as \"http.post\"");
  const std::string& name = vm.heap().StringOf(args[0]);
  const int id = FindBuiltin(name);
  if (id < 0 || !GetBuiltinInfo(static_cast<uint16_t>(id)).effectful)
    return Raise(vm, "type", fmt::format("mock: `{}` is not an effect (http.get, fs.read, time.now, ...)", name));
  if (args[1].tag != Tag::kFunction) return Raise(vm, "type", fmt::format("mock(\"{}\", fn) takes a function", name));
  vm.SetMock(static_cast<uint16_t>(id), args[1]);
  *out = Value::Null();
  return kDone;
}

}  // namespace flow::stdlib
