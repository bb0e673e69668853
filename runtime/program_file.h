// Loading the program a command names: Flow source (compiled on the fly) or a .flowc
// bytecode file (checked and verified). A file is bytecode if its name ends in `.flowc`
// or it starts with the magic's first byte (0x7F); anything else is source.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <vector>

#include "compiler/compiler.h"
#include "compiler/diagnostics.h"
#include "vm/base/status.h"
#include "vm/bytecode/module.h"

namespace flow::runtime {

class ProgramCache;

// The largest program file, source or bytecode, that Flow reads (docs/language.md).
constexpr size_t kMaxProgramBytes = 16u << 20;
constexpr size_t kBytecodeMagicSize = 8;

// Loads `path` into `module`. InvalidArgument: an unreadable file, a directory, one larger
// than kMaxProgramBytes, or compile errors; Corruption: damaged or truncated bytecode.
// *compiler_output is what the compiler said, rendered (naming the file as `path` spells
// it): the errors when it fails, its warnings (if any) when it compiles. With a `cache`,
// source is looked up there first and a successful compile kept there (its failures
// ignored: a cache never makes a program fail). With `source`: the source text it was
// compiled from (nullopt for bytecode), which a run keeps beside its bytecode.
Status LoadProgram(const std::string& path, Module* module, std::string* compiler_output,
                   const ProgramCache* cache = nullptr, std::optional<std::string>* source = nullptr);

// Compiles `text`, the source of the file `path`, and the files it imports (read from disk),
// as CompileProgram does: *files and *diags say what the compiler found.
bool CompileFile(const std::string& path, const std::string& text, Module* module, std::vector<SourceFile>* files,
                 Diagnostics* diags, const CompileOptions& options = {});

// flow check: compiles the source file `path` and what it imports (no cache), leaving what
// the compiler found in *diags, its files in *files. A bytecode file is loaded and
// verified instead (no diagnostics). Not ok only when the file cannot be read or its
// bytecode is damaged; compile errors are in *diags.
Status CheckProgram(const std::string& path, std::vector<SourceFile>* files, Diagnostics* diags);

// Is `bytes` (read from `path`) bytecode rather than source? (as LoadProgram decides)
bool IsBytecodeFile(const std::string& path, const std::string& bytes);

// `path` made absolute (against the working directory), for names that are kept and shown
// later, from other folders: a run's program, a module's source name.
std::string AbsolutePath(const std::string& path);

// Reads a whole file of at most max_bytes; false (with *error) if it cannot, if it is
// a directory, or if it holds more.
bool ReadFile(const std::string& path, std::string* out, std::string* error, size_t max_bytes = SIZE_MAX);

}  // namespace flow::runtime
