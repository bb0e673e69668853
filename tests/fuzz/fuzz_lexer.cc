// libFuzzer target: compiler/lexer.cc against ANTLR's lexer of grammar/FlowLexer.g4, on
// any valid UTF-8 text: the same tokens, types, channels, positions and texts, or abort.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "lexer_agreement.h"
#include "vm/base/utf8.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (flow::FindInvalidUtf8(text) != std::string_view::npos) return 0;  // refused before scanning
  std::string difference = flow::testing::LexerDisagreement(text);
  if (!difference.empty()) {
    std::fprintf(stderr, "the scanner and FlowLexer.g4 disagree: %s\n", difference.c_str());
    std::abort();
  }
  return 0;
}
