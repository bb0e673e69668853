#include "store/leveldb_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>

namespace flow::store {

namespace {

constexpr uint64_t kBlockSize = 32768;
constexpr uint64_t kHeaderSize = 7;
enum RecordType : uint8_t { kFull = 1, kFirst = 2, kMiddle = 3, kLast = 4 };

}  // namespace

uint64_t CompleteLogPrefix(uint64_t size, const LogHeaderReader& read_header, uint64_t* zero_header_at) {
  if (zero_header_at) *zero_header_at = UINT64_MAX;
  uint64_t pos = 0;
  uint64_t complete = 0;  // the end of the last whole logical record
  bool inside = false;    // between a FIRST and its LAST
  while (pos < size) {
    uint64_t left_in_block = kBlockSize - pos % kBlockSize;
    if (left_in_block < kHeaderSize) {
      pos += left_in_block;  // padding
      if (!inside && pos <= size) complete = pos;
      continue;
    }
    if (pos + kHeaderSize > size) break;  // a torn header
    uint8_t h[kHeaderSize];
    if (!read_header(pos, h)) break;
    uint64_t length = h[4] | (uint64_t{h[5]} << 8);
    uint8_t type = h[6];
    if (type == 0 && length == 0) {  // LevelDB's kZeroType: it skips the rest of the block
      if (zero_header_at) *zero_header_at = pos;
      break;
    }
    // Anything malformed before the end is damage, not a torn tail: leave it for LevelDB
    // to report.
    if (kHeaderSize + length > left_in_block) return size;
    bool starts = type == kFull || type == kFirst;
    bool continues = type == kMiddle || type == kLast;
    if ((!starts && !continues) || starts == inside) return size;
    if (pos + kHeaderSize + length > size) break;  // a torn payload
    pos += kHeaderSize + length;
    inside = type == kFirst || type == kMiddle;
    if (!inside) complete = pos;
  }
  return complete;
}

uint64_t CompleteLogPrefix(const char* bytes, uint64_t size, uint64_t* zero_header_at) {
  return CompleteLogPrefix(
      size,
      [&](uint64_t pos, uint8_t* header) {
        std::memcpy(header, bytes + pos, kHeaderSize);
        return true;
      },
      zero_header_at);
}

namespace {

// Whether bytes [from, size) of file `fd` are all zero (*read_error: the errno of a failed read).
bool OnlyZerosFrom(int fd, uint64_t from, uint64_t size, int* read_error) {
  char buf[65536];
  while (from < size) {
    ssize_t n = ::pread(fd, buf, std::min<uint64_t>(sizeof buf, size - from), static_cast<off_t>(from));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *read_error = n < 0 ? errno : EIO;
      return false;
    }
    for (ssize_t i = 0; i < n; ++i)
      if (buf[i] != 0) return false;
    from += static_cast<uint64_t>(n);
  }
  return true;
}

}  // namespace

Status MeasureNewestLog(const std::string& dir, bool cut_torn_tail, uint64_t* complete_bytes, bool* appendable) {
  *complete_bytes = 0;
  *appendable = true;
  std::error_code ec;
  std::filesystem::path newest;
  uint64_t newest_number = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() <= 4 || name.compare(name.size() - 4, 4, ".log") != 0) continue;
    char* end = nullptr;
    uint64_t number = std::strtoull(name.c_str(), &end, 10);
    if (end != name.c_str() + name.size() - 4) continue;
    if (newest.empty() || number > newest_number) newest = e.path(), newest_number = number;
  }
  if (ec) return Status::IOError("cannot list the run database " + dir + ": " + ec.message());
  if (newest.empty()) return Status::Ok();

  int fd = ::open(newest.c_str(), (cut_torn_tail ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return Status::IOError("cannot open " + newest.string() + ": " + std::strerror(errno));
  struct stat st {};
  Status result;
  if (::fstat(fd, &st) != 0) {
    result = Status::IOError("cannot read the size of " + newest.string() + ": " + std::strerror(errno));
  } else if (st.st_size > 0) {
    // A pread per header, not a map of the file: a 10 MB log has about 330 headers, and
    // faulting in the pages of a map cost 5 ms of a 20 ms resume (bench/durable_bench (d)).
    uint64_t size = static_cast<uint64_t>(st.st_size);
    int read_error = 0;
    uint64_t zero_header_at;
    uint64_t keep = CompleteLogPrefix(
        size,
        [&](uint64_t pos, uint8_t* header) {
          ssize_t n;
          do n = ::pread(fd, header, kHeaderSize, static_cast<off_t>(pos));
          while (n < 0 && errno == EINTR);
          if (n == static_cast<ssize_t>(kHeaderSize)) return true;
          read_error = n < 0 ? errno : EIO;
          return false;
        },
        &zero_header_at);
    // Zeros to the end are a tail the disk never got: cut like a torn record. Anything
    // after them is left for LevelDB, and not appended to.
    if (read_error == 0 && zero_header_at != UINT64_MAX && !OnlyZerosFrom(fd, zero_header_at, size, &read_error)) {
      *appendable = false;
      keep = size;
    }
    if (read_error != 0) {
      result = Status::IOError("cannot read " + newest.string() + ": " + std::strerror(read_error));
    } else {
      if (cut_torn_tail && keep < size && ::ftruncate(fd, static_cast<off_t>(keep)) != 0)
        result = Status::IOError("cannot cut the torn end of " + newest.string() + ": " + std::strerror(errno));
      *complete_bytes = keep;
    }
  }
  ::close(fd);
  return result;
}

}  // namespace flow::store
