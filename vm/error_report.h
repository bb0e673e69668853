// An uncaught error as plain data, and its one rendering: what a failed run prints
// (`error: kind: message`, its data, its stack) and, first line only, what its record says.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace flow {

struct ErrorReport {
  bool is_error = true;  // false: a value that is not an error escaped (no kind, message, trace)
  std::string kind;
  std::string message;
  std::string data_json;           // its data as compact JSON; "" when null (or not encodable)
  std::vector<std::string> trace;  // "function (file:line)", innermost first
};

// "error: kind: message\n", then "  data: JSON\n" and "  at FRAME\n" lines.
std::string FormatErrorReport(const ErrorReport& e);

// The file and line of a trace frame ("function (file:line)"); false for another line
// ("task 2.5").
bool ParseTraceFrame(std::string_view frame, std::string* file, uint32_t* line);

}  // namespace flow
