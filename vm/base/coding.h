// Explicit little-endian encodings shared by every persisted format, and the checksum
// (XXH3-64 from libxxhash: fast, well kept, stronger than CRC32 against random damage).
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace flow {

inline void PutFixed8(std::string* out, uint8_t v) { out->push_back(static_cast<char>(v)); }
inline void PutFixed16(std::string* out, uint16_t v) {
  char b[2] = {static_cast<char>(v), static_cast<char>(v >> 8)};
  out->append(b, 2);
}
inline void PutFixed32(std::string* out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 4);
}
inline void PutFixed64(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 8);
}
inline void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
inline void PutBytes(std::string* out, std::string_view bytes) {
  PutVarint(out, bytes.size());
  out->append(bytes);
}

inline uint16_t DecodeFixed16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t DecodeFixed32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);  // the formats are little-endian, as is every machine we build for
  return v;
}
inline uint64_t DecodeFixed64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Reads from a byte span; every read checks the bounds and sets failed() instead of
// running past the end, so decoders of untrusted bytes stay simple.
class Reader {
 public:
  explicit Reader(std::string_view data) : p_(data.data()), end_(data.data() + data.size()) {}
  bool failed() const { return failed_; }
  bool at_end() const { return p_ == end_; }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }

  uint8_t U8() {
    if (!Need(1)) return 0;
    return static_cast<uint8_t>(*p_++);
  }
  uint32_t U32() {
    if (!Need(4)) return 0;
    uint32_t v = DecodeFixed32(reinterpret_cast<const uint8_t*>(p_));
    p_ += 4;
    return v;
  }
  uint64_t U64() {
    if (!Need(8)) return 0;
    uint64_t v = DecodeFixed64(reinterpret_cast<const uint8_t*>(p_));
    p_ += 8;
    return v;
  }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (!Need(1)) return 0;
      uint8_t b = static_cast<uint8_t>(*p_++);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    failed_ = true;
    return 0;
  }
  std::string_view Bytes() {
    uint64_t n = Varint();
    if (failed_ || !Need(n)) return {};
    std::string_view v(p_, n);
    p_ += n;
    return v;
  }
  std::string_view Raw(size_t n) {
    if (!Need(n)) return {};
    std::string_view v(p_, n);
    p_ += n;
    return v;
  }

 private:
  bool Need(uint64_t n) {
    if (failed_ || static_cast<uint64_t>(end_ - p_) < n) {
      failed_ = true;
      return false;
    }
    return true;
  }
  const char* p_;
  const char* end_;
  bool failed_ = false;
};

uint64_t Checksum(std::string_view bytes);

}  // namespace flow
