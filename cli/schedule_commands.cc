// flow schedule add|list|pause|resume|delete|tick (runtime/schedule.h).
#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/options.h"
#include "cli/queue_commands.h"
#include "runtime/schedule.h"
#include "store/keys.h"
#include "store/schedules.h"

namespace flow::cli {

namespace {


struct ScheduleArgs {
  std::string name;
  std::string every, cron, overlap = "skip", queue = store::kDefaultQueue, start, now;
  bool json = false;
};

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// A time on the command line: YYYY-MM-DDTHH:MM[:SS]Z (UTC), or ms since the epoch.
bool ParseTime(const std::string& text, int64_t* ms) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos && text.size() <= 15) {
    *ms = std::stoll(text);
    return true;
  }
  std::tm tm{};
  int year, month, day, hour, minute, second = 0;
  char z = 0;
  int n = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c%n", &year, &month, &day, &hour, &minute, &second, &z, &n) != 7 &&
      (second = 0, std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d%c%n", &year, &month, &day, &hour, &minute, &z, &n) != 6))
    return false;
  if (z != 'Z' || static_cast<size_t>(n) != text.size() || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 ||
      minute > 59 || second > 59)
    return false;
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  *ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  return true;
}

std::string FormatUtc(int64_t ms) {
  if (ms <= 0 || ms == INT64_MAX) return "-";
  std::time_t t = ms / 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
}

bool ReadTimeOption(const char* command, const char* option, const std::string& text, int64_t* ms) {
  if (text.empty() || ParseTime(text, ms)) return true;
  fmt::print(stderr, "flow schedule {}: {} takes a UTC time YYYY-MM-DDTHH:MM[:SS]Z or ms since the epoch, got `{}`\n",
             command, option, text);
  return false;
}

int AddCommand(const RunOptions& run, const ScheduleArgs& a) {
  runtime::ScheduleOptions options;
  options.name = a.name;
  options.queue = a.queue;
  if (a.every.empty() == a.cron.empty()) {
    fmt::print(stderr, "flow schedule add: give one of --every D and --cron \"m h dom mon dow\"\n");
    return kExitUsage;
  }
  std::string error;
  if (!a.every.empty() && !ParseDuration(a.every, &options.every_ms, &error)) {
    fmt::print(stderr, "flow schedule add: --every {}\n", error);
    return kExitUsage;
  }
  options.cron = a.cron;
  if (!store::ParseOverlap(a.overlap, &options.overlap)) {
    fmt::print(stderr, "flow schedule add: --overlap is skip, queue or allow, got `{}`\n", a.overlap);
    return kExitUsage;
  }
  if (!ReadTimeOption("add", "--start", a.start, &options.start_ms)) return kExitUsage;
  Module module;
  if (int code = PrepareStart(run, "schedule add", &options.start, &module); code != kExitOk) return code;
  store::ScheduleRecord added;
  Status s = runtime::AddSchedule(options, module, NowMs(), &added);
  if (!s.ok()) return Fail(s, "schedule add");
  fmt::print(stderr, "flow: schedule {} added; its first tick is at {}\n", added.name, FormatUtc(added.next_ms));
  return kExitOk;
}

std::string SpecText(const store::ScheduleRecord& s) {
  if (!s.cron.empty()) return "cron " + s.cron;
  return s.every_ms % 1000 ? fmt::format("every {}ms", s.every_ms) : fmt::format("every {}s", s.every_ms / 1000);
}

int ListCommand(const std::string& store_dir, bool json) {
  int code = kExitOk;
  std::vector<store::ScheduleRecord> schedules;
  Result<store::Store> st = store::Store::Open(store_dir, false);
  if (!st.ok() && !st.status().IsNotFound()) return Fail(st.status(), "");
  if (st.ok())
    schedules = st->ListSchedules([&](const std::string& name, const Status& s) {
      fmt::print(stderr, "flow: schedule {}: {}\n", Printable(name), Printable(s.message()));
      code = kExitCorrupt;
    });
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : schedules)
      out.push_back({{"name", s.name}, {"program", s.program}, {"every_ms", s.every_ms}, {"cron", s.cron},
                     {"overlap", store::OverlapName(s.overlap)}, {"queue", s.queue}, {"paused", s.paused},
                     {"next_ms", s.next_ms == INT64_MAX ? nlohmann::json() : nlohmann::json(s.next_ms)},
                     {"last_tick_ms", s.last_tick_ms}, {"last_run", s.last_run_id}, {"fired", s.fired},
                     {"skipped", s.skipped}, {"start_ms", s.start_ms}});
    fmt::print("{}\n", out.dump(2));
    return code;
  }
  fmt::print("{:<20} {:<22} {:<7} {:<7} {:<21} {:<36} {}\n", "NAME", "SPEC", "OVERLAP", "STATE", "NEXT", "LAST RUN", "PROGRAM");
  for (const auto& s : schedules)
    fmt::print("{:<20} {:<22} {:<7} {:<7} {:<21} {:<36} {}\n", s.name, SpecText(s), store::OverlapName(s.overlap),
               s.paused ? "paused" : "active", s.paused ? "-" : FormatUtc(s.next_ms),
               s.last_run_id.empty() ? "-" : s.last_run_id, Printable(s.program));
  return code;
}

