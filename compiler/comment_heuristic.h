// Decides whether the text after a `//` that follows an operand is prose (a comment) or the
// right-hand side of a floor division. Included by the generated lexer; see FlowLexer.g4.
#pragma once
#include <cctype>
#include <string>
#include <string_view>

namespace flow {

inline bool IsFlowKeyword(std::string_view w) {
  static constexpr std::string_view kKeywords[] = {
      "let", "fn", "if", "else", "while", "for", "in", "break", "continue", "return", "throw",
      "try", "catch", "true", "false", "null", "step", "once", "retry", "timeout", "breaker"};
  for (auto k : kKeywords)
    if (k == w) return true;
  return false;
}

// True when `rest` holds two plain words separated only by blanks ("see the docs"): no
// expression of Flow puts two names side by side.
inline bool RestLooksLikeProse(const std::string& rest) {
  std::string previous;
  size_t i = 0;
  bool previous_adjacent = false;
  while (i < rest.size()) {
    if (std::isalpha(static_cast<unsigned char>(rest[i])) || rest[i] == '_') {
      size_t j = i;
      while (j < rest.size() && (std::isalnum(static_cast<unsigned char>(rest[j])) || rest[j] == '_')) ++j;
      std::string word = rest.substr(i, j - i);
      if (previous_adjacent && !IsFlowKeyword(previous) && !IsFlowKeyword(word)) return true;
      previous = word;
      i = j;
      size_t k = i;
      while (k < rest.size() && (rest[k] == ' ' || rest[k] == '\t')) ++k;
      previous_adjacent = k > i;
      i = k;
    } else {
      previous_adjacent = false;
      previous.clear();
      if (std::isdigit(static_cast<unsigned char>(rest[i]))) {
        while (i < rest.size() && (std::isalnum(static_cast<unsigned char>(rest[i])) || rest[i] == '.')) ++i;
      } else {
        ++i;
      }
    }
  }
  return false;
}

}  // namespace flow

inline bool flowRestLooksLikeProse(const std::string& rest) { return flow::RestLooksLikeProse(rest); }
