// The tokens of grammar/FlowLexer.g4, scanned by hand: ANTLR's generated lexer (an ATN
// simulation per character) was a fifth of a compile. FlowLexer.g4 stays what the parser is
// generated from and what the token types are (FlowLexer::LET...); this scanner follows its
// rules exactly (longest match, the first rule on a tie, its modes), and
// tests/fuzz/fuzz_lexer.cc with tests/unit/compiler_test.cc check that the two agree on any
// input. Like parse.cc, internal to the compiler: it speaks ANTLR.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "antlr4-runtime.h"

namespace flow {

class FlowTokenSource : public antlr4::TokenSource {
 public:
  // `source` is valid UTF-8 (parse.cc checks it first); `input` is the same text as ANTLR
  // reads it, which tokens name as their stream (ANTLR's error recovery asks for it).
  FlowTokenSource(std::string_view source, antlr4::CharStream* input);

  std::unique_ptr<antlr4::Token> nextToken() override;
  size_t getLine() const override { return line_; }
  size_t getCharPositionInLine() override { return column_; }
  antlr4::CharStream* getInputStream() override { return input_; }
  std::string getSourceName() override { return input_->getSourceName(); }
  antlr4::TokenFactory<antlr4::CommonToken>* getTokenFactory() override { return antlr4::CommonTokenFactory::DEFAULT.get(); }

 private:
  enum Mode { kDefault, kString };

  // The next token's type and end (bytes), or 0 for text that makes none (white space, a
  // closed block comment), from at_ in the current mode.
  size_t ScanDefault(size_t* end);
  size_t ScanString(size_t* end);
  size_t ScanNumber(size_t* end);
  size_t ScanEscape();
  // Moves past [at_, end): lines, columns and code point indexes.
  void Advance(size_t end);

  std::string_view src_;
  antlr4::CharStream* input_;
  size_t at_ = 0;          // bytes into src_
  size_t index_ = 0;       // code points into src_ (a token's start and stop)
  size_t line_ = 1;
  size_t column_ = 0;      // code points into the line
  Mode mode_ = kDefault;
  std::vector<Mode> modes_;  // pushed modes
};

}  // namespace flow
