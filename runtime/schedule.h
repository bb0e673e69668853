// Schedules (flow schedule): a program, its arguments and a spec (--every D or --cron
// EXPR, UTC) by name, in the store (store/schedules.h). When a tick comes, a worker calls
// FireDueSchedules, which submits a queued run (runtime/queue.h) named NAME-TICK, so that
// two workers firing one tick create one run; ticks missed while no worker ran fire once,
// as the latest of them. The overlap policy says what a tick does while the schedule's
// previous run has not ended: skip (nothing), queue (a run that starts once the previous
// one has ended), allow (a run that starts regardless).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/runtime.h"
#include "store/schedules.h"

namespace flow::runtime {

// The first tick of `s` at or after `ms` (ms since the epoch): --every D ticks at the
// multiples of D since the epoch, --cron at the minutes it matches; none before
// s.start_ms. nullopt if there is none (a cron expression that is not valid).
std::optional<int64_t> TickAtOrAfter(const store::ScheduleRecord& s, int64_t ms);
// The id of the run the tick `tick_ms` of schedule `name` submits: NAME-YYYYMMDDTHHMMSSZ.
std::string TickRunId(const std::string& name, int64_t tick_ms);

// flow schedule add. `start`: the program's file, arguments, store, durability, virtual
// time and source as flow run takes them (its run id and budgets are not used).
struct ScheduleOptions {
  std::string name;
  StartOptions start;
  std::string queue = store::kDefaultQueue;
  store::Overlap overlap = store::Overlap::kSkip;
  int64_t every_ms = 0;  // one of every_ms and cron
  std::string cron;
  int64_t start_ms = 0;  // no tick before it
};
// Stores the program and the schedule, its next tick the first after now (and at or after
// start_ms). InvalidArgument: a bad name, spec or queue, or a schedule of that name exists.
Status AddSchedule(const ScheduleOptions& options, const Module& program, int64_t now_ms, store::ScheduleRecord* added);
// flow schedule pause / resume: a paused schedule fires nothing; resumed, its next tick is
// the first after now (the ticks of the pause are not made up).
Status PauseSchedule(const std::string& store_dir, const std::string& name, bool paused, int64_t now_ms,
                     store::ScheduleRecord* changed);
// flow schedule delete: the runs it submitted stay.
Status RemoveSchedule(const std::string& store_dir, const std::string& name);

// What one due schedule did.
struct ScheduleFiring {
  enum class Outcome { kSubmitted, kAlreadySubmitted, kSkipped, kFailed };
  std::string schedule;
  int64_t tick_ms = 0;
  uint64_t missed = 0;  // earlier ticks that came while no worker ran: not run (the latest stands for them)
  Outcome outcome = Outcome::kSubmitted;
  std::string run_id;   // the run submitted; kSkipped: the previous run, still going
  Status error;         // kFailed: why (a damaged schedule record, a store error)
};
// For a worker (and flow schedule tick): every schedule not paused whose next tick is at or
// before `now_ms` fires once (FireDueSchedules is called with the wall clock; tests give
// another), and its next tick becomes the first after now_ms. Not ok only if the store's
// schedules cannot be locked; each schedule's trouble is in its firing.
Status FireDueSchedules(store::Store& st, int64_t now_ms, std::vector<ScheduleFiring>* fired);
// When the next schedule is due (ms since the epoch): a worker sleeps until then at most.
// nullopt if no schedule is active.
std::optional<int64_t> NextScheduleWakeMs(const store::Store& st);

}  // namespace flow::runtime
