#include "cli/source_lines.h"

#include <fmt/format.h>

#include "cli/commands.h"

namespace flow::cli {

namespace {

std::optional<std::string_view> LineOf(std::string_view text, uint32_t line) {
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

}  // namespace

std::string QuoteSourceLine(const std::optional<std::string>& source, uint32_t line, const std::string& indent) {
  if (!source || line == 0) return "";
  std::optional<std::string_view> found = LineOf(*source, line);
  if (!found) return "";
  std::string_view text = *found;
  constexpr size_t kMaxQuoted = 160;
  std::string shown = Printable(text.substr(0, kMaxQuoted));
  if (text.size() > kMaxQuoted) shown += "...";
  return fmt::format("{}{:>5} | {}\n", indent, line, shown);
}

std::string FormatErrorWithSource(const ErrorReport& e, const std::optional<std::string>& source,
                                  const std::string& source_file) {
  if (!e.is_error) return FormatErrorReport(e);
  std::string out = fmt::format("error: {}: {}\n", e.kind, e.message);
  if (!e.data_json.empty()) out += fmt::format("  data: {}\n", e.data_json);
  bool noted = false;
  for (const auto& frame : e.trace) {
    out += fmt::format("  at {}\n", frame);
    std::string file;
    uint32_t line = 0;
    if (!ParseTraceFrame(frame, &file, &line) || file != source_file) continue;
    if (source) {
      out += QuoteSourceLine(source, line, "  ");
    } else if (!noted) {
      out += fmt::format("        {}\n", kNoStoredSource);
      noted = true;
    }
  }
  return out;
}

}  // namespace flow::cli
