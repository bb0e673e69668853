// Files built into the flow binary (cli/ui/embed.cmake): the web UI's pages, and the HTTP
// adapter module that `flow ui` loads (http_loader.cc).
#pragma once
#include <cstddef>
#include <string_view>

namespace flow::ui {

struct EmbeddedFile {
  const char* name;
  const unsigned char* bytes;
  size_t size;
};
extern const EmbeddedFile kEmbeddedFiles[];
extern const size_t kEmbeddedFileCount;

// The file named `name`, or null.
inline const EmbeddedFile* FindEmbeddedFile(std::string_view name) {
  for (size_t i = 0; i < kEmbeddedFileCount; ++i)
    if (name == kEmbeddedFiles[i].name) return &kEmbeddedFiles[i];
  return nullptr;
}

}  // namespace flow::ui
