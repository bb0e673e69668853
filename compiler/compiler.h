// The Flow compiler: source text to a verified bytecode Module.
#pragma once
#include <string>

#include "compiler/diagnostics.h"
#include "vm/bytecode/module.h"

namespace flow {

// Parses, checks and generates code for `source`. Returns false, with every error in
// `diags`, if the program is not valid; `module` is then unspecified.
bool CompileSource(const std::string& file, const std::string& source, Module* module, Diagnostics* diags);

}  // namespace flow
