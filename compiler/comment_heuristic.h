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

// True when `rest` reads as prose rather than as the right operand of `//`: two plain
// words side by side ("see the docs"), a word and a colon outside braces ("TODO: x"), or a
// character no Flow expression uses outside a string (' ? # @ ` ~ ^ ;).
inline bool RestLooksLikeProse(const std::string& whole_rest) {
  // Only the text up to the next `//` counts: a later comment decides for itself.
  std::string rest = whole_rest;
  for (size_t i = 0, quotes = 0; i + 1 < rest.size(); ++i) {
    if (rest[i] == '"') ++quotes;
    if (quotes % 2 == 0 && rest[i] == '/' && rest[i + 1] == '/') {
      rest.resize(i);
      break;
    }
  }
  int braces = 0;
  bool in_string = false;
  for (size_t i = 0; i < rest.size(); ++i) {
    char c = rest[i];
    if (c == '"') in_string = !in_string;
    if (in_string) continue;
    if (std::string_view("'?#@`~^;").find(c) != std::string_view::npos) return true;
    if (c == '{') ++braces;
    if (c == '}') --braces;
    if (c == ':' && braces <= 0 && i > 0 && (std::isalnum(static_cast<unsigned char>(rest[i - 1])) || rest[i - 1] == '_'))
      return true;
  }
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
