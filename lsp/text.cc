#include "lsp/text.h"

#include <algorithm>
#include <cctype>

#include "vm/base/text_line.h"

namespace flow::lsp {

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The byte length of the UTF-8 sequence starting with `lead` (1 for a stray byte, which the
// compiler would have refused anyway).
size_t SequenceLength(unsigned char lead) {
  if (lead >= 0xF0 && lead < 0xF8) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

}  // namespace

std::string PathFromUri(std::string_view uri) {
  constexpr std::string_view kScheme = "file://";
  if (uri.substr(0, kScheme.size()) != kScheme) return "";
  uri.remove_prefix(kScheme.size());
  // file://host/path: only the local host (empty or "localhost") is a path here.
  size_t slash = uri.find('/');
  if (slash == std::string_view::npos) return "";
  std::string_view host = uri.substr(0, slash);
  if (!host.empty() && host != "localhost") return "";
  uri.remove_prefix(slash);
  std::string path;
  for (size_t i = 0; i < uri.size(); ++i) {
    if (uri[i] == '%' && i + 2 < uri.size() && HexValue(uri[i + 1]) >= 0 && HexValue(uri[i + 2]) >= 0) {
      path.push_back(static_cast<char>(HexValue(uri[i + 1]) * 16 + HexValue(uri[i + 2])));
      i += 2;
    } else {
      path.push_back(uri[i]);
    }
  }
  return path;
}

std::string UriFromPath(std::string_view path) {
  static const char kHex[] = "0123456789ABCDEF";
  if (path.empty() || path[0] != '/') return "";
  std::string uri = "file://";
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      uri.push_back(static_cast<char>(c));
    } else {
      uri.push_back('%');
      uri.push_back(kHex[c >> 4]);
      uri.push_back(kHex[c & 15]);
    }
  }
  return uri;
}

std::string_view LineOf(std::string_view text, uint32_t line) { return TextLine(text, line + 1).value_or(""); }

Position ToPosition(std::string_view text, ast::Loc loc) {
  Position p;
  p.line = loc.line > 0 ? loc.line - 1 : 0;
  std::string_view line = LineOf(text, p.line);
  uint32_t points = loc.col > 0 ? loc.col - 1 : 0;
  size_t i = 0;
  for (; points > 0 && i < line.size(); --points) {
    size_t n = SequenceLength(static_cast<unsigned char>(line[i]));
    p.character += n == 4 ? 2 : 1;  // a code point past the BMP is two UTF-16 units
    i += n;
  }
  p.character += points;  // past the end of the line: as many as asked
  return p;
}

ast::Loc ToLoc(std::string_view text, Position position) {
  ast::Loc loc{position.line + 1, 1};
  std::string_view line = LineOf(text, position.line);
  uint32_t units = position.character;
  size_t i = 0;
  while (units > 0 && i < line.size()) {
    size_t n = SequenceLength(static_cast<unsigned char>(line[i]));
    units -= std::min<uint32_t>(units, n == 4 ? 2 : 1);
    i += n;
    ++loc.col;
  }
  loc.col += units;
  return loc;
}

size_t ByteOffset(std::string_view text, Position position) {
  size_t start = 0;
  for (uint32_t l = 0; l < position.line; ++l) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) return text.size();
    start = nl + 1;
  }
  std::string_view line = LineOf(text.substr(start), 0);
  size_t i = 0;
  for (uint32_t units = position.character; units > 0 && i < line.size();) {
    size_t n = SequenceLength(static_cast<unsigned char>(line[i]));
    units -= std::min<uint32_t>(units, n == 4 ? 2 : 1);
    i += n;
  }
  return start + std::min(i, line.size());
}

uint32_t WordLength(std::string_view text, ast::Loc loc) {
  std::string_view line = LineOf(text, loc.line > 0 ? loc.line - 1 : 0);
  size_t i = 0;
  for (uint32_t points = loc.col > 1 ? loc.col - 1 : 0; points > 0 && i < line.size(); --points)
    i += SequenceLength(static_cast<unsigned char>(line[i]));
  uint32_t n = 0;
  while (i + n < line.size() && (std::isalnum(static_cast<unsigned char>(line[i + n])) || line[i + n] == '_')) ++n;
  return n > 0 ? n : 1;
}

}  // namespace flow::lsp
