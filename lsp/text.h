// Where things are, as the Language Server Protocol says it: files as `file://` URIs, and
// positions as 0-based lines and UTF-16 code units within a line, where the compiler counts
// 1-based lines and code points.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "compiler/ast.h"

namespace flow::lsp {

// The path of a `file://` URI (percent-decoded), or "" for another scheme.
std::string PathFromUri(std::string_view uri);
// A `file://` URI for an absolute path, percent-encoding what must be ("" for a relative one).
std::string UriFromPath(std::string_view path);

// Line `line` (0-based) of `text`, without its line break; "" past the end.
std::string_view LineOf(std::string_view text, uint32_t line);

// A compiler location (1-based line and code point) as an LSP position, and back.
struct Position {
  uint32_t line = 0;       // 0-based
  uint32_t character = 0;  // UTF-16 code units
};
Position ToPosition(std::string_view text, ast::Loc loc);
ast::Loc ToLoc(std::string_view text, Position position);
// The byte offset of an LSP position in `text`: past the end of its line, the line's end;
// past the last line, the text's end.
size_t ByteOffset(std::string_view text, Position position);

// The length in code points of the name (letters, digits, `_`) starting at `loc`; 1 if none.
uint32_t WordLength(std::string_view text, ast::Loc loc);

}  // namespace flow::lsp
