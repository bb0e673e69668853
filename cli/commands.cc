#include "cli/commands.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <fstream>

#include "cli/program_file.h"
#include "compiler/compiler.h"
#include "stdlib/stdlib.h"
#include "vm/vm.h"

namespace flow::cli {

namespace {

// The real world: stdout and the system clock.
class ProcessHost : public VmHost {
 public:
  void WriteOutput(std::string_view text) override { std::fwrite(text.data(), 1, text.size(), stdout); }
  int64_t NowMs() override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }
};

}  // namespace

int RunCommand(const RunOptions& options) {
  Module module;
  if (int code = LoadProgram(options.file, &module); code != kExitOk) return code;
  ProcessHost host;
  VM vm(&module, &host, stdlib::GetNatives());
  Value args = vm.heap().NewMap();
  for (const std::string& kv : options.args) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      fmt::print(stderr, "flow run: --arg takes NAME=VALUE, got `{}`\n", kv);
      return kExitUsage;
    }
    vm.heap().Mutable<MapObj>(args.ref)->Set(kv.substr(0, eq), vm.heap().NewString(kv.substr(eq + 1)));
  }
  vm.SetGlobal("args", args);
  RunOutcome outcome = vm.Run();
  std::fflush(stdout);
  if (outcome == RunOutcome::kFailed) {
    fmt::print(stderr, "{}", vm.FormatUncaught());
    return kExitScriptFailed;
  }
  return kExitOk;
}

int CompileCommand(const std::string& file, std::string out) {
  Module module;
  if (int code = LoadProgram(file, &module); code != kExitOk) return code;
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
  return LoadProgram(file, &module);
}

int DisasmCommand(const std::string& file) {
  Module module;
  if (int code = LoadProgram(file, &module); code != kExitOk) return code;
  std::string text = Disassemble(module);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return kExitOk;
}

}  // namespace flow::cli
