// What the fuzz targets that run a VM share: a host that keeps nothing, and a fixed program
// compiled once.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "compiler/compiler.h"
#include "vm/vm.h"

namespace flow::fuzz {

class NullHost : public VmHost {
 public:
  void WriteOutput(std::string_view) override {}
  int64_t NowMs() override { return 0; }
};

// `source` compiled (once per process: pass the same text every time); a program that does
// not compile is the target's bug, so it aborts.
inline const Module& CompiledOnce(const char* source) {
  static const Module* module = [source] {
    auto* m = new Module;
    Diagnostics diags;
    if (!CompileSource("fuzz.flow", source, m, &diags)) std::abort();
    return m;
  }();
  return *module;
}

}  // namespace flow::fuzz
