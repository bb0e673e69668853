// libFuzzer target: arbitrary bytes as a checkpoint (header and heap objects) of a fixed
// program. Restoring must refuse or accept without crashing; an accepted state must
// encode again and show its frames.
#include <cstdint>
#include <memory>

#include "checkpoint_input.h"
#include "fuzz_vm.h"
#include "stdlib/stdlib.h"


extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string header;
  std::map<uint64_t, std::string> records;
  if (!flow::fuzz::DecodeInput(std::string_view(reinterpret_cast<const char*>(data), size), &header, &records)) return 0;
  flow::fuzz::NullHost host;
  flow::VM vm(&flow::fuzz::CompiledOnce(flow::fuzz::kFuzzProgram), &host, flow::stdlib::GetNatives());
  auto find = [&](uint64_t key, std::string* out) {
    auto it = records.find(key);
    if (it == records.end()) return false;
    *out = it->second;
    return true;
  };
  flow::Status s = vm.RestoreCheckpoint(
      header, [&](uint32_t id, std::string* out) { return find(flow::fuzz::InputKey(id, flow::CheckpointDelta::kObject), out); },
      [&](uint32_t id, uint32_t chunk, std::string* out) { return find(flow::fuzz::InputKey(id, chunk), out); });
  if (s.ok()) {
    std::string again;
    flow::fuzz::RecordMap records_again;
    vm.EncodeCheckpoint(true, &again, &records_again);
    (void)vm.InspectFrames();
  }
  return 0;
}
