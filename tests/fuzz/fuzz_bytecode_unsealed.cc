// libFuzzer target: like fuzz_bytecode, but the fuzzer's bytes are sealed with a valid
// header and checksum first, so that mutations reach the decoder and verifier behind the
// checksum instead of stopping at it.
#include <cstdint>
#include <string>

#include "vm/base/coding.h"
#include "vm/bytecode/module.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string payload(reinterpret_cast<const char*>(data), size);
  std::string file("\x7f" "FLOWBC\n", 8);
  flow::PutFixed32(&file, 1);
  flow::PutFixed64(&file, payload.size());
  flow::PutFixed64(&file, flow::Checksum(payload));
  file += payload;
  flow::Result<flow::Module> module = flow::DeserializeModule(file);
  if (module.ok()) (void)flow::Disassemble(*module);
  return 0;
}
