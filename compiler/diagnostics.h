// Compile diagnostics: collected, not thrown, so one run reports every error in a file.
#pragma once
#include <string>
#include <vector>

#include "compiler/ast.h"

namespace flow {

struct Diagnostic {
  ast::Loc loc;
  std::string message;  // lower case, no trailing period, code in backticks
};

class Diagnostics {
 public:
  // A message quoting source text (a name, an escape) is cut in the middle past a few
  // hundred characters, so that a megabyte-long name cannot flood the terminal.
  void Error(ast::Loc loc, std::string message);
  bool HasErrors() const { return !errors_.empty(); }
  const std::vector<Diagnostic>& errors() const { return errors_; }

  // `file:line:col: error: message`, the source line and a caret under the column.
  std::string Render(const std::string& file, const std::string& source) const;

 private:
  std::vector<Diagnostic> errors_;
};

}  // namespace flow
