// Schedules (runtime/schedule.h).
#include "runtime/schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>

#include "runtime/cron.h"
#include "runtime/program_file.h"
#include "runtime/queue.h"
#include "store/queues.h"
#include "vm/base/floor_div.h"

namespace flow::runtime {

namespace {

// The latest tick of `s` at or before `now_ms`, given that s.next_ms is one; *missed: the
// ticks between them.
int64_t LatestDueTick(const store::ScheduleRecord& s, int64_t now_ms, uint64_t* missed) {
  *missed = 0;
  if (s.every_ms > 0) {
    int64_t latest = FloorDiv(now_ms, s.every_ms) * s.every_ms;
    if (latest < s.next_ms) return s.next_ms;
    *missed = static_cast<uint64_t>((latest - s.next_ms) / s.every_ms);
    return latest;
  }
  int64_t tick = s.next_ms;
  for (std::optional<int64_t> n = TickAtOrAfter(s, tick + 1); n && *n <= now_ms; n = TickAtOrAfter(s, tick + 1)) {
    tick = *n;
    ++*missed;
  }
  return tick;
}

// Is the run `id` (the previous of a schedule) still going?
bool StillGoing(const store::Store& st, const std::string& id) {
  if (id.empty()) return false;
  Result<store::RunRecord> r = st.ReadRun(id);
  return r.ok() && !RunHasEnded(*r);
}

// Fires schedule `s` (due at now_ms) and advances it; `s` is written back by the caller.
ScheduleFiring Fire(store::Store& st, store::ScheduleRecord& s, int64_t now_ms) {
  ScheduleFiring f;
  f.schedule = s.name;
  f.tick_ms = LatestDueTick(s, now_ms, &f.missed);
  s.skipped += f.missed;
  const bool previous_going = StillGoing(st, s.last_run_id);
  if (s.overlap == store::Overlap::kSkip && previous_going) {
    f.outcome = ScheduleFiring::Outcome::kSkipped;
    f.run_id = s.last_run_id;
    ++s.skipped;
  } else {
    store::RunRecord r;
    r.id = TickRunId(s.name, f.tick_ms);
    r.program = s.program;
    r.code_hash = s.code_hash;
    r.args = s.args;
    r.durability = s.durability;
    r.virtual_time = s.virtual_time;
    r.created_ms = r.updated_ms = WallMs();
    r.queue = s.queue;
    if (s.overlap == store::Overlap::kQueue && previous_going) r.after_run = s.last_run_id;
    r.detail = fmt::format("queued in {} by schedule {}", s.queue, s.name);
    f.run_id = r.id;
    Status created = CreateQueuedRun(st, std::move(r));
    if (created.ok()) {
      f.outcome = ScheduleFiring::Outcome::kSubmitted;
      ++s.fired;
    } else if (st.RunExists(f.run_id)) {
      f.outcome = ScheduleFiring::Outcome::kAlreadySubmitted;  // a firing that died before advancing it
    } else {
      f.outcome = ScheduleFiring::Outcome::kFailed;
      f.error = created;
      return f;  // not advanced: the next pass tries again
    }
    s.last_run_id = f.run_id;
  }
  s.last_tick_ms = f.tick_ms;
  s.next_ms = TickAtOrAfter(s, std::max(now_ms, f.tick_ms) + 1).value_or(INT64_MAX);
  return f;
}

Status CheckSpec(const store::ScheduleRecord& s) {
  if ((s.every_ms > 0) == !s.cron.empty()) return Status::InvalidArgument("a schedule takes one of --every and --cron");
  if (s.every_ms > 0 && s.every_ms < 1000) return Status::InvalidArgument("--every is at least 1s");
  if (!s.cron.empty()) return ParseCron(s.cron).status();
  return Status::Ok();
}

}  // namespace

std::optional<int64_t> TickAtOrAfter(const store::ScheduleRecord& s, int64_t ms) {
  ms = std::max(ms, s.start_ms);
  if (s.every_ms > 0) return FloorDiv(ms + s.every_ms - 1, s.every_ms) * s.every_ms;
  Result<CronSpec> spec = ParseCron(s.cron);
  if (!spec.ok()) return std::nullopt;
  return CronAtOrAfter(*spec, ms);
}

std::string TickRunId(const std::string& name, int64_t tick_ms) {
  std::time_t t = FloorDiv(tick_ms, 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{}-{:04}{:02}{:02}T{:02}{:02}{:02}Z", name, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
}

Status AddSchedule(const ScheduleOptions& options, const Module& program, int64_t now_ms, store::ScheduleRecord* added) {
  if (!store::IsValidScheduleName(options.name))
    return Status::InvalidArgument(fmt::format(
        "`{}` is not a schedule name (1 to 40 letters, digits, . _ -; not starting with - or .)", options.name));
  if (!store::IsValidQueueName(options.queue))
    return Status::InvalidArgument(fmt::format("`{}` is not a queue name", options.queue));
  store::ScheduleRecord& s = *added;
  s = store::ScheduleRecord{};
  s.name = options.name;
  s.program = AbsolutePath(options.start.file);
  s.args = options.start.args;
  s.queue = options.queue;
  s.overlap = options.overlap;
  s.every_ms = options.every_ms;
  s.cron = options.cron;
  s.start_ms = options.start_ms;
  s.created_ms = now_ms;
  s.durability = options.start.sync ? "sync" : "async";
  s.virtual_time = options.start.virtual_time;
  if (Status c = CheckSpec(s); !c.ok()) return c;
  Result<store::Store> st = store::Store::Open(options.start.store_dir, true);
  if (!st.ok()) return InContext(st.status(), "store " + store::PrintableLocation(options.start.store_dir));
  Result<std::unique_ptr<store::CodeLock>> code_lock = st->LockCode(false);  // until the schedule names it
  if (!code_lock.ok()) return code_lock.status();
  Result<std::string> hash = st->PutCode(SerializeModule(program));
  if (!hash.ok()) return hash.status();
  if (options.start.source) {
    if (Status p = st->PutSource(*hash, *options.start.source); !p.ok()) return p;
  }
  s.code_hash = *hash;
  s.next_ms = TickAtOrAfter(s, now_ms + 1).value_or(INT64_MAX);
  Result<std::unique_ptr<store::ScheduleLock>> lock = st->LockSchedules();
  if (!lock.ok()) return lock.status();
  if (Result<store::ScheduleRecord> there = st->ReadSchedule(s.name); there.ok() || there.status().IsCorruption())
    return Status::InvalidArgument(
        fmt::format("a schedule named {} exists (flow schedule delete {} first, to replace it)", s.name, s.name));
  else if (!there.status().IsNotFound())
    return there.status();  // the store could not say (a lost connection)
  return st->WriteSchedule(s);
}

Status PauseSchedule(const std::string& store_dir, const std::string& name, bool paused, int64_t now_ms,
                     store::ScheduleRecord* changed) {
  Result<store::Store> st = store::Store::Open(store_dir, false);
  if (!st.ok()) return st.status();
  Result<std::unique_ptr<store::ScheduleLock>> lock = st->LockSchedules();
  if (!lock.ok()) return lock.status();
  Result<store::ScheduleRecord> s = st->ReadSchedule(name);
  if (!s.ok()) return s.status();
  if (s->paused && !paused) s->next_ms = TickAtOrAfter(*s, now_ms + 1).value_or(INT64_MAX);
  s->paused = paused;
  *changed = *s;
  return st->WriteSchedule(*s);
}

Status RemoveSchedule(const std::string& store_dir, const std::string& name) {
  Result<store::Store> st = store::Store::Open(store_dir, false);
  if (!st.ok()) return st.status();
  if (!store::IsValidScheduleName(name)) return Status::InvalidArgument(fmt::format("`{}` is not a schedule name", name));
  Result<std::unique_ptr<store::ScheduleLock>> lock = st->LockSchedules();
  if (!lock.ok()) return lock.status();
  return st->DeleteSchedule(name);
}

Status FireDueSchedules(store::Store& st, int64_t now_ms, std::vector<ScheduleFiring>* fired) {
  fired->clear();
  if (std::optional<int64_t> next = NextScheduleWakeMs(st); !next || *next > now_ms) return Status::Ok();  // no lock
  Result<std::unique_ptr<store::ScheduleLock>> lock = st.LockSchedules();
  if (!lock.ok()) return lock.status();
  auto unreadable = [&](const std::string& name, const Status& why) {
    ScheduleFiring f;
    f.schedule = name;
    f.outcome = ScheduleFiring::Outcome::kFailed;
    f.error = why;
    fired->push_back(std::move(f));
  };
  // Read again under the lock: another worker may have fired them since.
  for (store::ScheduleRecord& s : st.ListSchedules(unreadable)) {
    if (s.paused || s.next_ms > now_ms) continue;
    fired->push_back(Fire(st, s, now_ms));
    if (fired->back().outcome == ScheduleFiring::Outcome::kFailed) continue;
    if (Status w = st.WriteSchedule(s); !w.ok()) {
      fired->back().outcome = ScheduleFiring::Outcome::kFailed;
      fired->back().error = w;
    }
  }
  return Status::Ok();
}

std::optional<int64_t> NextScheduleWakeMs(const store::Store& st) {
  std::optional<int64_t> next;
  for (const store::ScheduleRecord& s : st.ListSchedules([](const std::string&, const Status&) {}))
    if (!s.paused && s.next_ms != INT64_MAX) next = std::min(next.value_or(INT64_MAX), s.next_ms);
  return next;
}

}  // namespace flow::runtime
