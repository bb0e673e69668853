#include "compiler/diagnostics.h"

#include <fmt/format.h>

#include <algorithm>

namespace flow {

namespace {

std::string SourceLine(const std::string& source, uint32_t line) {
  size_t start = 0;
  for (uint32_t l = 1; l < line; ++l) {
    size_t nl = source.find('\n', start);
    if (nl == std::string::npos) return "";
    start = nl + 1;
  }
  size_t end = source.find('\n', start);
  std::string text = source.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (!text.empty() && text.back() == '\r') text.pop_back();
  return text;
}

}  // namespace

std::string Diagnostics::Render(const std::string& file, const std::string& source) const {
  std::vector<Diagnostic> sorted = errors_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return a.loc.line != b.loc.line ? a.loc.line < b.loc.line : a.loc.col < b.loc.col;
  });
  std::string out;
  for (const auto& d : sorted) {
    out += fmt::format("{}:{}:{}: error: {}\n", file, d.loc.line, d.loc.col, d.message);
    std::string line = SourceLine(source, d.loc.line);
    if (line.empty() && d.loc.line == 0) continue;
    out += "  " + line + "\n  ";
    // Keep tabs so that the caret lines up under the column in a terminal.
    for (uint32_t i = 1; i < d.loc.col && i - 1 < line.size(); ++i) out += line[i - 1] == '\t' ? '\t' : ' ';
    out += "^\n";
  }
  if (sorted.size() > 1) out += fmt::format("{} errors\n", sorted.size());
  return out;
}

}  // namespace flow
