// Floored integer division: the quotient rounded toward negative infinity, as Flow's `//`
// defines it and as the clock arithmetic of schedules needs (a time before 1970 still
// falls in the right minute). The caller rules out b == 0 and INT64_MIN / -1.
#pragma once
#include <cstdint>

namespace flow {

inline int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace flow
