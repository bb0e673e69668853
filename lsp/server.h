// flow lsp: a language server for Flow over a pair of streams (the editor's pipes): on each
// open or edited file, the compiler's diagnostics; go to definition (across imported
// files), hover (a builtin's signature and doc, a function's signature and comment) and
// completion (names in scope, builtins, module members, methods). docs/editors.md.
#pragma once
#include <istream>
#include <ostream>
#include <string>

namespace flow::lsp {

struct ServeResult {
  bool shutdown_requested = false;  // `shutdown` came before `exit` (or the end of input)
  std::string error;                // why serving stopped early: the input broke its framing
};

// Serves one client until it sends `exit` or its input ends.
ServeResult Serve(std::istream& in, std::ostream& out);

}  // namespace flow::lsp
