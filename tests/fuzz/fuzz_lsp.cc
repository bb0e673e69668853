// libFuzzer target: flow lsp's server (lsp/server.h) on a session of arbitrary messages.
// Each line of the input is one message's body, framed here (so that mutations reach the
// JSON and the handlers, not only the Content-Length header; tests/unit/lsp_test.cc covers
// the framing); a line "RAW" sends the rest of the input unframed. Whatever arrives, the
// server must answer or ignore it, never crash or hang.
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

#include "lsp/server.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::string framed;
  while (!bytes.empty()) {
    size_t end = bytes.find('\n');
    std::string_view line = bytes.substr(0, end);
    bytes.remove_prefix(end == std::string_view::npos ? bytes.size() : end + 1);
    if (line == "RAW") {
      framed.append(bytes);
      break;
    }
    framed += "Content-Length: " + std::to_string(line.size()) + "\r\n\r\n";
    framed.append(line);
  }
  std::istringstream in(framed);
  std::ostringstream out;
  flow::lsp::Serve(in, out);
  return 0;
}
