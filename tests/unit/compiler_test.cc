#include <gtest/gtest.h>

#include "run_program.h"

namespace flow {
namespace {

std::string Errors(const std::string& source) { return testing::CompileErrors(source); }

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
  std::string listing = Disassemble(testing::Compile("let n = 5\nprint(n - 1, n < 2)\n"));
  EXPECT_NE(listing.find("SUB_K"), std::string::npos) << listing;
  EXPECT_NE(listing.find("LT_K"), std::string::npos) << listing;
}

TEST(Compiler, TwoLocalsInARowArePushedByOneInstruction) {
  std::string listing = Disassemble(testing::Compile("fn f(a, b) { return a * b + b }\nprint(f(3, 4))\n"));
  EXPECT_NE(listing.find("GET_LOCAL2    1 2"), std::string::npos) << listing;
  // The pushes keep their order; a local read right where another starts (`let a = b` then
  // `a - c`) and a push after a jump target (`x || y`) stay correct.
  auto r = testing::RunProgram(
      "fn f(a, b) { return a * b + b - a }\n"
      "fn g(b, c) { let a = b\n return a - c }\n"
      "fn h(x, y) { return (x || y) - y }\n"
      "fn k(n) { let m = n\n let p = m\n return [n, m, p, m - n, p * p] }\n"
      "print(f(3, 4), g(10, 3), h(null, 5), h(7, 5), k(6))\n");
  ASSERT_TRUE(r.compiled) << r.diagnostics;
  EXPECT_EQ(r.output, "13 7 0 2 [6,6,6,0,36]\n");
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

TEST(Compiler, ASumStoredIntoAGlobalIsOneInstruction) {
  std::string listing = Disassemble(testing::Compile("let s = 0\nlet x = 2\ns = s + x\nprint(s)\n"));
  EXPECT_NE(listing.find("ADD_SET_GLOBAL 1"), std::string::npos) << listing;
  // Every kind of sum; a failed one leaves the global as it was; a jump target right
  // before the store (`b && (x + y)`) keeps ADD and SET_GLOBAL apart.
  auto r = testing::RunProgram(
      "let s = 1\nlet x = 2\ns = s + x\nlet f = 0.5\nf = f + x\nlet t = \"a\"\nt = t + \"b\"\n"
      "let l = [1]\nl = l + [x]\nlet big = 9223372036854775807\n"
      "try { big = big + x } catch e { print(e.kind, big) }\n"
      "try { t = t + x } catch e { print(e.kind, t) }\n"
      "let b = false\nlet y = 3\nlet z = b && (x + y)\nb = true\nlet w = b && (x + y)\n"
      "print(s, f, t, l, z, w)\n");
  ASSERT_TRUE(r.compiled) << r.diagnostics;
  EXPECT_EQ(r.output, "arith 9223372036854775807\ntype ab\n3 2.5 ab [1,2] false 5\n") << r.error;
}

TEST(Comments, DoubleSlashAlwaysStartsAComment) {
  // Each of these was once read as floor division, or half as division and half as comment.
  auto r = testing::RunProgram(
      "#!/usr/bin/env -S flow run\n"
      "let a = 7\nlet b = 2\n"
      "let q = a // b\n"
      "let total = 10\n"
      "let avg = total // cuont\n"
      "print(q, avg) // done\n"
      "print(\"a // b\") /* a block\n comment */ print(9 // 4)\n"
      ")\n");
  ASSERT_TRUE(r.compiled) << r.diagnostics;
  EXPECT_EQ(r.output, "7 10\na // b\n9\n");
  std::string out = Errors("let a = 7\nprint(\"${a // 2}s\")\n");
  EXPECT_NE(out.find("t.flow:2:12: error: `//` starts a comment, which cannot stand inside `${...}`"), std::string::npos) << out;
}

// Python's `a // b; more` would silently be `a` with `; more` commented out: refused.
TEST(Comments, ACommentHidingCodeAfterASemicolonIsAnError) {
  const char* kHides = "error: `//` starts a comment to the end of the line, which hides the code after its `;`";
  for (std::string line : {"let q = a // b; print(q)", "let q = a // 2;", "let q = f(a) // b; print(q)",
                           "let q = [a][0] // b; q = 1", "print(\"x\") // b; print(q)", "let q = 7 // 2; print(q)"}) {
    std::string out = Errors("let a = 7\nlet b = 2\nfn f(x) { return x }\n" + line + "\n");
    EXPECT_NE(out.find(std::string("t.flow:4:") ), std::string::npos) << line << "\n" << out;
    EXPECT_NE(out.find(kHides), std::string::npos) << line << "\n" << out;
  }
  // A `;` in a comment that follows no value (a line of its own, after `{`, `=` or `,`),
  // or after prose that is no expression, hides nothing a reader would take for code.
  auto r = testing::RunProgram(
      "// a; b\n"
      "let a = 7 // seven\n"
      "let xs = [1, 2] // all, in order; the first\n"
      "xs = xs // see the docs; they say so\n"
      "if a > 1 { // big; really\n print(a)\n}\n"
      "let m = { // fields; two\n k: 1,\n}\n"
      "print(\"a // b; c\", m.k) /* x; y */\n");
  ASSERT_TRUE(r.compiled) << r.diagnostics;
  EXPECT_EQ(r.output, "7\na // b; c 1\n");
}

TEST(Comments, ShebangOnlyOnTheFirstLine) {
  EXPECT_NE(Errors("print(1)\n#!/bin/sh\n").find("t.flow:2:1: error: unexpected character `#`"), std::string::npos);
}

TEST(Comments, UnterminatedBlockCommentIsReportedWhereItStarts) {
  std::string out = Errors("print(1)\n  /* never closed\nprint(2)\n");
  EXPECT_NE(out.find("t.flow:2:3: error: unterminated comment"), std::string::npos) << out;
  EXPECT_EQ(out.find("unexpected"), std::string::npos) << out;
  auto r = testing::RunProgram("/* closed ** */ print(1) /**/ /* * / */ print(2) /* last */");
  ASSERT_TRUE(r.compiled) << r.diagnostics;
  EXPECT_EQ(r.output, "1\n2\n");
}

TEST(MathDiv, FlooredIntegerDivision) {
  auto r = testing::RunProgram(
      "print(math.div(7, 2), math.div(-7, 2), math.div(7, -2), math.div(-7, -2), math.div(6, 3))\n"
      "let x = -9223372036854775807 - 1\n"
      "print(math.div(x, 1), math.div(x, 2))\n"
      "for args in [[1, 0], [x, -1], [7.0, 2], [\"7\", 2]] {\n"
      "  try { math.div(args[0], args[1]) } catch e { print(e.kind, e.message) }\n"
      "}\n");
  ASSERT_TRUE(r.compiled) << r.diagnostics;
  EXPECT_EQ(r.output,
            "3 -4 -4 3 2\n"
            "-9223372036854775808 -4611686018427387904\n"
            "arith division by zero\n"
            "arith integer overflow in math.div(-9223372036854775808, -1)\n"
            "type math.div() takes ints, not float (use math.floor(a / b) for floats)\n"
            "type math.div() takes ints, not string (use math.floor(a / b) for floats)\n");
}

TEST(Hoisting, TopLevelFunctionsCanBeCalledBeforeTheirDeclaration) {
  auto r = testing::RunProgram(
      "print(twice(4))\n"
      "let handlers = [twice]\n"
      "print(handlers[0](5), quad(1))\n"
      "fn twice(x) { return x * 2 }\n"
      "fn quad(x) { return twice(twice(x)) }\n");
  ASSERT_TRUE(r.compiled) << r.diagnostics;
  EXPECT_EQ(r.output, "8\n10 4\n");
}

TEST(Hoisting, ReadingALetBeforeItRunsIsACompileErrorNamingIt) {
  // Directly, through a chain of functions, and through a function value.
  std::string out = Errors("print(show())\nlet limit = 21\nfn show() { return limit * 2 }\n");
  EXPECT_NE(out.find("t.flow:1:7: error: `show` reads `limit` before `limit` is assigned (its `let` is at line 2)"),
            std::string::npos) << out;
  out = Errors("fn a() { return b() }\nfn b() { return limit }\nlet x = a()\nlet limit = 1\n");
  EXPECT_NE(out.find("t.flow:3:9: error: `a` reads `limit` (through `b`) before `limit` is assigned (its `let` is at line 4)"),
            std::string::npos) << out;
  out = Errors("let fs = [show]\nlet limit = 1\nfn show() { return limit }\n");
  EXPECT_NE(out.find("t.flow:1:11: error: `show` reads `limit`"), std::string::npos) << out;
  out = Errors("fn f() { return x }\nlet x = f()\n");
  EXPECT_NE(out.find("`f` reads `x` before `x` is assigned (its `let` is at line 2)"), std::string::npos) << out;
  out = Errors("fn f() { x = 1 }\nprint(x)\nlet x = 0\n");
  EXPECT_NE(out.find("t.flow:2:7: error: `x` is used before it is assigned (its `let` is at line 3)"), std::string::npos) << out;
  out = Errors("let h = fn() { return cfg }\nprint(h())\nlet cfg = 1\n");
  EXPECT_NE(out.find("t.flow:2:7: error: `h` reads `cfg` before `cfg` is assigned (its `let` is at line 3)"),
            std::string::npos) << out;
  // A function counts what its nested functions read, as Go counts references.
  out = Errors("fn make() { return fn() { return later } }\nlet get = make()\nlet later = 1\n");
  EXPECT_NE(out.find("`make` reads `later` before"), std::string::npos) << out;
  out = Errors("print([1].map(fn(v) { return cfg }))\nlet cfg = 1\n");
  EXPECT_NE(out.find("`cfg` is used before it is assigned (its `let` is at line 2)"), std::string::npos) << out;
}

TEST(Hoisting, FunctionsMayReadLetsThatRunBeforeTheyAreCalled) {
  auto r = testing::RunProgram(
      "let get = fn() { return later }\n"  // defined before `later`, called after it
      "let later = \"ok\"\n"
      "let fact = fn(n) { if n < 2 { return 1 } return n * fact(n - 1) }\n"
      "print(get(), fact(5), show())\n"
      "fn show() { return later }\n");
  ASSERT_TRUE(r.compiled) << r.diagnostics;
  EXPECT_EQ(r.output, "ok 120 ok\n");
}

// A chain of `n` terms joined by `op`.
std::string Chain(const std::string& first, const std::string& op, int n) {
  std::string s = first;
  s.reserve(n * (op.size() + first.size()));
  for (int i = 1; i < n; ++i) s += op;
  return s;
}

TEST(Diagnostics, FlatChainsTooDeepAreRefusedNotACrash) {
  const char* kTooDeep = "expression nesting too deep";
  for (int n : {900, 20000, 100000}) {
    SCOPED_TRACE(n);
    bool refused = n > 1000;
    for (std::string src : {"let x = " + Chain("1", " + 1", n), "let x = " + Chain("true", " && true", n),
                            "let x = " + Chain("\"a\"", " + \"a\"", n), "let m = {}\nprint(m" + Chain("", ".a", n + 1) + ")",
                            "let m = [0]\nprint(m" + Chain("", "[0]", n + 1) + ")",
                            "fn f() { return f }\nf" + Chain("", "()", n + 1),
                            "print(\" a \"" + Chain("", ".trim()", n + 1) + ")"}) {
      Module module;
      Diagnostics diags;
      bool ok = CompileSource("t.flow", src, &module, &diags);
      std::string out = diags.Render("t.flow", src);
      if (refused) {
        EXPECT_FALSE(ok);
        EXPECT_NE(out.find(kTooDeep), std::string::npos) << out.substr(0, 300);
        EXPECT_LT(out.size(), 2000u);
      } else {
        EXPECT_TRUE(ok) << out.substr(0, 300);
      }
    }
  }
}

TEST(Compiler, LongElseIfChainsCompileAndRun) {
  std::string src = "let x = 7777\nif x == 0 { print(0) }";
  for (int i = 1; i < 20000; ++i) src += " else if x == " + std::to_string(i) + " { print(" + std::to_string(i) + ") }";
  src += " else { print(-1) }\n";
  auto r = testing::RunProgram(src);
  ASSERT_TRUE(r.compiled) << r.diagnostics.substr(0, 300);
  EXPECT_EQ(r.output, "7777\n");
  auto r2 = testing::RunProgram("if false { print(1) } else if false { print(2) }\nif 1 == 1 { print(3) } else { print(4) }\n");
  EXPECT_EQ(r2.output, "3\n");
}

TEST(Diagnostics, AHugeLineIsQuotedAroundTheColumnOnly) {
  std::string src = "let x = \"" + std::string(10'000'000, 'a') + "\n";
  std::string out = Errors(src);
  EXPECT_NE(out.find("t.flow:1:9: error: unterminated string"), std::string::npos) << out.substr(0, 300);
  EXPECT_LT(out.size(), 1000u) << out.substr(0, 300);
  std::string src2 = std::string(5000, ' ') + "let y = 1 + * 2\n";
  out = Errors(src2);
  EXPECT_NE(out.find("t.flow:1:5013: error: unexpected `*`"), std::string::npos) << out;
  // The caret still stands under the column in the window shown.
  size_t quote = out.find("\n  ") + 3;
  size_t caret_line = out.find('\n', quote) + 1;
  size_t star = out.find('*', quote) - quote;
  EXPECT_EQ(out.substr(caret_line, 2 + star + 1), std::string(2 + star, ' ') + "^") << out;
  EXPECT_LT(out.size(), 400u) << out;
}

// Messages that quote source text (a name, an escape) are cut in the middle, keeping both
// ends: a megabyte-long name gave 2 MB of errors.
TEST(Diagnostics, AHugeNameOrEscapeIsQuotedInPartOnly) {
  std::string name = "a" + std::string(1'000'000, 'x') + "_end";
  for (std::string src : {name + " = 1\n", "print(" + name + ")\n", "let x = \"\\u{" + std::string(100'000, 'f') + "}\"\n"}) {
    std::string out = Errors(src);
    SCOPED_TRACE(out.substr(0, 300));
    EXPECT_EQ(out.rfind("t.flow:1:", 0), 0u);
    EXPECT_LT(out.size(), 1000u);
  }
  std::string out = Errors("print(" + name + ")\n");
  EXPECT_NE(out.find("error: undefined name `axxx"), std::string::npos) << out.substr(0, 400);
  EXPECT_NE(out.find("xxx...xxx"), std::string::npos) << out.substr(0, 400);
  EXPECT_NE(out.find("x_end`"), std::string::npos) << out.substr(0, 400);
}

}  // namespace
}  // namespace flow
