#include "runtime/program_file.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "compiler/compiler.h"
#include "runtime/program_cache.h"

namespace flow::runtime {

namespace {

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

// Bytecode by its name, or by its first byte: the magic starts with 0x7F, which no source
// file can (it is not a character Flow reads), so that a file cut inside the magic is
// still recognised as damaged bytecode rather than compiled as source.
bool IsBytecodeFile(const std::string& path, const std::string& bytes) {
  return EndsWith(path, ".flowc") || (!bytes.empty() && bytes[0] == '\x7f') || LooksLikeBytecode(bytes);
}

bool ReadFile(const std::string& path, std::string* out, std::string* error, size_t max_bytes) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    *error = fmt::format("{} is a directory, not a file", path);
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = fmt::format("cannot read {}: {}", path, std::strerror(errno));
    return false;
  }
  // In chunks, never more than max_bytes + 1: the file may be a device that never ends.
  out->clear();
  char chunk[1 << 16];
  while (in) {
    size_t room = max_bytes - out->size();  // one byte more than room tells that there is more
    size_t want = room >= sizeof chunk ? sizeof chunk : room + 1;
    in.read(chunk, static_cast<std::streamsize>(want));
    out->append(chunk, static_cast<size_t>(in.gcount()));
    if (out->size() > max_bytes) {
      *error = fmt::format("{} is larger than {} bytes, the most Flow reads from it", path, max_bytes);
      return false;
    }
  }
  if (in.bad()) {
    *error = fmt::format("cannot read {}: {}", path, std::strerror(errno));
    return false;
  }
  return true;
}

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  return ec ? path : absolute.lexically_normal().string();
}

namespace {

// Reads `path` whole: false, with *error, when it cannot.
bool ReadProgramFile(const std::string& path, std::string* bytes, Status* error) {
  std::string why;
  if (ReadFile(path, bytes, &why, kMaxProgramBytes)) return true;
  *error = Status::InvalidArgument(why);
  return false;
}

Status LoadBytecode(const std::string& path, const std::string& bytes, Module* module) {
  if (bytes.size() < kBytecodeMagicSize)
    return Status::Corruption(fmt::format("{}: truncated bytecode ({} bytes, shorter than its {}-byte magic)", path,
                                          bytes.size(), kBytecodeMagicSize));
  Result<Module> loaded = DeserializeModule(bytes);
  if (!loaded.ok()) return Status::Corruption(fmt::format("{}: {}", path, loaded.status().message()));
  *module = std::move(loaded.value());
  return Status::Ok();
}

}  // namespace

// Errors name the file as typed; the module keeps its absolute name, which its stack traces
// show whichever folder the run is resumed from.
bool CompileFile(const std::string& path, const std::string& text, Module* module, std::vector<SourceFile>* files,
                 Diagnostics* diags, const CompileOptions& options) {
  *files = {{AbsolutePath(path), path, text}};
  auto read = [](const std::string& file, std::string* text, std::string* error) {
    return ReadFile(file, text, error, kMaxProgramBytes);
  };
  return CompileProgram(files, read, module, diags, options);
}

Status LoadProgram(const std::string& path, Module* module, std::string* compiler_output,
                   const ProgramCache* cache, std::optional<std::string>* source) {
  compiler_output->clear();
  if (source) source->reset();
  std::string bytes;
  if (Status s; !ReadProgramFile(path, &bytes, &s)) return s;
  if (IsBytecodeFile(path, bytes)) return LoadBytecode(path, bytes, module);
  if (source) *source = bytes;
  if (cache) {
    if (std::optional<Module> cached = cache->Find(AbsolutePath(path), bytes)) {
      *module = std::move(*cached);
      return Status::Ok();
    }
  }
  std::vector<SourceFile> files;
  Diagnostics diags;
  const bool compiled = CompileFile(path, bytes, module, &files, &diags);
  *compiler_output = diags.Render(files);
  if (!compiled) return Status::InvalidArgument(fmt::format("{}: compile errors", path));
  if (cache) (void)cache->Store(bytes, *module);  // a cache that cannot be written is no cache
  return Status::Ok();
}

Status CheckProgram(const std::string& path, std::vector<SourceFile>* files, Diagnostics* diags) {
  std::string bytes;
  if (Status s; !ReadProgramFile(path, &bytes, &s)) return s;
  Module module;
  if (IsBytecodeFile(path, bytes)) return LoadBytecode(path, bytes, &module);
  (void)CompileFile(path, bytes, &module, files, diags);
  return Status::Ok();
}

}  // namespace flow::runtime
