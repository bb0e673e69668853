// Source text to AST. The only part of Flow that sees ANTLR.
#pragma once
#include <string>

#include "compiler/ast.h"
#include "compiler/diagnostics.h"

namespace flow {

// Parses `source`; syntax errors go to `diags` (the program returned is then partial).
ast::Program ParseProgram(const std::string& file, const std::string& source, Diagnostics* diags);

}  // namespace flow
