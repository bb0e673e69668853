// Operations on values that the VM and the standard library share: equality, ordering,
// text and JSON forms.
#pragma once
#include <string>

#include "vm/base/utf8.h"
#include "vm/heap.h"
#include "vm/value.h"

namespace flow {

// Structural equality (lists and maps by value, 1 == 1.0). False, with *too_deep set, if
// the values nest deeper than kMaxValueDepth (or are cyclic).
bool ValuesEqual(const Heap& heap, Value a, Value b, bool* too_deep);

inline constexpr int kMaxValueDepth = 1000;

// Orders two numbers exactly: -1, 0 or 1, or kUnordered when either is NaN. An int and a
// float compare by value, not by rounding the int to a double (2^53 + 1 != 2^53 as floats).
inline constexpr int kUnordered = 2;
int CompareNumbers(Value a, Value b);

// Shortest text that reads back as the same double, always with a `.` or an exponent.
std::string FormatFloat(double f);

// Compact JSON. False (with *error set) for values JSON cannot hold or nesting deeper than
// kMaxValueDepth. Functions encode as "<fn>" when `lenient` (for print and str).
bool EncodeJson(const Heap& heap, Value v, bool lenient, std::string* out, std::string* error);
// Strict JSON with secrets' real values: only for a request body that goes over the wire.
bool EncodeJsonRevealed(const Heap& heap, Value v, std::string* out, std::string* error);

// What print and str show: strings raw, secrets masked, everything else as compact JSON.
bool ToDisplayString(const Heap& heap, Value v, std::string* out, std::string* error);
// The same, but a secret's real value: only for what goes over the wire to the effect it
// is given to (the rule is in stdlib/secrets.h).
bool RevealString(const Heap& heap, Value v, std::string* out, std::string* error);


}  // namespace flow
