// Schedule records, one sealed record each (docs/checkpoint.md, "Schedules"): a folder
// store keeps them as files schedules/NAME, a PostgreSQL store as rows. What they mean and
// when they fire is runtime/schedule.h's. Changes and firings hold the store's schedule
// lock (StoreImpl::LockSchedules), so that two processes never fire one tick twice.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vm/base/status.h"

namespace flow::store {

// What a tick does while the schedule's previous run has not ended. The values are on disk.
enum class Overlap : uint8_t { kSkip = 0, kQueue = 1, kAllow = 2 };
const char* OverlapName(Overlap o);
bool ParseOverlap(std::string_view name, Overlap* out);

struct ScheduleRecord {
  std::string name;
  std::string program;    // the file it was added from (shown; its code is code_hash)
  std::string code_hash;  // the bytecode its runs run, stored when it was added
  std::vector<std::pair<std::string, std::string>> args;
  std::string queue;      // the queue its runs are submitted to
  Overlap overlap = Overlap::kSkip;
  int64_t every_ms = 0;   // --every: ticks at the multiples of it since the epoch; 0 for --cron
  std::string cron;       // --cron: 5 fields, UTC ("" for --every)
  bool paused = false;
  int64_t start_ms = 0;   // no tick before it
  int64_t next_ms = 0;    // its next tick
  int64_t last_tick_ms = 0;     // the tick it last fired (0: none)
  std::string last_run_id;      // the run that tick submitted ("" if none, or skipped)
  int64_t created_ms = 0;
  std::string durability = "sync";
  bool virtual_time = false;
  uint64_t fired = 0;    // runs it submitted
  uint64_t skipped = 0;  // ticks it skipped (overlap skip) or missed (no worker ran)
};

// Schedule names are run ids of at most 40 characters (a run's id is NAME-TICK).
bool IsValidScheduleName(std::string_view name);

// Held while a process changes or fires schedules: a folder store's schedules/.lock
// (flock, exclusive), a PostgreSQL store's advisory lock.
class ScheduleLock {
 public:
  virtual ~ScheduleLock() = default;
  ScheduleLock(const ScheduleLock&) = delete;
  ScheduleLock& operator=(const ScheduleLock&) = delete;

 protected:
  ScheduleLock() = default;
};

std::string EncodeSchedule(const ScheduleRecord& r);
Result<ScheduleRecord> DecodeSchedule(std::string_view bytes, const std::string& what);
// The record of schedule `name`: Corruption if it is malformed or names another.
Result<ScheduleRecord> DecodeNamedSchedule(std::string_view bytes, const std::string& name);

}  // namespace flow::store
