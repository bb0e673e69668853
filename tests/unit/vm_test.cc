#include <gtest/gtest.h>

#include "run_program.h"
#include "vm/value_ops.h"

namespace flow {
namespace {

using testing::RunProgram;

std::string Output(const std::string& source) {
  auto r = RunProgram(source);
  EXPECT_TRUE(r.compiled) << r.diagnostics;
  EXPECT_EQ(r.outcome, RunOutcome::kCompleted) << r.error;
  return r.output;
}

std::string ErrorKind(const std::string& body) {
  return Output("try { " + body + " } catch e { print(e.kind) }");
}

TEST(Vm, ArithmeticRules) {
  EXPECT_EQ(Output("print(7 / 2, 8 / 2, math.div(7, 2), math.div(-7, 2), 7 % 3, -7 % 3, 7 % -3)"), "3.5 4.0 3 -4 1 2 -2\n");
  EXPECT_EQ(Output("print(math.floor(7.5 / 2), -7.5 % 2, 2 * 3.0, 1 == 1.0, 1 < 1.5)"), "3 0.5 6.0 true true\n");
  EXPECT_EQ(Output("print(-9223372036854775807 - 1)"), "-9223372036854775808\n");
}

TEST(Vm, RuntimeErrorKinds) {
  EXPECT_EQ(ErrorKind("let z = 9223372036854775807 * 2"), "arith\n");
  EXPECT_EQ(ErrorKind("let z = -(-9223372036854775807 - 1)"), "arith\n");
  EXPECT_EQ(ErrorKind("let z = math.div(-9223372036854775807 - 1, -1)"), "arith\n");
  EXPECT_EQ(ErrorKind("let z = 1 % 0"), "arith\n");
  EXPECT_EQ(ErrorKind("let z = 1 / 0"), "arith\n");
  EXPECT_EQ(ErrorKind("let z = \"a\" < 1"), "type\n");
  EXPECT_EQ(ErrorKind("let z = [1][-2]"), "index\n");
  EXPECT_EQ(ErrorKind("let z = \"abc\"[3]"), "index\n");
  EXPECT_EQ(ErrorKind("let z = null.field"), "type\n");
  EXPECT_EQ(ErrorKind("let f = 3\nf()"), "type\n");
  EXPECT_EQ(ErrorKind("fn f(a) { return a }\nf(1, 2)"), "type\n");
  EXPECT_EQ(ErrorKind("throw \"not an error\""), "type\n");
  EXPECT_EQ(ErrorKind("[].pop()"), "index\n");
  EXPECT_EQ(ErrorKind("int(\"12x\")"), "type\n");
  EXPECT_EQ(ErrorKind("for x in 5 { }"), "type\n");
}

TEST(Vm, StringsAreUtf8AndIndexedByCodePoint) {
  EXPECT_EQ(Output("let s = \"naïve☃\"\nprint(len(s), s[2], s[-1], type(s))"), "6 ï ☃ string\n");
  EXPECT_EQ(Output("print(\"\\u{2603} \\u00e9 \\$x ${1 + 1}\")"), "☃ é $x 2\n");
  EXPECT_EQ(Output("let m = {k: \"v\"}\nprint(\"${m[\"k\"]}-${[1, 2]}\")"), "v-[1,2]\n");
  EXPECT_EQ(Output("print(\"a-b\".split(\"-\"), \"ab\".split(\"\"), \"x\".ends_with(\"x\"))"), "[\"a\",\"b\"] [\"a\",\"b\"] true\n");
}

TEST(Vm, ClosuresCaptureByReference) {
  EXPECT_EQ(Output("let fs = []\nfor i in range(3) { fs.push(fn() { return i }) }\nprint(fs[0](), fs[2]())"), "0 2\n");
  EXPECT_EQ(Output(
                "fn make() {\n"
                "  let n = 0\n"
                "  let inc = fn() { n = n + 1 }\n"
                "  let get = fn() { return n }\n"
                "  return [inc, get]\n"
                "}\n"
                "let p = make()\np[0]()\np[0]()\nprint(p[1]())"),
            "2\n");
  // Captured loop variables of a while loop body are fresh each iteration.
  EXPECT_EQ(Output(
                "let fs = []\nlet i = 0\n"
                "while i < 3 { let j = i\n fs.push(fn() { return j })\n i = i + 1 }\n"
                "print(fs[0](), fs[1](), fs[2]())"),
            "0 1 2\n");
}

TEST(Vm, BreakAndContinueLeaveTryAndScopesCleanly) {
  EXPECT_EQ(Output(
                "let out = []\n"
                "for i in range(10) {\n"
                "  let a = i * 2\n"
                "  try {\n"
                "    if i == 1 { continue }\n"
                "    if i == 4 { break }\n"
                "    out.push(a)\n"
                "  } catch e { out.push(\"caught\") }\n"
                "}\n"
                "try { throw error(\"after\", \"loop\") } catch e { out.push(e.kind) }\n"
                "print(out)"),
            "[0,4,6,\"after\"]\n");
}

TEST(Vm, ReturnFromInsideTryDropsTheHandler) {
  EXPECT_EQ(Output(
                "fn f() { try { return 1 } catch e { return 2 } }\n"
                "f()\n"
                "try { throw error(\"x\", \"y\") } catch e { print(\"outer\", e.kind) }"),
            "outer x\n");
}

TEST(Vm, UncaughtErrorHasKindMessageAndStackTrace) {
  auto r = RunProgram("fn inner() {\n  throw error(\"boom\", \"bad\", {n: 1})\n}\nfn outer() { inner() }\nouter()\n");
  EXPECT_EQ(r.outcome, RunOutcome::kFailed);
  EXPECT_NE(r.error.find("error: boom: bad"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("data: {\"n\":1}"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("at inner (test.flow:2)"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("at outer (test.flow:4)"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("at <script> (test.flow:5)"), std::string::npos) << r.error;
}

TEST(Vm, DeepRecursionIsACatchableErrorNotACrash) {
  auto r = RunProgram("fn down(n) { return down(n + 1) }\ntry { down(0) } catch e { print(e.kind) }");
  EXPECT_EQ(r.output, "stack_overflow\n");
}

// A task's stack grows on demand: an idle VM holds a few KiB, not the 16 MiB its deepest
// recursion may use; recursion still goes as deep as before, and past the limit (frames
// or values) it raises the same stack_overflow error.
struct DeepRun {
  RunOutcome outcome;
  std::string output;
  uint32_t idle_capacity;
  uint32_t final_capacity;
};
DeepRun RunDeep(const std::string& source) {
  Module module = testing::Compile(source);
  testing::CaptureHost host;
  VM vm(&module, &host, stdlib::GetNatives());
  vm.PrepareToRun();
  DeepRun r{RunOutcome::kFailed, "", vm.largest_stack_capacity(), 0};
  r.outcome = vm.Run();
  r.output = host.output;
  r.final_capacity = vm.largest_stack_capacity();
  return r;
}

TEST(Vm, StackGrowsOnDemandUpToTheSameLimit) {
  DeepRun idle = RunDeep("print(1)");
  EXPECT_EQ(idle.output, "1\n");
  EXPECT_LE(uint64_t{idle.final_capacity} * sizeof(Value), 64u * 1024) << "an idle task reserves little";

  // 90,000 frames deep (the frame limit is 100,000): the stack grows to hold them.
  DeepRun deep = RunDeep("fn down(n) { if n == 0 { return 0 }\n return down(n - 1) + 1 }\nprint(down(90000))");
  ASSERT_EQ(deep.outcome, RunOutcome::kCompleted);
  EXPECT_EQ(deep.output, "90000\n");
  EXPECT_GT(deep.final_capacity, 90'000u);
  EXPECT_GT(deep.final_capacity, deep.idle_capacity);
  EXPECT_LE(deep.final_capacity, VM::kStackCapacity);

  // Past the frame limit, and past the value limit (frames of 40 locals reach 1M values
  // before 100,000 frames): the same catchable error as with a reserved stack.
  const char* kCatch = "try { down(0) } catch e { print(e.kind, e.message.starts_with(\"call depth exceeded \")) }";
  DeepRun frames = RunDeep(std::string("fn down(n) { return down(n + 1) }\n") + kCatch);
  EXPECT_EQ(frames.output, "stack_overflow true\n");
  std::string locals;
  for (int i = 0; i < 40; ++i) locals += fmt::format("let v{} = n\n", i);
  DeepRun values = RunDeep("fn down(n) {\n" + locals + " return down(n + 1) }\n" + kCatch);
  EXPECT_EQ(values.output, "stack_overflow true\n");
  EXPECT_LE(values.final_capacity, VM::kStackCapacity);
  EXPECT_GT(values.final_capacity, VM::kStackCapacity / 2);
}

TEST(Vm, CollectorKeepsLongLoopsInBoundedMemory) {
  // Two million short-lived strings and lists: without collection all would stay live.
  auto r = RunProgram(
      "let keep = []\n"
      "for i in range(1000000) {\n"
      "  let s = \"item ${i}\"\n"
      "  let pair = [s, s]\n"
      "  if i % 100000 == 0 { keep.push(pair) }\n"
      "}\n"
      "print(len(keep), keep[9][0])\n");
  ASSERT_EQ(r.outcome, RunOutcome::kCompleted) << r.error;
  EXPECT_EQ(r.output, "10 item 900000\n");
  EXPECT_LT(r.live_objects, 250'000u);
}

TEST(Vm, CollectorKeepsWhatIsReachable) {
  auto r = RunProgram(
      "fn counter() { let c = {n: 0}\n return fn() { c.n = c.n + 1\n return c.n } }\n"
      "let f = counter()\n"
      "let junk = 0\n"
      "for i in range(300000) { junk = [i, \"x${i}\"] }\n"
      "print(f(), f(), junk[1])\n");
  EXPECT_EQ(r.output, "1 2 x299999\n") << r.error;
}

TEST(Vm, EqualityIsStructuralAndDepthLimited) {
  EXPECT_EQ(Output("print([1, {a: [2]}] == [1, {a: [2]}], {a: 1, b: 2} == {b: 2, a: 1}, [1] != [1.0])"),
            "true true false\n");
  EXPECT_EQ(ErrorKind("let a = []\na.push(a)\nlet b = []\nb.push(b)\nprint(a == b)"), "type\n");
  EXPECT_EQ(ErrorKind("let a = []\na.push(a)\nprint(a)"), "type\n");
}

TEST(Vm, BuiltinsAsValuesAndMapFunctions) {
  EXPECT_EQ(Output("let f = len\nlet m = {double: fn(x) { return x * 2 }}\nprint(f([1, 2]), m.double(21))"), "2 42\n");
  EXPECT_EQ(Output("let p = json.encode\nprint(p({a: 1}))"), "{\"a\":1}\n");
}

TEST(Vm, TypesAndConversions) {
  EXPECT_EQ(Output("print(type(1), type(1.5), type(\"s\"), type(null), type(true), type([]), type({}), type(print), "
                   "type(fn() {}), type(error(\"k\", \"m\")))"),
            "int float string null bool list map function function error\n");
  EXPECT_EQ(Output("print(int(\"42\"), int(3.9), int(-3.9), float(\"2.5\"), float(2), str(1.0), str(null))"),
            "42 3 -3 2.5 2.0 1.0 null\n");
  EXPECT_EQ(Output("print(range(3), range(2, 5), range(5, 0, -2), len(range(0)))"), "[0,1,2] [2,3,4] [5,3,1] 0\n");
}

TEST(ValueOps, FloatsAlwaysShowAsFloats) {
  EXPECT_EQ(FormatFloat(6.0), "6.0");
  EXPECT_EQ(FormatFloat(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatFloat(-0.5), "-0.5");
  EXPECT_EQ(FormatFloat(1e21), "1e+21");
  EXPECT_EQ(FormatFloat(1e300 * 1e10), "inf");
}

TEST(Json, ParsesIntoFlowValues) {
  EXPECT_EQ(Output("let v = json.parse(\"{\\\"a\\\": [1, 2.5, true, null], \\\"b\\\": {}}\")\n"
                   "print(v.a[0] + 1, v.a[1], v.a[2], v.b, json.encode(v))"),
            "2 2.5 true {} {\"a\":[1,2.5,true,null],\"b\":{}}\n");
  EXPECT_EQ(Output("print(json.parse(\"18446744073709551615\") > 1, type(json.parse(\"1.0\")))"), "true float\n");
}

TEST(Json, BadInputRaisesKindJson) {
  EXPECT_EQ(ErrorKind("json.parse(\"{bad\")"), "json\n");
  EXPECT_EQ(ErrorKind("json.parse(\"[1,]\")"), "json\n");
  auto r = RunProgram("let s = \"\"\nlet parts = []\nfor i in range(1000000) { parts.push(\"[\") }\n"
                      "try { json.parse(parts.join(\"\")) } catch e { print(e.kind, e.message) }");
  EXPECT_EQ(r.output.rfind("json ", 0), 0u) << r.output << r.error;
  EXPECT_NE(r.output.find("deeper than 512"), std::string::npos) << r.output;
}

TEST(Json, InvalidUtf8IsAJsonError) {
  Module module;
  Diagnostics diags;
  ASSERT_TRUE(CompileSource("t.flow", "print(1)", &module, &diags));
  testing::CaptureHost host;
  VM vm(&module, &host, stdlib::GetNatives());
  Value out;
  EXPECT_FALSE(stdlib::ParseJson(vm, "\"\xff\"", &out));
  EXPECT_TRUE(stdlib::ParseJson(vm, "\"\xc3\xa9\"", &out));
  EXPECT_EQ(vm.heap().StringOf(out), "\xc3\xa9");
}

TEST(Json, EncodeRefusesWhatJsonCannotHold) {
  EXPECT_EQ(ErrorKind("json.encode(print)"), "type\n");
  EXPECT_EQ(Output("print(json.encode(\"q\\\"\\\\\\n\\u0001\"))"), "\"q\\\"\\\\\\n\\u0001\"\n");
}

// Bytecode that ends a handler it never began (a stray *_END, as a damaged file could
// hold) raises `fatal` in the VM itself, never a crash, whatever the verifier lets through.
TEST(Vm, StrayHandlerEndRaisesFatal) {
  for (Op end : {Op::STEP_END, Op::RETRY_END, Op::TIMEOUT_END, Op::BREAKER_END}) {
    Module module;
    Diagnostics diags;
    ASSERT_TRUE(CompileSource("t.flow", "let a = 1\nlet b = 2\nprint(a == b)", &module, &diags));
    std::string& code = module.functions[0].code;
    bool patched = false;
    for (size_t pc = 0; pc < code.size(); pc += InstructionSize(static_cast<Op>(code[pc]))) {
      if (static_cast<Op>(code[pc]) == Op::EQ) {
        code[pc] = static_cast<char>(end);
        patched = true;
        break;
      }
    }
    ASSERT_TRUE(patched);
    testing::CaptureHost host;
    VM vm(&module, &host, stdlib::GetNatives());
    ASSERT_EQ(vm.Run(), RunOutcome::kFailed) << GetOpInfo(end).name;
    EXPECT_NE(vm.FormatUncaught().find("error: fatal: bytecode ends a handler that it did not begin"), std::string::npos)
        << vm.FormatUncaught();
  }
}

}  // namespace
}  // namespace flow
