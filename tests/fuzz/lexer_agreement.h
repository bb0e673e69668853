// Does compiler/lexer.cc scan a text as ANTLR's lexer generated from grammar/FlowLexer.g4
// does? Both token streams, compared field by field: for tests/fuzz/fuzz_lexer.cc and the
// unit tests (which run it over every .flow file of the project).
#pragma once
#include <fmt/format.h>

#include <string>
#include <string_view>

#include "FlowLexer.h"
#include "antlr4-runtime.h"
#include "compiler/lexer.h"

namespace flow::testing {

// "" when they agree; else the first difference. `source` must be valid UTF-8 (the
// compiler refuses anything else before it scans).
inline std::string LexerDisagreement(std::string_view source) {
  antlr4::ANTLRInputStream reference_input(source.data(), source.size());
  FlowLexer reference(&reference_input);
  reference.removeErrorListeners();
  antlr4::ANTLRInputStream input(source.data(), source.size());
  FlowTokenSource scanner(source, &input);
  for (size_t n = 0;; ++n) {
    std::unique_ptr<antlr4::Token> want = reference.nextToken();
    std::unique_ptr<antlr4::Token> got = scanner.nextToken();
    auto show = [](const antlr4::Token& t) {
      return fmt::format("type {} channel {} at {}:{} [{}..{}] `{}`", t.getType(), t.getChannel(), t.getLine(),
                         t.getCharPositionInLine(), t.getStartIndex(), t.getStopIndex(), t.getText());
    };
    if (want->getType() != got->getType() || want->getChannel() != got->getChannel() ||
        want->getLine() != got->getLine() || want->getCharPositionInLine() != got->getCharPositionInLine() ||
        want->getStartIndex() != got->getStartIndex() || want->getStopIndex() != got->getStopIndex() ||
        want->getText() != got->getText())
      return fmt::format("token {}: ANTLR {}, scanner {}", n, show(*want), show(*got));
    if (want->getType() == antlr4::Token::EOF) return "";
  }
}

}  // namespace flow::testing
