#include <gtest/gtest.h>

#include "compiler/comment_heuristic.h"
#include "run_program.h"

namespace flow {
namespace {

std::string Errors(const std::string& source) {
  Module module;
  Diagnostics diags;
  EXPECT_FALSE(CompileSource("t.flow", source, &module, &diags));
  return diags.Render("t.flow", source);
}

TEST(Diagnostics, SyntaxErrorHasLocationSourceLineAndCaret) {
  std::string out = Errors("print(1)\nlet x = 1 + * 2\n");
  EXPECT_NE(out.find("t.flow:2:13: error: unexpected `*`"), std::string::npos) << out;
  EXPECT_NE(out.find("  let x = 1 + * 2\n              ^\n"), std::string::npos) << out;
}

TEST(Diagnostics, CollectsSeveralCheckErrorsWithoutCascades) {
  std::string out = Errors(
      "fn f(a, a) { return a }\n"
      "break\n"
      "return 1\n"
      "y = 2\n"
      "print(nope)\n"
      "while true { fn g() { continue } }\n");
  EXPECT_NE(out.find("t.flow:1:9: error: duplicate parameter `a`"), std::string::npos) << out;
  EXPECT_NE(out.find("t.flow:2:1: error: `break` outside a loop"), std::string::npos) << out;
  EXPECT_NE(out.find("t.flow:3:1: error: `return` outside a function"), std::string::npos) << out;
  EXPECT_NE(out.find("t.flow:4:1: error: assignment to undeclared name `y`"), std::string::npos) << out;
  EXPECT_NE(out.find("t.flow:5:7: error: undefined name `nope`"), std::string::npos) << out;
  EXPECT_NE(out.find("t.flow:6:23: error: `continue` outside a loop"), std::string::npos) << out;
  EXPECT_NE(out.find("6 errors"), std::string::npos) << out;
}

TEST(Diagnostics, OneSyntaxErrorPerLine) {
  std::string out = Errors("let x = ) ) ) )\n");
  EXPECT_EQ(out.find("t.flow:1:11"), std::string::npos) << out;
}

TEST(Diagnostics, BuiltinArityAndUnknownModuleFunction) {
  std::string out = Errors("len(1, 2)\njson.nope(1)\nlet j = json\n");
  EXPECT_NE(out.find("`len` takes 1 argument, got 2"), std::string::npos) << out;
  EXPECT_NE(out.find("unknown function `json.nope`"), std::string::npos) << out;
  EXPECT_NE(out.find("`json` is a module"), std::string::npos) << out;
}

TEST(Diagnostics, UnterminatedStringDoesNotSwallowTheRest) {
  std::string out = Errors("let s = \"abc\nprint(zz)\n");
  EXPECT_NE(out.find("t.flow:1:"), std::string::npos) << out;
  EXPECT_NE(out.find("unterminated string"), std::string::npos) << out;
  EXPECT_EQ(out.find("t.flow:2:"), std::string::npos) << out;
}

TEST(Diagnostics, InvalidUtf8IsReportedWhereItStands) {
  std::string out = Errors("print(1)\nlet s = \"caf\xc3\xa9 \xff\"\n");
  EXPECT_NE(out.find("t.flow:2:15: error: invalid UTF-8"), std::string::npos) << out;
  EXPECT_NE(Errors("let s = \"\xed\xa0\x80\"").find("invalid UTF-8"), std::string::npos);  // a surrogate
}

TEST(Diagnostics, DeepNestingIsRefusedNotACrash) {
  std::string deep(100000, '(');
  std::string out = Errors("let x = " + deep + "1\n");
  EXPECT_NE(out.find("nesting deeper than"), std::string::npos) << out;
  std::string negs(100000, '-');
  out = Errors("let y = " + negs + "1\n");
  EXPECT_NE(out.find("nesting deeper than"), std::string::npos) << out;
}

TEST(Compiler, MutualRecursionInAnyOrder) {
  auto r = testing::RunProgram(
      "fn is_even(n) { if n == 0 { return true } return is_odd(n - 1) }\n"
      "fn is_odd(n) { if n == 0 { return false } return is_even(n - 1) }\n"
      "print(is_even(10), is_odd(7))\n"
      "fn outer() {\n"
      "  fn a(n) { if n == 0 { return \"a\" } return b(n - 1) }\n"
      "  fn b(n) { if n == 0 { return \"b\" } return a(n - 1) }\n"
      "  return a(3)\n"
      "}\n"
      "print(outer())\n");
  ASSERT_TRUE(r.compiled) << r.diagnostics;
  EXPECT_EQ(r.output, "true true\nb\n");
}

TEST(Compiler, FunctionsSeeGlobalsDeclaredAfterThem) {
  auto r = testing::RunProgram("fn show() { return limit * 2 }\nlet limit = 21\nprint(show())\n");
  ASSERT_TRUE(r.compiled) << r.diagnostics;
  EXPECT_EQ(r.output, "42\n");
}

TEST(Compiler, TopLevelCodeCannotUseALaterLet) {
  EXPECT_NE(Errors("print(later)\nlet later = 1\n").find("undefined name `later`"), std::string::npos);
}

TEST(Compiler, ConstantOperandsFoldIntoKForms) {
  Module module;
  Diagnostics diags;
  ASSERT_TRUE(CompileSource("t.flow", "let n = 5\nprint(n - 1, n < 2)\n", &module, &diags));
  std::string listing = Disassemble(module);
  EXPECT_NE(listing.find("SUB_K"), std::string::npos) << listing;
  EXPECT_NE(listing.find("LT_K"), std::string::npos) << listing;
}

TEST(Compiler, NoFoldAcrossAJumpTarget) {
  // `b && 5` leaves a jump target right before the `+`: folding would break it.
  auto r = testing::RunProgram("let b = false\nprint(1 + (b && 5))\n");
  ASSERT_TRUE(r.compiled) << r.diagnostics;
  EXPECT_EQ(r.outcome, RunOutcome::kFailed);
  EXPECT_NE(r.error.find("type"), std::string::npos);
  auto r2 = testing::RunProgram("let b = true\nprint(1 + (b && 5))\n");
  EXPECT_EQ(r2.output, "6\n");
}

TEST(CommentHeuristic, FloorDivisionVersusTrailingComment) {
  auto r = testing::RunProgram(
      "let a = 7 // 2\n"
      "let b = -7 // 2\n"
      "let c = a  // two spaces: a comment\n"
      "let d = b // the rest reads as prose\n"
      "print(a, b, c, d) // done\n"
      "// a whole-line comment\n"
      "/* a block\n comment */ print(9 // 4)\n");
  ASSERT_TRUE(r.compiled) << r.diagnostics;
  EXPECT_EQ(r.output, "3 -4 3 -4\n2\n");
  auto r2 = testing::RunProgram(
      "let total = 17\nlet count = 5\n"
      "let avg = total // count\n"
      "print(avg) // TODO: round instead\n"
      "print(total // count, total) // don't\n");
  ASSERT_TRUE(r2.compiled) << r2.diagnostics;
  EXPECT_EQ(r2.output, "3\n3 17\n");
  EXPECT_TRUE(RestLooksLikeProse(" see the docs"));
  EXPECT_TRUE(RestLooksLikeProse(" TODO: later"));
  EXPECT_TRUE(RestLooksLikeProse(" why?"));
  EXPECT_FALSE(RestLooksLikeProse(" 2, -7 // 2)"));
  EXPECT_FALSE(RestLooksLikeProse(" b } catch e { print(e) }"));
}

}  // namespace
}  // namespace flow
