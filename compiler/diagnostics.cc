#include "compiler/diagnostics.h"

#include <fmt/format.h>

#include <algorithm>

#include "vm/base/text_line.h"

namespace flow {

namespace {

std::string SourceLine(const std::string& source, uint32_t line) { return std::string(TextLine(source, line).value_or("")); }

// Byte offset of code point `n` of `text` (its size if there are fewer).
size_t OffsetOfCodePoint(const std::string& text, size_t n) {
  size_t at = 0;
  for (size_t seen = 0; at < text.size(); ++at) {
    if ((static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) continue;  // a continuation byte
    if (seen++ == n) return at;
  }
  return at;
}

// The source line and a caret under column `col` (1-based, in code points). A long line
// (a 10 MB string literal) is quoted only around the column, so that one mistake cannot
// flood the terminal.
std::string QuoteAround(const std::string& line, uint32_t col) {
  constexpr size_t kBefore = 60, kWidth = 120;
  size_t column = col == 0 ? 0 : col - 1;
  size_t first = line.size() > kWidth && column > kBefore ? column - kBefore : 0;
  size_t begin = OffsetOfCodePoint(line, first);
  size_t end = begin + OffsetOfCodePoint(line.substr(begin, 4 * kWidth), kWidth);
  std::string shown = (begin > 0 ? "..." : "") + line.substr(begin, end - begin) + (end < line.size() ? "..." : "");
  std::string caret = begin > 0 ? "   " : "";
  // Keep tabs so that the caret lines up under the column in a terminal.
  for (size_t i = begin, cp = first; i < end && cp < column; ++i) {
    if ((static_cast<unsigned char>(line[i]) & 0xC0) == 0x80) continue;
    caret += line[i] == '\t' ? '\t' : ' ';
    ++cp;
  }
  return "  " + shown + "\n  " + caret + "^\n";
}

// `text` with its middle replaced by "..." when it has more than head + tail code points.
std::string ElideMiddle(const std::string& text, size_t head, size_t tail) {
  size_t code_points = 0;
  for (unsigned char c : text) code_points += (c & 0xC0) != 0x80;
  if (code_points <= head + tail) return text;
  return text.substr(0, OffsetOfCodePoint(text, head)) + "..." + text.substr(OffsetOfCodePoint(text, code_points - tail));
}

}  // namespace

void Diagnostics::Error(ast::Loc loc, std::string message) {
  constexpr size_t kHead = 200, kTail = 100;
  all_.push_back({loc, ElideMiddle(message, kHead, kTail), file_, Severity::kError});
  ++error_count_;
}

void Diagnostics::Warning(ast::Loc loc, std::string message) {
  constexpr size_t kHead = 200, kTail = 100;
  all_.push_back({loc, ElideMiddle(message, kHead, kTail), file_, Severity::kWarning});
}

std::vector<Diagnostic> Diagnostics::Sorted() const {
  std::vector<Diagnostic> sorted = all_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Diagnostic& a, const Diagnostic& b) {
    if (a.file != b.file) return a.file < b.file;
    return a.loc.line != b.loc.line ? a.loc.line < b.loc.line : a.loc.col < b.loc.col;
  });
  return sorted;
}

std::string Diagnostics::Render(const std::string& file, const std::string& source) const {
  return Render(std::vector<SourceFile>{{file, file, source}});
}

std::string Diagnostics::Render(const std::vector<SourceFile>& files) const {
  std::vector<Diagnostic> sorted = Sorted();
  std::string out;
  static const std::string kNone;
  for (const auto& d : sorted) {
    const bool known = d.file < files.size();
    out += fmt::format("{}:{}:{}: {}: {}\n", known ? files[d.file].shown : "?", d.loc.line, d.loc.col,
                       d.severity == Severity::kError ? "error" : "warning", d.message);
    std::string line = SourceLine(known ? files[d.file].text : kNone, d.loc.line);
    if (line.empty() && d.loc.line == 0) continue;
    out += QuoteAround(line, d.loc.col);
  }
  if (sorted.size() > 1) {
    const size_t warnings = sorted.size() - error_count_;
    auto count = [](size_t n, const char* what) { return fmt::format("{} {}{}", n, what, n == 1 ? "" : "s"); };
    if (error_count_ > 0 && warnings > 0)
      out += count(error_count_, "error") + ", " + count(warnings, "warning") + "\n";
    else
      out += (error_count_ > 0 ? count(error_count_, "error") : count(warnings, "warning")) + "\n";
  }
  return out;
}

}  // namespace flow