int PauseCommand(const std::string& store_dir, const std::string& name, bool paused) {
  store::ScheduleRecord s;
  if (Status st = runtime::PauseSchedule(store_dir, name, paused, NowMs(), &s); !st.ok()) return Fail(st, "schedule");
  if (paused) fmt::print(stderr, "flow: schedule {} paused\n", name);
  else fmt::print(stderr, "flow: schedule {} resumed; its next tick is at {}\n", name, FormatUtc(s.next_ms));
  return kExitOk;
}

int DeleteScheduleCommand(const std::string& store_dir, const std::string& name) {
  if (Status s = runtime::RemoveSchedule(store_dir, name); !s.ok()) return Fail(s, "schedule");
  fmt::print(stderr, "flow: schedule {} deleted (the runs it submitted stay)\n", name);
  return kExitOk;
}

int TickCommand(const std::string& store_dir, const std::string& now_text) {
  int64_t now = NowMs();
  if (!ReadTimeOption("tick", "--now", now_text, &now)) return kExitUsage;
  Result<store::Store> st = store::Store::Open(store_dir, false);
  if (!st.ok()) return Fail(st.status(), "");
  std::vector<runtime::ScheduleFiring> fired;
  if (Status s = runtime::FireDueSchedules(*st, now, &fired); !s.ok()) return Fail(s, "schedule tick");
  int code = kExitOk;
  for (const auto& f : fired) {
    PrintScheduleFiring(f);
    if (f.outcome == runtime::ScheduleFiring::Outcome::kFailed) code = f.error.IsCorruption() ? kExitCorrupt : kExitUsage;
    else if (f.outcome != runtime::ScheduleFiring::Outcome::kSkipped) fmt::print("{}\n", f.run_id);
  }
  return code;
}

}  // namespace

void PrintScheduleFiring(const runtime::ScheduleFiring& f) {
  std::string missed = f.missed ? fmt::format(" ({} earlier tick(s) missed while no worker ran: not run)", f.missed) : "";
  switch (f.outcome) {
    case runtime::ScheduleFiring::Outcome::kSubmitted:
      fmt::print(stderr, "flow schedule: {} tick {}: run {} queued{}\n", f.schedule, FormatUtc(f.tick_ms), f.run_id, missed);
      break;
    case runtime::ScheduleFiring::Outcome::kAlreadySubmitted:
      fmt::print(stderr, "flow schedule: {} tick {}: run {} was already queued{}\n", f.schedule, FormatUtc(f.tick_ms),
                 f.run_id, missed);
      break;
    case runtime::ScheduleFiring::Outcome::kSkipped:
      fmt::print(stderr, "flow schedule: {} tick {}: skipped, its previous run {} has not ended (--overlap skip){}\n",
                 f.schedule, FormatUtc(f.tick_ms), f.run_id, missed);
      break;
    case runtime::ScheduleFiring::Outcome::kFailed:
      fmt::print(stderr, "flow schedule: {}: {}\n", Printable(f.schedule), Printable(f.error.message()));
      break;
  }
}

