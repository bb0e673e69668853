// libFuzzer target: a packed run (runs/ID/packed, store/packed_run.cc) from untrusted
// bytes. They are sealed with a valid version and checksum first, so that mutations reach
// the decoder behind the checksum; what decodes is then read as a reader would: its run
// record, and its database files opened from memory, read only, every key scanned.
#include <cstdint>
#include <string>

#include "store/store.h"
#include "vm/base/record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string payload(reinterpret_cast<const char*>(data), size);
  flow::Result<flow::store::Store::PackedRun> run =
      flow::store::DecodePackedRun(flow::SealRecord(1, payload), "the fuzzed packed run");
  if (!run.ok()) return 0;
  (void)flow::store::DecodeRunRecord(run->record, "its record");
  flow::Result<std::unique_ptr<flow::store::RunDb>> db =
      flow::store::RunDb::Open("/fuzz/db", {.read_only = true, .files = &run->db_files});
  if (db.ok()) (void)(*db)->ScanAll([](std::string_view, std::string_view) {});
  return 0;
}
