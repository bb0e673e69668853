// The fuzz input format of fuzz_checkpoint, shared with the seed maker:
//   header:bytes (key:varint record:bytes)*
// key: a heap object's id, or id + (chunk + 1) << 32 for a chunk of a long list.
// against the program kFuzzProgram, so that a fuzzed checkpoint has real code to match
// (its `long` list is stored in chunks, and its tasks wait on timers).
#pragma once
#include <map>
#include <string>

#include "vm/base/coding.h"
#include "vm/vm.h"

namespace flow::fuzz {

inline constexpr const char* kFuzzProgram = R"(
fn make(k) {
  let seen = []
  return fn(x) {
    seen.push(x)
    return {k: k, n: len(seen), last: x}
  }
}
let f = make("a")
let m = {list: [1, 2.5, "s", null, true]}
let long = []
for i in range(300) { long.push(i - 150) }
for i in range(4) {
  try {
    let r = f(i)
    if i == 2 { throw error("two", "i is two", r) }
    print(r)
  } catch e {
    print(e.kind, e.data)
  }
}
print(m, len(long))
let ts = []
for i in range(3) { ts.push(spawn { sleep(i * 10); f(i) }) }
print(await ts)
print(parallel (limit: 2) for i, x in [1, 2, 3] { sleep(5); x + i })
)";

inline std::string EncodeInput(const std::string& header, const std::map<uint64_t, std::string>& objects) {
  std::string out;
  PutBytes(&out, header);
  for (const auto& [id, bytes] : objects) {
    PutVarint(&out, id);
    PutBytes(&out, bytes);
  }
  return out;
}

inline bool DecodeInput(std::string_view input, std::string* header, std::map<uint64_t, std::string>* objects) {
  Reader r(input);
  *header = std::string(r.Bytes());
  while (!r.failed() && !r.at_end()) {
    uint64_t id = r.Varint();
    std::string bytes(r.Bytes());
    if (!r.failed()) (*objects)[id] = std::move(bytes);
  }
  return !header->empty();
}

inline uint64_t InputKey(uint32_t id, uint32_t chunk) {
  return chunk == CheckpointDelta::kObject ? id : id + ((static_cast<uint64_t>(chunk) + 1) << 32);
}

// A checkpoint's records by InputKey, payloads only.
class RecordMap : public CheckpointDelta {
 public:
  void Freed(uint32_t id) override { records.erase(id); }
  void DroppedChunks(uint32_t id, uint32_t from, uint32_t to) override {
    for (uint32_t c = from; c < to; ++c) records.erase(InputKey(id, c));
  }
  void Put(uint32_t id, uint32_t chunk, std::string* record) override {
    records[InputKey(id, chunk)] = record->substr(kRecordEnvelope);
  }
  std::map<uint64_t, std::string> records;
};

}  // namespace flow::fuzz
