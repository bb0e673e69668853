// Compile diagnostics: collected, not thrown, so one run reports every error in a file.
#pragma once
#include <string>
#include <vector>

#include "compiler/ast.h"

namespace flow {

// An error stops the compile; a warning (unused variable, unreachable code) does not.
enum class Severity : uint8_t { kError, kWarning };

struct Diagnostic {
  ast::Loc loc;
  std::string message;  // lower case, no trailing period, code in backticks
  uint16_t file = 0;    // which of the program's files (0: the main file; see SourceFile)
  Severity severity = Severity::kError;
};

// A file of a program: the main file, or one it imports.
struct SourceFile {
  std::string name;   // as the module records it (an absolute path)
  std::string shown;  // as messages show it (the main file as typed, imports relative to it)
  std::string text;
};

class Diagnostics {
 public:
  // A message quoting source text (a name, an escape) is cut in the middle past a few
  // hundred characters, so that a megabyte-long name cannot flood the terminal.
  void Error(ast::Loc loc, std::string message);
  void Warning(ast::Loc loc, std::string message);
  // The file the errors reported from now on are in (an index into the program's files).
  void set_file(uint16_t file) { file_ = file; }
  bool HasErrors() const { return error_count_ > 0; }
  size_t error_count() const { return error_count_; }
  // Errors and warnings, in the order they were found.
  const std::vector<Diagnostic>& all() const { return all_; }
  // The same, by file, line and column.
  std::vector<Diagnostic> Sorted() const;

  // `file:line:col: error: message` (or `warning:`), the source line and a caret under
  // the column.
  std::string Render(const std::string& file, const std::string& source) const;
  // The same for a program of several files, each error under the file it is in.
  std::string Render(const std::vector<SourceFile>& files) const;

 private:
  std::vector<Diagnostic> all_;
  size_t error_count_ = 0;
  uint16_t file_ = 0;
};

}  // namespace flow
