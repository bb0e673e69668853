// The Flow compiler: source text to a verified bytecode Module.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compiler/diagnostics.h"
#include "compiler/symbols.h"
#include "vm/bytecode/module.h"

namespace flow {

// Parses, checks and generates code for `source`. Returns false, with every error in
// `diags`, if the program is not valid; `module` is then unspecified.
// A program given as text: an `import` in it is an error.
bool CompileSource(const std::string& file, const std::string& source, Module* module, Diagnostics* diags);

// Reads an imported file, by its absolute path: false, with *error, when it cannot.
using SourceReader = std::function<bool(const std::string& path, std::string* text, std::string* error)>;

// Parses kept from one compile to the next, by file name and text: an editor recompiles a
// program of many files on each keystroke in one of them. Only parses without errors are
// kept, and only the last text of each file.
class ParseCache {
 public:
  std::shared_ptr<const ast::Program> Find(const std::string& name, const std::string& text) const {
    auto it = entries_.find(name);
    return it != entries_.end() && it->second.first == text ? it->second.second : nullptr;
  }
  void Put(const std::string& name, const std::string& text, std::shared_ptr<const ast::Program> program) {
    entries_[name] = {text, std::move(program)};
  }

 private:
  std::map<std::string, std::pair<std::string, std::shared_ptr<const ast::Program>>> entries_;
};

// What `flow test` and editors ask of a compile.
struct CompileOptions {
  int run_test = -1;                         // the main file's test the script runs at its end (-1: none)
  std::vector<std::string>* tests = nullptr;  // if set: the names of the main file's tests, in order
  SymbolIndex* symbols = nullptr;             // if set: every declaration and resolved name, for editors
  ParseCache* parse_cache = nullptr;          // if set: parses reused from and kept for the next compile
};

// Compiles a program of one or more files. (*files)[0] is the main file, set by the caller
// (its name absolute); each file it imports, directly or not, is read with `read` and
// appended. Each error names its file by index in *files: render with
// Diagnostics::Render(*files).
bool CompileProgram(std::vector<SourceFile>* files, const SourceReader& read, Module* module, Diagnostics* diags,
                    const CompileOptions& options = {});

}  // namespace flow
