// The Flow compiler: source text to a verified bytecode Module.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "compiler/diagnostics.h"
#include "vm/bytecode/module.h"

namespace flow {

// Parses, checks and generates code for `source`. Returns false, with every error in
// `diags`, if the program is not valid; `module` is then unspecified.
// A program given as text: an `import` in it is an error.
bool CompileSource(const std::string& file, const std::string& source, Module* module, Diagnostics* diags);

// Reads an imported file, by its absolute path: false, with *error, when it cannot.
using SourceReader = std::function<bool(const std::string& path, std::string* text, std::string* error)>;

// What `flow test` asks of a compile.
struct CompileOptions {
  int run_test = -1;                         // the main file's test the script runs at its end (-1: none)
  std::vector<std::string>* tests = nullptr;  // if set: the names of the main file's tests, in order
};

// Compiles a program of one or more files. (*files)[0] is the main file, set by the caller
// (its name absolute); each file it imports, directly or not, is read with `read` and
// appended. Each error names its file by index in *files: render with
// Diagnostics::Render(*files).
bool CompileProgram(std::vector<SourceFile>* files, const SourceReader& read, Module* module, Diagnostics* diags,
                    const CompileOptions& options = {});

}  // namespace flow
