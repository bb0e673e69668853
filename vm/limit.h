// A shared limit's state and the rule that admits a body, without I/O: the runtime keeps
// one state per name in the store (shared by every run and process, updated under a file
// lock); ephemeral runs keep it in memory.
//
// `limit NAME (concurrency: N, rate: R, per: D) { body }`: at most N bodies at once and at
// most R body starts within any window D. A slot is held by (run, task, handler depth), so
// a run that resumes after a crash and enters the same body again finds its slot held
// (it is not taken twice). Waiters queue in order of arrival; a waiter that is not trying
// now (its run suspended or its process gone) keeps its place but does not hold up those
// behind it, and is first again when it comes back. A holder or waiter whose run has
// ended (or was deleted) is dropped.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "vm/base/coding.h"
#include "vm/vm.h"

namespace flow {

struct LimitState {
  // The version of Encode's format (docs/checkpoint.md, "Shared state").
  static constexpr uint8_t kFormat = 1;
  // A waiter that has not tried for this long (wall clock) is not trying now: those who
  // try poll more often (RetryAt).
  static constexpr int64_t kPresentMs = 2'000;
  // A wait longer than this is long: it is re-tried seldom (and suspends a durable run).
  static constexpr int64_t kLongWaitMs = 10'000;

  struct Entry {
    std::string run;      // run id ("" in an ephemeral run)
    std::string task;     // its spawn path ("" for the top level)
    uint32_t depth = 0;   // the number of handlers open under the limit's
    int64_t since_ms = 0; // wall clock: when it took its slot, or joined the line
    int64_t seen_ms = 0;  // wall clock: a waiter's last try
    bool Same(const Entry& o) const { return run == o.run && task == o.task && depth == o.depth; }
  };
  std::vector<Entry> holders;
  std::vector<Entry> waiting;   // in order of arrival
  std::vector<int64_t> starts;  // run's clock: body starts within the last window, ascending

  enum class Verdict : uint8_t {
    kAdmitted,  // the slot is the entrant's
    kInLine,    // someone ahead of it in line is trying now
    kFull,      // N bodies run
    kRate,      // R bodies started within the window: a slot frees at free_at
  };
  struct Decision {
    Verdict verdict = Verdict::kAdmitted;
    int64_t free_at = 0;    // kRate: when the window has room (run's clock)
    int64_t waited_ms = 0;  // how long the entrant has been in line (wall clock)
    std::string blocker;    // the run that holds it up (kInLine, kFull), when one does
  };
  // What the state cannot know: whether a run has ended (completed, failed, cancelled or
  // deleted), and whether a waiter is trying now (its run executing, its last try recent).
  struct World {
    std::function<bool(const std::string& run)> ended;
    std::function<bool(const Entry& waiter)> present;
  };

  Decision Enter(const Entry& who, int64_t now, int64_t wall, const VmHost::LimitPolicy& p, const World& world) {
    Decision d;
    for (const Entry& h : holders)
      if (h.Same(who)) return d;  // its own, taken before a crash
    if (p.rate > 0)
      std::erase_if(starts, [&](int64_t t) { return t <= now - p.per_ms; });
    auto me = std::find_if(waiting.begin(), waiting.end(), [&](const Entry& e) { return e.Same(who); });
    if (me == waiting.end()) {
      Entry e = who;
      e.since_ms = e.seen_ms = wall;
      waiting.push_back(e);
      me = waiting.end() - 1;
    }
    me->seen_ms = wall;
    d.waited_ms = std::max<int64_t>(0, wall - me->since_ms);
    // Those ahead: one trying now goes first; one whose run ended leaves the line.
    size_t at = static_cast<size_t>(me - waiting.begin());
    for (size_t i = 0; i < at;) {
      const Entry& e = waiting[i];
      if (world.present(e)) {
        d.verdict = Verdict::kInLine;
        d.blocker = e.run;
        return d;
      }
      if (world.ended(e.run)) {
        waiting.erase(waiting.begin() + static_cast<std::ptrdiff_t>(i));
        --at;
      } else {
        ++i;
      }
    }
    if (p.concurrency > 0 && static_cast<int64_t>(holders.size()) >= p.concurrency) {
      std::erase_if(holders, [&](const Entry& h) { return world.ended(h.run); });
      if (static_cast<int64_t>(holders.size()) >= p.concurrency) {
        d.verdict = Verdict::kFull;
        d.blocker = holders.front().run;
        return d;
      }
    }
    if (p.rate > 0 && static_cast<int64_t>(starts.size()) >= p.rate) {
      d.verdict = Verdict::kRate;
      d.free_at = starts[starts.size() - static_cast<size_t>(p.rate)] + p.per_ms;
      return d;
    }
    Entry held = *me;
    held.since_ms = held.seen_ms = wall;
    waiting.erase(waiting.begin() + static_cast<std::ptrdiff_t>(at));
    holders.push_back(held);
    if (p.rate > 0) starts.insert(std::upper_bound(starts.begin(), starts.end(), now), now);
    return d;
  }

