// The compiler's side of tasks (issue 10): `spawn`, `await`, `parallel for` and the
// `tasks` module, checked in the code they compile to (the disassembly) and in their
// errors. Running them needs the scheduler; its tests are the VM's.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "run_program.h"
#include "vm/bytecode/module.h"

namespace flow {
namespace {

std::string Errors(const std::string& source) { return testing::CompileErrors(source); }

// The instructions of the first function named `name` in the module's listing, each as
// "OPCODE operands ; note" with the offset and line columns left out.
std::vector<std::string> Instructions(const Module& module, const std::string& name) {
  std::istringstream listing(Disassemble(module));
  std::vector<std::string> out;
  std::string line;
  bool inside = false;
  while (std::getline(listing, line)) {
    if (line.rfind("function #", 0) == 0) {
      if (inside) break;
      std::istringstream head(line);
      std::string word, index, fn_name;
      head >> word >> index >> fn_name;
      inside = fn_name == name;
      continue;
    }
    if (!inside || line.empty()) continue;
    std::istringstream fields(line);
    std::string pc, line_column, word, text;
    fields >> pc >> line_column;
    while (fields >> word) text += (text.empty() ? "" : " ") + word;
    out.push_back(text);
  }
  return out;
}

// Whether `want` occurs in `have` as consecutive instructions.
bool Contains(const std::vector<std::string>& have, const std::vector<std::string>& want) {
  if (want.size() > have.size()) return false;
  for (size_t i = 0; i + want.size() <= have.size(); ++i)
    if (std::equal(want.begin(), want.end(), have.begin() + static_cast<long>(i))) return true;
  return false;
}

std::string Show(const std::vector<std::string>& code) {
  std::string out;
  for (const auto& s : code) out += s + "\n";
  return out;
}

TEST(TasksCompile, SpawnIsAClosureOfTheBlockStartedAsATask) {
  Module m = testing::Compile("let t = spawn { let a = 1\n a + 2 }\n");
  auto script = Instructions(m, "<script>");
  EXPECT_TRUE(Contains(script, {"CLOSURE 1 ; <fn spawn>", "SPAWN", "SET_GLOBAL 1 ; t"})) << Show(script);
  EXPECT_EQ(m.functions[1].name, "spawn");
  EXPECT_EQ(m.functions[1].arity, 0);
  // The block's value is the task's: its last expression, returned.
  auto body = Instructions(m, "spawn");
  EXPECT_EQ(body.back(), "RETURN") << Show(body);
  EXPECT_EQ(body[body.size() - 2], "ADD_K 1 ; 2") << Show(body);
}

TEST(TasksCompile, SpawnBlockWithoutAFinalExpressionIsNullAndMayReturn) {
  Module m = testing::Compile("let t = spawn { let a = 1 }\nlet u = spawn { if true { return 7 }\n 8 }\n");
  auto first = Instructions(m, "spawn");
  ASSERT_GE(first.size(), 2u);
  EXPECT_EQ(first[first.size() - 2], "PUSH_NULL") << Show(first);
  EXPECT_EQ(m.functions[2].name, "spawn");
  Module only_return = testing::Compile("let t = spawn { return 7 }\n");
  EXPECT_TRUE(Contains(Instructions(only_return, "spawn"), {"CONST 0 ; 7", "RETURN"}));
}

TEST(TasksCompile, SpawnCapturesEachIterationsVariableByReference) {
  Module m = testing::Compile("let ts = []\nfor x in [1, 2] { ts.push(spawn { x * 2 }) }\n");
  auto body = Instructions(m, "spawn");
  EXPECT_EQ(body.front(), "GET_UPVAL 0") << Show(body);
  ASSERT_EQ(m.functions[1].upvalues.size(), 1u);
  EXPECT_TRUE(m.functions[1].upvalues[0].from_parent_local);
  // The loop closes the captured variable at the end of each iteration: a fresh one each time.
  auto script = Instructions(m, "<script>");
  EXPECT_NE(Show(script).find("CLOSE_FROM 3 ; x"), std::string::npos) << Show(script);
}

TEST(TasksCompile, AwaitIsAPrefixOperatorAtUnaryPrecedence) {
  Module m = testing::Compile(
      "let t = spawn { 1 }\n"
      "print(await t + 1)\n"
      "let all = await [t, t]\n"
      "fn f(y) { return y }\n"
      "let x = await f(t)\n");
  auto script = Instructions(m, "<script>");
  // `await t + 1` is `(await t) + 1`.
  EXPECT_TRUE(Contains(script, {"GET_GLOBAL 2 ; t", "AWAIT", "ADD_K 0 ; 1", "CALL_BUILTIN 0 1 ; print"})) << Show(script);
  EXPECT_TRUE(Contains(script, {"BUILD_LIST 2", "AWAIT", "SET_GLOBAL 3 ; all"})) << Show(script);
  // `await f(t)` awaits the call's result.
  EXPECT_TRUE(Contains(script, {"CALL 1", "AWAIT", "SET_GLOBAL 4 ; x"})) << Show(script);
}

TEST(TasksCompile, ParallelForPushesBodyListOptionsAndStateThenParallel) {
  Module m = testing::Compile(
      "let xs = [1, 2]\n"
      "let r = parallel (limit: 3, settle: true) for i, x in xs { i + x }\n");
  auto script = Instructions(m, "<script>");
  EXPECT_TRUE(Contains(script, {"CLOSURE 1 ; <fn parallel>", "GET_GLOBAL 1 ; xs", "CONST 2 ; \"limit\"",
                                "CONST 3 ; 3", "CONST 4 ; \"settle\"", "PUSH_TRUE", "BUILD_MAP 2", "PUSH_NULL",
                                "PARALLEL 0", "SET_GLOBAL 2 ; r"}))
      << Show(script);
  const Function& body = m.functions[1];
  EXPECT_EQ(body.name, "parallel");
  EXPECT_EQ(body.arity, 2);
  auto code = Instructions(m, "parallel");
  EXPECT_TRUE(Contains(code, {"GET_LOCAL2 1 2 ; i x", "ADD", "RETURN"})) << Show(code);
}

TEST(TasksCompile, ParallelForWithoutOptionsOrIndexHidesTheIndex) {
  Module m = testing::Compile("parallel for x in [1, 2] { print(x) }\nlet y = 1\n");
  auto script = Instructions(m, "<script>");
  // No options: null; then the state slot; the statement drops the list of results.
  EXPECT_TRUE(Contains(script, {"BUILD_LIST 2", "PUSH_NULL", "PUSH_NULL", "PARALLEL 0", "POP"})) << Show(script);
  const Function& body = m.functions[1];
  EXPECT_EQ(body.arity, 2);
  // The index parameter has no name a program or a debugger shows; the item is slot 2.
  ASSERT_EQ(body.locals.size(), 1u);
  EXPECT_EQ(body.locals[0].name, "x");
  EXPECT_EQ(body.locals[0].slot, 2);
}

TEST(TasksCompile, ParallelForIsAnExpressionAnywhere) {
  Module m = testing::Compile(
      "fn g(xs) {\n"
      "  try { return len(parallel (limit: 2) for x in xs { x }) } catch e { return e.data.index }\n"
      "}\n"
      "print([parallel for x in [1] { step \"k\" { x } }])\n");
  EXPECT_EQ(m.functions.size(), 4u);  // script, g, and a body for each parallel for
}

TEST(TasksCompile, BreakOrContinueCannotLeaveATaskBody) {
  std::string out = Errors(
      "for x in [1] {\n"
      "  let t = spawn { break }\n"
      "}\n"
      "while true {\n"
      "  parallel for y in [1] { continue }\n"
      "  break\n"
      "}\n");
  EXPECT_NE(out.find("t.flow:2:19: error: `break` cannot leave a `spawn` block"), std::string::npos) << out;
  EXPECT_NE(out.find("t.flow:5:27: error: `continue` cannot leave a `parallel for` block"), std::string::npos) << out;
  EXPECT_NE(out.find("2 errors"), std::string::npos) << out;
  // A loop inside the block is the block's own.
  testing::Compile("let t = spawn { for x in [1] { break } }\nparallel for y in [1] { while true { break } }\n");
}

TEST(TasksCompile, ParallelForSyntaxErrors) {
  // A missing `in` is named (ANTLR's message lists a set of tokens; a few literal ones are kept).
  EXPECT_NE(Errors("parallel for x [1, 2] { x }\n").find("t.flow:1:16: error: unexpected `[`, expected 'in' or ','"),
            std::string::npos)
      << Errors("parallel for x [1, 2] { x }\n");
  EXPECT_NE(Errors("for x [1] { }\n").find("t.flow:1:7: error: unexpected `[`, expected 'in' or ','"), std::string::npos);
  EXPECT_NE(Errors("parallel (limit 3) for x in [1] { x }\n").find("t.flow:1:17: error: missing ':' before `3`"),
            std::string::npos);
  EXPECT_NE(Errors("parallel () for x in [1] { x }\n").find("t.flow:1:11: error: unexpected `)`"), std::string::npos);
  EXPECT_NE(Errors("parallel (limit: 2) [1] { x }\n").find("t.flow:1:21: error: unexpected `[`, expected 'for'"),
            std::string::npos);
  std::string out = Errors("parallel (limt: 3, limit: 1, limit: 2) for x in [1] { x }\n");
  EXPECT_NE(out.find("t.flow:1:11: error: unknown parallel option `limt` (limit, settle)"), std::string::npos) << out;
  EXPECT_NE(out.find("t.flow:1:30: error: parallel option `limit` given twice"), std::string::npos) << out;
  EXPECT_NE(Errors("parallel for i, i in [1] { i }\n").find("duplicate parameter `i`"), std::string::npos);
  EXPECT_NE(Errors("let t = spawn 1\n").find("missing '{' before `1`"), std::string::npos);
  EXPECT_NE(Errors("let x = await\n").find("unexpected end of file"), std::string::npos);
}

TEST(TasksCompile, LongRunsOfAwaitAreRefusedNotACrash) {
  std::string awaits;
  for (int i = 0; i < 100000; ++i) awaits += "await ";
  EXPECT_NE(Errors("let x = " + awaits + "1\n").find("nesting deeper than"), std::string::npos);
  testing::Compile("let t = spawn { spawn { 1 } }\nprint(await await t)\n");
}

TEST(TasksCompile, TasksModuleResolvesLikeOtherModules) {
  Module m = testing::Compile("let t = spawn { 1 }\nprint(tasks.race([t]), tasks.settle([t]))\nlet f = tasks.race\n");
  auto script = Instructions(m, "<script>");
  std::string listing = Show(script);
  EXPECT_NE(listing.find("; tasks.race"), std::string::npos) << listing;
  EXPECT_NE(listing.find("; tasks.settle"), std::string::npos) << listing;
  EXPECT_TRUE(Contains(script, {"GET_BUILTIN " + std::to_string(FindBuiltin("tasks.race")) + " ; tasks.race",
                                "SET_GLOBAL 2 ; f"}))
      << listing;
  std::string out = Errors("let t = tasks\ntasks.foo([])\ntasks.race(1, 2)\n");
  EXPECT_NE(out.find("t.flow:1:9: error: `tasks` is a module"), std::string::npos) << out;
  EXPECT_NE(out.find("t.flow:2:7: error: unknown function `tasks.foo`"), std::string::npos) << out;
  EXPECT_NE(out.find("t.flow:3:7: error: `tasks.race` takes 1 argument, got 2"), std::string::npos) << out;
}

TEST(TasksCompile, CancelAndDoneAreOrdinaryMethodCalls) {
  Module m = testing::Compile("let t = spawn { 1 }\nt.cancel()\nprint(t.done())\n");
  std::string listing = Show(Instructions(m, "<script>"));
  EXPECT_NE(listing.find("INVOKE 1 0 ; \"cancel\""), std::string::npos) << listing;
  EXPECT_NE(listing.find("; \"done\""), std::string::npos) << listing;
}

TEST(TasksCompile, TaskCodeRoundTripsThroughTheFileFormatAndItsVerifier) {
  Module m = testing::Compile(
      "let ts = []\nfor x in [1, 2] { ts.push(spawn { x }) }\n"
      "let r = parallel (limit: 2) for i, t in ts { try { await t } catch e { i } }\n"
      "print(await ts, tasks.settle(ts))\n");
  auto loaded = DeserializeModule(SerializeModule(m));
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(Disassemble(*loaded), Disassemble(m));
}

TEST(TasksCompile, NewKeywordsStayUsableAsKeysFieldsAndMethodNames) {
  auto r = testing::RunProgram(
      "let m = {spawn: 1, await: 2, parallel: 3}\n"
      "m.spawn = m.spawn + 10\n"
      "print(m.spawn, m.await, m[\"parallel\"], {spawn: 1}.spawn)\n");
  ASSERT_TRUE(r.compiled) << r.diagnostics;
  EXPECT_EQ(r.output, "11 2 3 1\n");
  testing::Compile("let o = {}\nfn f(x) { return x.spawn().await(x.parallel) }\nretry (attempts: 1) { 1 }\n");
}

}  // namespace
}  // namespace flow
