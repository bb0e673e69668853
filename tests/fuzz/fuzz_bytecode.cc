// libFuzzer target: arbitrary bytes as a .flowc file. The loader must reject or accept
// without crashing; anything it accepts must disassemble.
#include <cstdint>
#include <string_view>

#include "vm/bytecode/module.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  flow::Result<flow::Module> module = flow::DeserializeModule(bytes);
  if (module.ok()) (void)flow::Disassemble(*module);
  return 0;
}
