// One open file as the compiler sees it: compiled as a program's main file (with the files
// it imports, open ones as the editor holds them), its diagnostics, and what each name in
// it refers to. Answers the questions of go to definition, hover and completion.
#pragma once
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "compiler/diagnostics.h"
#include "compiler/symbols.h"

namespace flow::lsp {

struct Analysis {
  std::vector<SourceFile> files;  // [0]: the file analysed; then those it imports
  Diagnostics diags;
  SymbolIndex symbols;  // empty when a file does not parse
  std::set<std::string> unreadable;  // imports that could not be read (they may appear later)
  bool parsed = false;  // every file parsed, so `symbols` is filled
};

// Compiles `text`, the file at the absolute `path`, and what it imports (read with `read`).
std::unique_ptr<Analysis> Analyze(const std::string& path, const std::string& text, const SourceReader& read,
                                  ParseCache* cache);

// A place in one of an analysis's files.
struct Place {
  uint16_t file = 0;
  ast::Loc loc;
  uint32_t length = 0;
};

// The declaration (an index into symbols.decls) of the name at `loc` of file 0, written
// there or declared there; -1 if there is none.
int DeclAt(const Analysis& a, ast::Loc loc);
// The name used at `loc` of file 0, or null.
const SymbolUse* UseAt(const Analysis& a, ast::Loc loc);

// Where the name at `loc` is declared (an import's alias: the file it imports, at its
// start); false when it is not a name of the program.
bool DefinitionAt(const Analysis& a, ast::Loc loc, Place* place);

// Markdown for the name at `loc`: a builtin's or a method's signature and doc, a function's
// signature and the comment above it, what a variable is; "" when there is nothing to say.
std::string HoverAt(const Analysis& a, ast::Loc loc, Place* range);

struct Completion {
  enum class Kind { kFunction, kVariable, kModule, kMethod, kKeyword };
  std::string label;
  Kind kind;
  std::string detail;  // a signature
  std::string doc;
};

// What may be written at `loc` of file 0, after `line` (the editor's text before it):
// after `x.`, the members of the module, the imported file or the methods; else the names
// in scope, the builtins and the keywords. The editor filters by what is typed.
std::vector<Completion> CompletionsAt(const Analysis& a, ast::Loc loc, std::string_view line);

}  // namespace flow::lsp
