// The circuit breaker's state machine, without I/O: the runtime keeps one state per name
// in the store (shared by every run, updated under a file lock); ephemeral runs keep it in
// memory.
//
//   closed --(failures within window reach the limit)--> open
//   open --(cooldown passed: one trial admitted)--> half_open
//   half_open --(trial succeeds)--> closed      half_open --(trial fails)--> open
// A trial whose process died expires after another cooldown.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "vm/base/coding.h"
#include "vm/base/saturate.h"
#include "vm/vm.h"

namespace flow {

struct BreakerState {
  // On disk (docs/checkpoint.md, "Shared state"): do not change the values.
  enum class Phase : uint8_t { kClosed = 0, kOpen = 1, kHalfOpen = 2 };
  Phase phase = Phase::kClosed;
  std::vector<int64_t> failures;  // times of recent failures (closed)
  int64_t changed_at = 0;         // when it opened, or when the trial began

  // May a call go through now? Moves open -> half_open when the cooldown has passed.
  bool Admit(int64_t now, const VmHost::BreakerPolicy& p) {
    switch (phase) {
      case Phase::kClosed: return true;
      case Phase::kOpen:
        if (now < AddSaturated(changed_at, p.cooldown_ms)) return false;
        phase = Phase::kHalfOpen;
        changed_at = now;
        return true;
      case Phase::kHalfOpen:
        if (now < AddSaturated(changed_at, p.cooldown_ms)) return false;  // a trial is under way
        changed_at = now;                                     // its process died: a new trial
        return true;
    }
    return false;
  }

  void Record(int64_t now, const VmHost::BreakerPolicy& p, bool success) {
    if (phase == Phase::kHalfOpen) {
      phase = success ? Phase::kClosed : Phase::kOpen;
      changed_at = now;
      failures.clear();
      return;
    }
    if (success || phase != Phase::kClosed) return;
    failures.push_back(now);
    std::erase_if(failures, [&](int64_t t) { return AddSaturated(t, p.window_ms) <= now; });
    if (static_cast<int64_t>(failures.size()) >= p.failures) {
      phase = Phase::kOpen;
      changed_at = now;
      failures.clear();
    }
  }

  // state := phase:u8 changed_at:u64 n:varint failure_time:u64{n}   (docs/checkpoint.md, "Shared state")
  std::string Encode() const {
    std::string out;
    PutFixed8(&out, static_cast<uint8_t>(phase));
    PutFixed64(&out, static_cast<uint64_t>(changed_at));
    PutVarint(&out, failures.size());
    for (int64_t t : failures) PutFixed64(&out, static_cast<uint64_t>(t));
    return out;
  }
  bool Decode(std::string_view bytes) {
    Reader r(bytes);
    uint8_t ph = r.U8();
    changed_at = static_cast<int64_t>(r.U64());
    uint64_t n = r.Varint();
    if (r.failed() || ph > 2 || n > r.remaining()) return false;
    phase = static_cast<Phase>(ph);
    failures.clear();
    for (uint64_t i = 0; i < n; ++i) failures.push_back(static_cast<int64_t>(r.U64()));
    return !r.failed() && r.at_end();
  }
};

}  // namespace flow
