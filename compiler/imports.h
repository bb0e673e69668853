// Imports: finding, reading and parsing every file a program imports, and the order their
// top-level code runs in. The code generator then compiles them into one module.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compiler/ast.h"
#include "compiler/compiler.h"
#include "compiler/diagnostics.h"

namespace flow {

// One file of a program, parsed.
struct ImportUnit {
  std::shared_ptr<const ast::Program> program;
  std::map<std::string, uint16_t> aliases;  // `import "..." as NAME`: NAME -> the file's index
};

// Parses (*files)[0] and every file it imports, directly or not, appending those to *files
// in the order they are first met; units[i] is the parse of (*files)[i], and `order` lists
// the files in the order their top-level code runs: each after the files it imports, the
// main file (0) last. False when a file cannot be read or parsed, or imports form a cycle.
// With a cache, a file whose text has not changed since it was last parsed without
// errors is not parsed again.
bool ParseWithImports(std::vector<SourceFile>* files, const SourceReader& read, Diagnostics* diags,
                      std::vector<ImportUnit>* units, std::vector<uint16_t>* order, ParseCache* cache = nullptr);

}  // namespace flow
