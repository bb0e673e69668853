// Quoting the code a run executes: the lines of the source stored with its bytecode
// (code/HASH.flow), never the file on disk, which may have changed since the run started.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include <vector>

#include "vm/bytecode/module.h"
#include "vm/error_report.h"

namespace flow::cli {

// "error: kind: message", its data and stack, each frame followed by its source line:
// for a frame in `source_file`, quoted from `source` (nullopt: a note, once, that the run
// has no stored source); for a frame in one of `imports`, from that file on disk if its
// text still has the hash the code was compiled from (else a note, once per file).
std::string FormatErrorWithSource(const ErrorReport& e, const std::optional<std::string>& source,
                                  const std::string& source_file, const std::vector<ImportedFile>& imports = {});

// Line `line` (1-based) of `source`, as "INDENT   N | text\n" (terminal-safe, cut at 160
// bytes); "" when it has no such line.
std::string QuoteSourceLine(const std::optional<std::string>& source, uint32_t line, const std::string& indent);

// What is said where a line would be quoted, for a run without a stored source.
inline constexpr char kNoStoredSource[] =
    "(no source is stored with this run's code: it was started from a .flowc file, or before flow kept sources)";

}  // namespace flow::cli
