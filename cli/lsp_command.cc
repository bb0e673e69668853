// flow lsp: the language server (lsp/server.h) on stdin and stdout, for editors.
#include <fmt/format.h>

#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "lsp/server.h"

namespace flow::cli {

int LspCommand() {
  std::ios::sync_with_stdio(false);
  lsp::ServeResult result = lsp::Serve(std::cin, std::cout);
  if (!result.error.empty()) {
    fmt::print(stderr, "flow lsp: {}\n", result.error);
    return kExitLspUnclean;
  }
  // As the protocol asks: 0 when the client said `shutdown` before leaving, 1 otherwise.
  return result.shutdown_requested ? kExitOk : kExitLspUnclean;
}

}  // namespace flow::cli
