#include "runtime/program_file.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "compiler/compiler.h"

namespace flow::runtime {

bool ReadFile(const std::string& path, std::string* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = fmt::format("cannot read {}: {}", path, std::strerror(errno));
    return false;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) {
    *error = fmt::format("cannot read {}: {}", path, std::strerror(errno));
    return false;
  }
  *out = buf.str();
  return true;
}

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  return ec ? path : absolute.lexically_normal().string();
}

int LoadProgram(const std::string& path, Module* module) {
  std::string bytes, error;
  if (!ReadFile(path, &bytes, &error)) {
    fmt::print(stderr, "flow: {}\n", error);
    return kExitUsage;
  }
  if (LooksLikeBytecode(bytes)) {
    Result<Module> loaded = DeserializeModule(bytes);
    if (!loaded.ok()) {
      fmt::print(stderr, "flow: {}: {}\n", path, loaded.status().message());
      return kExitCorrupt;
    }
    *module = std::move(loaded.value());
    return kExitOk;
  }
  Diagnostics diags;
  // Errors now name the file as typed; the module keeps its absolute name, which its
  // stack traces show whichever folder the run is resumed from.
  if (!CompileSource(AbsolutePath(path), bytes, module, &diags)) {
    fmt::print(stderr, "{}", diags.Render(path, bytes));
    return kExitUsage;
  }
  return kExitOk;
}

}  // namespace flow::runtime