Dispatch AddScheduleCommands(CLI::App& app, RunOptions& run) {
  auto a = std::make_shared<ScheduleArgs>();
  CLI::App* schedule = app.add_subcommand("schedule", "runs of a program on a schedule (--every D or --cron), started by flow worker");
  schedule->require_subcommand(1);
  CLI::App* add = schedule->add_subcommand("add", "add schedule NAME: at each tick a worker starts a run of FILE");
  add->add_option("NAME", a->name, "the schedule's name (its runs are NAME-YYYYMMDDTHHMMSSZ)")->required();
  add->add_option("FILE", run.file, "a .flow script or a .flowc bytecode file (stored now: later edits are not seen)")->required();
  add->add_option("--every", a->every, "a tick every D (30s, 5m, 1h, 1d), at the multiples of D since the epoch (UTC)")
      ->check(DurationValue());
  add->add_option("--cron", a->cron, "a tick at each minute of \"m h dom mon dow\" (UTC; numbers, A-B, lists, */S, *)");
  add->add_option("--arg", run.args, "a program argument NAME=VALUE, read as args.NAME")->take_all();
  add->add_option("--overlap", a->overlap,
                  "while its previous run has not ended, a tick: skip (default: starts nothing), queue (a run that "
                  "starts once the previous one ends) or allow (a run that starts at once)");
  add->add_option("--queue", a->queue, "the queue of its runs (default: default)");
  add->add_option("--start", a->start, "no tick before this time (YYYY-MM-DDTHH:MM[:SS]Z or ms since the epoch)");
  add->add_flag("--virtual-time", run.virtual_time, "its runs skip time: durable waits fire at once");
  add->add_option("--durability", run.durability, "sync (default) or async")->check(CLI::IsMember({"sync", "async"}));
  add->add_option("--store", run.store, "the store folder (default ./.flow, or FLOW_STORE); made if it does not exist");
  CLI::App* list = schedule->add_subcommand("list", "each schedule: its spec, overlap policy, state, next tick, last run");
  list->add_flag("--json", a->json, "a JSON array of objects, for machines");
  list->add_option("--store", run.store, kStoreHelp);
  auto named = [&](const char* name, const char* description) {
    CLI::App* cmd = schedule->add_subcommand(name, description);
    cmd->add_option("NAME", a->name, "the schedule")->required();
    cmd->add_option("--store", run.store, kStoreHelp);
    return cmd;
  };
  CLI::App* pause = named("pause", "fire nothing until flow schedule resume NAME");
  CLI::App* resume = named("resume", "fire again from the next tick after now (the ticks of the pause are not made up)");
  CLI::App* remove = named("delete", "remove the schedule (the runs it submitted stay)");
  CLI::App* tick = schedule->add_subcommand(
      "tick", "fire the schedules due at --now (default: now), as a worker does; prints the runs queued. For tests and "
              "catching up by hand: with --now T, schedules are tested without waiting");
  tick->add_option("--now", a->now, "the time to fire as of (YYYY-MM-DDTHH:MM[:SS]Z or ms since the epoch)");
  tick->add_option("--store", run.store, kStoreHelp);
  return [=, &run]() -> std::optional<int> {
    if (add->parsed()) return AddCommand(run, *a);
    if (list->parsed()) return ListCommand(run.store, a->json);
    if (pause->parsed()) return PauseCommand(run.store, a->name, true);
    if (resume->parsed()) return PauseCommand(run.store, a->name, false);
    if (remove->parsed()) return DeleteScheduleCommand(run.store, a->name);
    if (tick->parsed()) return TickCommand(run.store, a->now);
    return std::nullopt;
  };
}

}  // namespace flow::cli