  // Its slot, or its place in line, is given back. True if it had one.
  bool Leave(const Entry& who) {
    auto same = [&](const Entry& e) { return e.Same(who); };
    return std::erase_if(holders, same) + std::erase_if(waiting, same) > 0;
  }

  // When a refused entrant tries again (run's clock): when the rate window has room; else
  // a poll, every 10 to 200 ms while the wait is young, and past kLongWaitMs (a long wait,
  // which suspends a durable run) every 11 s to 1 min, the longer the longer it waited.
  static int64_t RetryAt(const Decision& d, int64_t now) {
    if (d.verdict == Verdict::kRate) return std::max(d.free_at, now + 1);
    if (d.waited_ms < kLongWaitMs) return now + std::clamp<int64_t>(d.waited_ms / 8, 10, 200);
    return now + std::clamp<int64_t>(d.waited_ms / 2, kLongWaitMs + 1'000, 60'000);
  }

  // state := format:u8 (1) n:varint holder{n} n:varint waiter{n} n:varint start:u64{n}
  // holder, waiter := run:bytes task:bytes depth:varint since_ms:u64 seen_ms:u64
  std::string Encode() const {
    std::string out;
    PutFixed8(&out, kFormat);
    auto entries = [&](const std::vector<Entry>& list) {
      PutVarint(&out, list.size());
      for (const Entry& e : list) {
        PutBytes(&out, e.run);
        PutBytes(&out, e.task);
        PutVarint(&out, e.depth);
        PutFixed64(&out, static_cast<uint64_t>(e.since_ms));
        PutFixed64(&out, static_cast<uint64_t>(e.seen_ms));
      }
    };
    entries(holders);
    entries(waiting);
    PutVarint(&out, starts.size());
    for (int64_t t : starts) PutFixed64(&out, static_cast<uint64_t>(t));
    return out;
  }
  bool Decode(std::string_view bytes) {
    Reader r(bytes);
    if (r.U8() != kFormat || r.failed()) return false;
    auto entries = [&](std::vector<Entry>* list) {
      uint64_t n = r.Varint();
      if (r.failed() || n > r.remaining()) return false;
      list->clear();
      for (uint64_t i = 0; i < n && !r.failed(); ++i) {
        Entry e;
        e.run = std::string(r.Bytes());
        e.task = std::string(r.Bytes());
        uint64_t depth = r.Varint();
        e.depth = static_cast<uint32_t>(depth);
        e.since_ms = static_cast<int64_t>(r.U64());
        e.seen_ms = static_cast<int64_t>(r.U64());
        if (depth > UINT32_MAX) return false;
        list->push_back(std::move(e));
      }
      return !r.failed();
    };
    if (!entries(&holders) || !entries(&waiting)) return false;
    uint64_t n = r.Varint();
    if (r.failed() || n > r.remaining()) return false;
    starts.clear();
    for (uint64_t i = 0; i < n; ++i) starts.push_back(static_cast<int64_t>(r.U64()));
    return !r.failed() && r.at_end() && std::is_sorted(starts.begin(), starts.end());
  }
};

}  // namespace flow
