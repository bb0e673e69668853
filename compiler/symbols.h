// What each name in a program refers to, as the code generator resolved it: for editors
// (flow lsp's go to definition, hover and completion), so that they follow the compiler's
// own scoping rules rather than a second copy of them. Filled only when asked for
// (CompileOptions::symbols).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "compiler/ast.h"

namespace flow {

// A name a program declares.
struct SymbolDecl {
  enum class Kind : uint8_t { kVariable, kParameter, kFunction, kImport };
  Kind kind = Kind::kVariable;
  std::string name;
  uint16_t file = 0;  // an index into the program's files
  ast::Loc loc;       // where the name is written in its declaration
  // Where it can be seen from: its declaration to the end of the block around it; a
  // top-level name (`top_level`) is seen from the whole file, and as `alias.name` from the
  // files that import it.
  ast::Loc scope_end;
  bool top_level = false;
  std::vector<std::string> params;  // kFunction, and a `let` of an anonymous function
  int import_file = -1;             // kImport: the file it names
};

// A name written in the code, and what it resolved to.
struct SymbolUse {
  enum class Kind : uint8_t { kDecl, kBuiltin, kMethod };
  Kind kind = Kind::kDecl;
  uint16_t file = 0;
  ast::Loc loc;         // its first character
  uint32_t length = 0;  // in bytes (a name is ASCII)
  int decl = -1;        // kDecl: an index into SymbolIndex::decls
  int builtin = -1;     // kBuiltin: its id (vm/bytecode/builtins.def)
  std::string method;   // kMethod: the name after the dot
};

struct SymbolIndex {
  std::vector<SymbolDecl> decls;
  std::vector<SymbolUse> uses;
  bool filled = false;  // code generation ran (every file parsed): decls and uses are whole
};

}  // namespace flow
