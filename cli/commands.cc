#include "cli/commands.h"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>

#include "runtime/program_file.h"
#include "compiler/compiler.h"

namespace flow::cli {

int CompileCommand(const std::string& file, std::string out) {
  Module module;
  if (int code = runtime::LoadProgram(file, &module); code != kExitOk) return code;
  if (out.empty()) {
    size_t dot = file.rfind('.');
    size_t slash = file.rfind('/');
    out = (dot != std::string::npos && (slash == std::string::npos || dot > slash) ? file.substr(0, dot) : file) + ".flowc";
  }
  std::string bytes = SerializeModule(module);
  std::string tmp = out + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    f.close();
    if (!f) {
      fmt::print(stderr, "flow compile: cannot write {}\n", out);
      std::remove(tmp.c_str());
      return kExitUsage;
    }
  }
  // Write then rename, so a crash never leaves a half-written .flowc behind.
  if (std::rename(tmp.c_str(), out.c_str()) != 0) {
    fmt::print(stderr, "flow compile: cannot write {}\n", out);
    std::remove(tmp.c_str());
    return kExitUsage;
  }
  return kExitOk;
}

int CheckCommand(const std::string& file) {
  Module module;
  return runtime::LoadProgram(file, &module);
}

int DisasmCommand(const std::string& file) {
  Module module;
  if (int code = runtime::LoadProgram(file, &module); code != kExitOk) return code;
  std::string text = Disassemble(module);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return kExitOk;
}

}  // namespace flow::cli
