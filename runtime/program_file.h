// Loading the program a command names: Flow source (compiled on the fly) or a .flowc
// bytecode file (checked and verified), told apart by the bytecode magic.
#pragma once
#include <string>

#include "runtime/exit_codes.h"
#include "vm/bytecode/module.h"

namespace flow::runtime {

// Loads `path` into `module`, printing any error to stderr. Returns kExitOk, kExitUsage
// (unreadable file, compile errors) or kExitCorrupt (damaged bytecode).
int LoadProgram(const std::string& path, Module* module);

// `path` made absolute (against the working directory), for names that are kept and shown
// later, from other folders: a run's program, a module's source name.
std::string AbsolutePath(const std::string& path);

// Reads a whole file; false (with *error) if it cannot.
bool ReadFile(const std::string& path, std::string* out, std::string* error);

}  // namespace flow::runtime
