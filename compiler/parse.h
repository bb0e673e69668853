// Source text to AST. With lexer.cc (its tokens), the only part of Flow that sees ANTLR.
#pragma once
#include <string>
#include <vector>

#include "compiler/ast.h"
#include "compiler/diagnostics.h"

namespace flow {

// Parses `source`; syntax errors go to `diags` (the program returned is then partial).
ast::Program ParseProgram(const std::string& file, const std::string& source, Diagnostics* diags);

// The words the language reserves (`let`, `fn`...) and those it reads in one place only
// (`import ... as`, `test`, `limit`), for editors.
std::vector<std::string> Keywords();

}  // namespace flow
