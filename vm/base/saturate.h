// Sums of a time and a duration that saturate instead of overflowing: a wait of INT64_MAX
// ms ends never, not in the past. Every deadline and wake time is computed with it.
#pragma once
#include <cstdint>

namespace flow {

inline int64_t AddSaturated(int64_t at, int64_t ms) {
  int64_t sum;
  if (__builtin_add_overflow(at, ms, &sum)) return ms > 0 ? INT64_MAX : INT64_MIN;
  return sum;
}

}  // namespace flow
