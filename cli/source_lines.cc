#include "cli/source_lines.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "cli/commands.h"
#include "runtime/runtime.h"
#include "vm/base/text_line.h"

namespace flow::cli {

std::string QuoteSourceLine(const std::optional<std::string>& source, uint32_t line, const std::string& indent) {
  if (!source || line == 0) return "";
  std::optional<std::string_view> found = TextLine(*source, line);
  if (!found) return "";
  std::string_view text = *found;
  constexpr size_t kMaxQuoted = 160;
  std::string shown = Printable(text.substr(0, kMaxQuoted));
  if (text.size() > kMaxQuoted) shown += "...";
  return fmt::format("{}{:>5} | {}\n", indent, line, shown);
}

std::string FormatErrorWithSource(const ErrorReport& e, const std::optional<std::string>& source,
                                  const std::string& source_file, const std::vector<ImportedFile>& imports) {
  if (!e.is_error) return FormatErrorReport(e);
  std::string out = fmt::format("error: {}: {}\n", e.kind, e.message);
  if (!e.data_json.empty()) out += fmt::format("  data: {}\n", e.data_json);
  bool noted = false;
  // An imported file's text, read once: nullopt when it is gone or has changed.
  std::map<std::string, std::optional<std::string>> imported;
  for (const auto& frame : e.trace) {
    out += fmt::format("  at {}\n", frame);
    std::string file;
    uint32_t line = 0;
    if (!ParseTraceFrame(frame, &file, &line)) continue;
    if (file != source_file) {
      auto import = std::find_if(imports.begin(), imports.end(), [&](const ImportedFile& f) { return f.name == file; });
      if (import == imports.end()) continue;
      auto [text, first] = imported.try_emplace(file);
      if (first) {
        std::string bytes;
        if (runtime::CheckImportedFile(*import, &bytes) == runtime::ProgramFileState::kUnchanged)
          text->second = std::move(bytes);
        else
          out += fmt::format("        ({} has changed since this code was compiled: its lines are not quoted)\n",
                             Printable(file));
      }
      out += QuoteSourceLine(text->second, line, "  ");
      continue;
    }
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
