// compiler/lexer.cc scans as ANTLR's lexer of grammar/FlowLexer.g4 does: on the corners of
// its rules (longest match, ties, modes, escapes, comments, bad characters, line breaks) and
// on every .flow file of the project. tests/fuzz/fuzz_lexer.cc does the same on any text.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "../fuzz/lexer_agreement.h"

namespace flow {
namespace {

TEST(Lexer, AgreesWithTheGrammarOnItsCorners) {
  const char* const kCases[] = {
      "", " ", "\n\n", "\r\n x", "let letter = fn_ + _1",
      "1 1_000 1__0 1_ 5ms 5m 5min 5mss 2d 2days 1.5 1. 1.x 1.5s 1e5 1e 1e+ 1e+5 1.5e 1.5e-3 1e5ms 07",
      "a==b!=c<=d>=e<f>g&&h||i??j+=1-=2*=3/=4!x=y+z-w*v/u%t",
      "& | ? $ # @ ` ~ ^ \\ é 😀 \t\f\v",
      "// comment\nx // trailing\r\ny", "/* block */ x /* a * b ** c */ y", "/* never closed * ", "/**/", "/*/ x",
      "\"plain\" \"a${b}c\" \"${ {a: 1} }\" \"$\" \"$$\" \"a$b\" \"${\"inner ${x}\"}\"",
      "\"\\n \\t \\\\ \\\" \\$ \\u0041 \\u{1F600} \\u{} \\u{zz \\u12 \\u12345 \\é\"",
      "\"unterminated\nnext", "\"ends with backslash \\", "\"cr\rlf", "\"open ${ x",
      "} } { { } \"s\" }", "{ \"${ } }\" }",
      "\"\\\n\"", "x\r\n\"a\r\n", "#! not a comment", "\xEF\xBB\xBF-x", "a\xEF\xBB\xBF",
  };
  for (const char* text : kCases) EXPECT_EQ(testing::LexerDisagreement(text), "") << text;
}

TEST(Lexer, AgreesWithTheGrammarOnEveryFlowFileOfTheProject) {
  size_t files = 0;
  for (const char* dir : {"tests", "examples", "bench", "stdlib"}) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(std::filesystem::path(FLOW_SOURCE_DIR) / dir)) {
      if (entry.path().extension() != ".flow") continue;
      std::ifstream in(entry.path(), std::ios::binary);
      std::stringstream text;
      text << in.rdbuf();
      EXPECT_EQ(testing::LexerDisagreement(text.str()), "") << entry.path();
      ++files;
    }
  }
  EXPECT_GT(files, 50u);
}

}  // namespace
}  // namespace flow
