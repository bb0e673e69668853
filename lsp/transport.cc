#include "lsp/transport.h"

#include <cctype>
#include <charconv>
#include <string_view>

namespace flow::lsp {

ReadResult ReadMessage(std::istream& in, std::string* body, std::string* error) {
  size_t length = 0;
  bool have_length = false, any_header = false;
  std::string line;
  while (true) {
    if (!std::getline(in, line)) {
      if (!any_header) return ReadResult::kEnd;
      *error = "the input ended inside a message's headers";
      return ReadResult::kBadFrame;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {
      if (!any_header) continue;  // stray blank lines between messages
      break;
    }
    any_header = true;
    if (line.size() > 4096) {
      *error = "a header line longer than 4096 bytes";
      return ReadResult::kBadFrame;
    }
    constexpr std::string_view kLength = "content-length:";
    std::string lower;
    for (char c : line.substr(0, kLength.size())) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    if (lower != kLength) continue;  // Content-Type and others
    std::string_view value = std::string_view(line).substr(kLength.size());
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
    if (ec != std::errc() || end != value.data() + value.size()) {
      *error = "a Content-Length that is not a number";
      return ReadResult::kBadFrame;
    }
    have_length = true;
  }
  if (!have_length) {
    *error = "a message without a Content-Length header";
    return ReadResult::kBadFrame;
  }
  if (length > kMaxMessageBytes) {
    *error = "a message larger than 64 MiB";
    return ReadResult::kBadFrame;
  }
  body->resize(length);
  if (!in.read(body->data(), static_cast<std::streamsize>(length))) {
    *error = "the input ended inside a message's body";
    return ReadResult::kBadFrame;
  }
  return ReadResult::kMessage;
}

bool WriteMessage(std::ostream& out, const std::string& body) {
  out << "Content-Length: " << body.size() << "\r\n\r\n" << body;
  out.flush();
  return static_cast<bool>(out);
}

}  // namespace flow::lsp
