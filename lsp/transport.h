// The LSP base protocol: messages framed by a `Content-Length: N` header, a blank line,
// then N bytes of JSON (microsoft.github.io/language-server-protocol, "Base Protocol").
#pragma once
#include <cstddef>
#include <istream>
#include <ostream>
#include <string>

namespace flow::lsp {

// The largest message read: an editor sends whole files, which Flow caps at 16 MiB.
constexpr size_t kMaxMessageBytes = 64u << 20;

enum class ReadResult { kMessage, kEnd, kBadFrame };

// Reads one message's body. kEnd at the end of the input between messages; kBadFrame (with
// *error) for a header without a valid Content-Length, a body too large, or input that ends
// inside a message: the stream cannot be trusted to be in step after that.
ReadResult ReadMessage(std::istream& in, std::string* body, std::string* error);

// Writes one message and flushes it; false if the output is gone.
bool WriteMessage(std::ostream& out, const std::string& body);

}  // namespace flow::lsp
