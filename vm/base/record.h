// The envelope of every persisted record: a format version and a checksum around the
// payload, so that a damaged or foreign record is recognised, never misread.
//
//   record := version:u8  checksum:u64 (XXH3-64 of payload)  payload   (docs/checkpoint.md)
#pragma once
#include <string>
#include <string_view>

#include "vm/base/coding.h"
#include "vm/base/status.h"

namespace flow {

inline std::string SealRecord(uint8_t version, std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + 9);
  PutFixed8(&out, version);
  PutFixed64(&out, Checksum(payload));
  out.append(payload);
  return out;
}

inline constexpr size_t kRecordEnvelope = 9;  // version:u8 checksum:u64

// Seals `size` bytes at `record` whose first kRecordEnvelope bytes were left for the envelope.
inline void FinishRecordAt(uint8_t version, char* record, size_t size) {
  uint64_t sum = Checksum(std::string_view(record + kRecordEnvelope, size - kRecordEnvelope));
  record[0] = static_cast<char>(version);
  for (int i = 0; i < 8; ++i) record[1 + i] = static_cast<char>(sum >> (8 * i));
}

// Building a record in place, without the copy SealRecord makes: BeginRecord (which keeps
// the buffer's capacity), append the payload, then FinishRecord().
inline void BeginRecord(std::string* record) { record->assign(9, '\0'); }
inline void FinishRecord(uint8_t version, std::string* record) {
  uint64_t sum = Checksum(std::string_view(*record).substr(9));
  (*record)[0] = static_cast<char>(version);
  for (int i = 0; i < 8; ++i) (*record)[1 + i] = static_cast<char>(sum >> (8 * i));
}

// Checks the envelope; on success *payload views the bytes inside `record`.
inline Status OpenRecord(std::string_view record, uint8_t version, std::string_view what,
                         std::string_view* payload) {
  if (record.size() < 9) return Status::Corruption(std::string(what) + " is truncated");
  uint8_t v = static_cast<uint8_t>(record[0]);
  if (v != version)
    return Status::NotSupported(std::string(what) + " has format version " + std::to_string(v) +
                                ", this flow reads version " + std::to_string(version));
  *payload = record.substr(9);
  if (Checksum(*payload) != DecodeFixed64(reinterpret_cast<const uint8_t*>(record.data() + 1)))
    return Status::Corruption(std::string(what) + " fails its checksum");
  return Status::Ok();
}

}  // namespace flow
