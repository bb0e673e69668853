// flow worker: the pool of runtime/worker.h, its status lines and exit code.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/stop_signal.h"
#include "runtime/worker.h"
#include "stdlib/stdlib.h"

namespace flow::cli {

namespace {

std::string ClockText(int64_t wall_ms) {
  std::time_t t = wall_ms / 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:02}:{:02}:{:02}.{:03}", tm.tm_hour, tm.tm_min, tm.tm_sec, wall_ms % 1000);
}

// One line per change: on stderr for people, or a JSON object per line on stdout (--json).
class WorkerPrinter : public runtime::WorkerListener {
 public:
  explicit WorkerPrinter(bool json) : json_(json) {}
  void Report(const runtime::WorkerReport& r) override {
    if (json_) {
      nlohmann::json j = {{"event", runtime::WorkerEventName(r.event)}, {"time_ms", r.wall_ms}};
      if (!r.run_id.empty()) j["run"] = r.run_id;
      if (!r.detail.empty()) j["detail"] = r.detail;
      if (r.pid) j["pid"] = r.pid;
      if (r.crashes) j["crashes"] = r.crashes;
      if (r.retry_in_ms) j["retry_in_ms"] = r.retry_in_ms;
      std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fflush(stdout);
      return;
    }
    std::string what = runtime::WorkerEventName(r.event);
    std::string text;
    switch (r.event) {
      case runtime::WorkerEvent::kStarted: text = fmt::format("started ({}), pid {}", r.detail, r.pid); break;
      case runtime::WorkerEvent::kCrashed:
        text = fmt::format("crashed ({}); crash {} in a row, retried in {} ms", r.detail, r.crashes, r.retry_in_ms);
        if (r.retry_in_ms == 0) text = fmt::format("crashed ({}); crash {} in a row", r.detail, r.crashes);
        break;
      case runtime::WorkerEvent::kPoisoned:
        text = fmt::format("poisoned after {} crashes in a row ({}); flow inspect shows its last stderr, "
                           "flow resume {} tries it again", r.crashes, r.detail, r.run_id);
        break;
      default: text = r.detail.empty() ? what : fmt::format("{} ({})", what, r.detail);
    }
    if (r.run_id.empty()) fmt::print(stderr, "flow worker {}: {}\n", ClockText(r.wall_ms), text);
    else fmt::print(stderr, "flow worker {}: run {} {}\n", ClockText(r.wall_ms), r.run_id, text);
  }
  void ScheduleFired(const runtime::ScheduleFiring& f) override {
    if (!json_) return PrintScheduleFiring(f);
    static const char* const kOutcome[] = {"submitted", "already_submitted", "skipped", "failed"};
    nlohmann::json j = {{"event", "schedule"}, {"schedule", f.schedule}, {"tick_ms", f.tick_ms},
                        {"outcome", kOutcome[static_cast<int>(f.outcome)]}};
    if (!f.run_id.empty()) j["run"] = f.run_id;
    if (f.missed) j["missed"] = f.missed;
    if (!f.error.ok()) j["detail"] = f.error.message();
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
  }
  void ChildStderr(const std::string& run_id, std::string_view line) override {
    fmt::print(stderr, "  [{}] {}\n", run_id, line);
  }

 private:
  bool json_;
};

}  // namespace

int WorkerCommand(const WorkerCommandOptions& o) {
  if (o.concurrency < 1) {
    fmt::print(stderr, "flow worker: --concurrency takes a number of runs of at least 1\n");
    return kExitUsage;
  }
  if (!MakeStoreFolder(o.store)) return kExitUsage;
  StopOnSigterm();
  runtime::WorkerOptions w;
  w.store_dir = o.store;
  w.concurrency = o.concurrency;
  w.once = o.once;
  w.max_crashes = o.max_crashes;
  w.child_stdout_to_stderr = o.json;
  w.drain = StopFlag();
  w.prepare = [] { stdlib::PrepareHttp(); };
  w.execute = [&](const std::string& id) {
    store::Store::LeaveIndexRowsToParent();  // in the child: the worker adds them, many at once
    store::Store::TakeClaimsOfParent();      // the worker claimed the run for this child
    int code = ResumeCommand(o.store, id, RunOptions{});
    stdlib::CloseHttpConnections();  // the next run of this child opens its own
    return code;
  };
  w.clean_exits = {kExitOk, kExitScriptFailed, kExitSuspended};
  w.deferred_exit = kExitDeferred;
  w.damaged_exit = kExitCorrupt;
  WorkerPrinter printer(o.json);
  runtime::WorkerSummary summary;
  if (Status s = runtime::RunWorker(w, &printer, &summary); !s.ok()) return Fail(s, "worker");
  // --once: a pass in which a run's process crashed is not a clean pass.
  return o.once && (summary.crashed || summary.poisoned) ? kExitScriptFailed : kExitOk;
}

}  // namespace flow::cli
