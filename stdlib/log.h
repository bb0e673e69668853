// Structured log lines (log.info, log.warn, log.error): how one reads on a terminal. The
// live process writes it to stderr as the program logs; `flow logs` prints the same line
// from the run's history.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace flow::stdlib {

// A field of a log line: its value as text, raw for a string, compact JSON otherwise.
struct LogField {
  std::string key;
  std::string text;
  bool is_string = false;
};

// `2026-11-30T08:01:02.345Z` for ms since the epoch (UTC, to the millisecond).
std::string FormatLogTime(int64_t ms);
// The level of a log builtin's name: "log.warn" -> "WARN"; "" if `effect` is not one.
std::string LogLevelOf(std::string_view effect);
// `TIME LEVEL [task T] msg k=v k2="two words"`: one line (newline included), the task only
// when it is not the top level; control characters in msg and values escaped.
std::string FormatLogLine(int64_t ms, std::string_view level, std::string_view task, std::string_view msg,
                          const std::vector<LogField>& fields);

}  // namespace flow::stdlib
