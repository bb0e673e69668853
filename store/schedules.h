// Schedule records: schedules/NAME, one sealed record each (docs/checkpoint.md,
// "Schedules"); what they mean and when they fire is runtime/schedule.h's. Changes and
// firings hold schedules/.lock (ScheduleLock), so that two processes never fire one tick twice.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
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

// Held (flock, exclusive) while a process changes or fires schedules.
class ScheduleLock {
 public:
  ~ScheduleLock();
  ScheduleLock(const ScheduleLock&) = delete;
  ScheduleLock& operator=(const ScheduleLock&) = delete;

 private:
  friend Result<std::unique_ptr<ScheduleLock>> LockSchedules(const std::string&);
  explicit ScheduleLock(int fd) : fd_(fd) {}
  int fd_;
};
// Waits for the lock (its holders hold it briefly).
Result<std::unique_ptr<ScheduleLock>> LockSchedules(const std::string& store_dir);

Status WriteSchedule(const std::string& store_dir, const ScheduleRecord& record);
// NotFound if there is no schedule NAME; Corruption if its record is damaged.
Result<ScheduleRecord> ReadSchedule(const std::string& store_dir, const std::string& name);
Status DeleteSchedule(const std::string& store_dir, const std::string& name);
// Every schedule, in name order; ones that cannot be read are passed to `unreadable`.
std::vector<ScheduleRecord> ListSchedules(const std::string& store_dir,
                                          const std::function<void(const std::string&, const Status&)>& unreadable);

std::string EncodeSchedule(const ScheduleRecord& r);
Result<ScheduleRecord> DecodeSchedule(std::string_view bytes, const std::string& what);

}  // namespace flow::store
