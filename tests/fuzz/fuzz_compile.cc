// libFuzzer target: arbitrary bytes as Flow source through the parser and compiler. Must
// never crash; whatever compiles must serialize, load back and verify.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "compiler/compiler.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string source(reinterpret_cast<const char*>(data), size);
  flow::Module module;
  flow::Diagnostics diags;
  if (flow::CompileSource("fuzz.flow", source, &module, &diags)) {
    std::string bytes = flow::SerializeModule(module);
    flow::Result<flow::Module> back = flow::DeserializeModule(bytes);
    if (!back.ok()) std::abort();  // the compiler wrote bytecode its own loader rejects
    (void)flow::Disassemble(*back);
  } else {
    (void)diags.Render("fuzz.flow", source);
  }
  return 0;
}
