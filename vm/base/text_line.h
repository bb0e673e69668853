// Line `line` (1-based) of a text, without its line break (`\n` or `\r\n`): for quoting
// source in diagnostics, traces and editors. nullopt past the last line.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace flow {

inline std::optional<std::string_view> TextLine(std::string_view text, uint32_t line) {
  size_t at = 0;
  for (uint32_t n = 1; n < line; ++n) {
    at = text.find('\n', at);
    if (at == std::string_view::npos) return std::nullopt;
    ++at;
  }
  size_t end = text.find('\n', at);
  std::string_view found = text.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
  if (!found.empty() && found.back() == '\r') found.remove_suffix(1);
  return found;
}

}  // namespace flow
