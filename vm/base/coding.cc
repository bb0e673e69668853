#include "vm/base/coding.h"

#include <xxhash.h>

namespace flow {

uint64_t Checksum(std::string_view bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

}  // namespace flow
