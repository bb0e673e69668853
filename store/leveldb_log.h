// The tail of a LevelDB write-ahead log, for reopening a database killed mid-write.
//
// LevelDB's log format (leveldb/doc/log_format.md): 32 KiB blocks; each physical record is
// a 7-byte header (masked CRC32C: 4, length: 2 little-endian, type: 1) and its payload; a
// logical record (one WriteBatch) is a FULL record, or FIRST, MIDDLE..., LAST across blocks;
// fewer than 7 bytes left in a block are zero padding. A process killed while appending
// leaves a prefix of what it wrote: the last logical record may be incomplete.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "vm/base/status.h"

namespace flow::store {

// Copies the 7-byte record header at offset `pos` of a log into `header`; false if it cannot.
using LogHeaderReader = std::function<bool(uint64_t pos, uint8_t* header)>;

// The length of the longest prefix of a log of `size` bytes that ends at the end of a
// logical record (or of the padding after one), reading only the record headers (one per
// 32 KiB block for big records): the checksums are LevelDB's to verify when it replays the
// log. A header that cannot be read ends the prefix there. A zero header (type 0, length
// 0: what a power loss can leave where the file grew but its data never reached the disk)
// ends it too, and *zero_header_at (if given) says where it is, else stays UINT64_MAX:
// LevelDB skips the rest of such a block without a word, so nothing may be appended
// after one (the caller checks that only zeros follow before cutting them off).
uint64_t CompleteLogPrefix(uint64_t size, const LogHeaderReader& read_header, uint64_t* zero_header_at = nullptr);
// The same, for a log in memory.
uint64_t CompleteLogPrefix(const char* bytes, uint64_t size, uint64_t* zero_header_at = nullptr);

// The size of the complete records of the newest log of the database in `dir` (the log
// LevelDB replays last and appends to when it reuses it); 0 when there is no log. With
// `cut_torn_tail`, the file is cut to that size. *appendable is false when LevelDB must
// not append to the log (a zero header followed by anything but zeros: it would skip what
// is appended after it): then nothing is cut. The caller holds the database's lock.
Status MeasureNewestLog(const std::string& dir, bool cut_torn_tail, uint64_t* complete_bytes, bool* appendable);

}  // namespace flow::store
