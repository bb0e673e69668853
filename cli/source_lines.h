// Quoting the code a run executes: the lines of the source stored with its bytecode
// (code/HASH.flow), never the file on disk, which may have changed since the run started.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "vm/error_report.h"

namespace flow::cli {

// "error: kind: message", its data and stack, each frame followed by its source line
// quoted from `source` (nullopt: a note, once, that the run has no stored source).
// Quotes the lines of the frames in `source_file` only (not those in the files it imports).
std::string FormatErrorWithSource(const ErrorReport& e, const std::optional<std::string>& source,
                                  const std::string& source_file);

// Line `line` (1-based) of `source`, as "INDENT   N | text\n" (terminal-safe, cut at 160
// bytes); "" when it has no such line.
std::string QuoteSourceLine(const std::optional<std::string>& source, uint32_t line, const std::string& indent);

// What is said where a line would be quoted, for a run without a stored source.
inline constexpr char kNoStoredSource[] =
    "(no source is stored with this run's code: it was started from a .flowc file, or before flow kept sources)";

}  // namespace flow::cli
