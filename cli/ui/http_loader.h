// Loads the HTTP adapter module built into the binary (http_abi.h): written to an
// anonymous memory file and opened with dlopen, so that cpp-httplib and the libraries it
// links (OpenSSL, zlib, brotli) are mapped by `flow ui` only, never by other commands.
#pragma once
#include <string>

#include "cli/ui/http_abi.h"

namespace flow::ui {

// The adapter's serve function, or null with *error saying why it cannot be loaded.
FlowHttpServe LoadHttpAdapter(std::string* error);

}  // namespace flow::ui
