// flow worker: a pool of child processes executing runs, so that a run that crashes its
// process (any signal) never stops the worker or the other runs.
//
// The worker finds work through the wake index (store: wake/WAKE_MS-ID hints, followed
// with inotify) and a scan of the run records: all at start, those not packed every
// `rescan_ms` (runs whose process died elsewhere). A child is a fork of the worker that
// executes runs one after another: for each run id it is handed it calls `execute(id)`
// (the cli's `flow resume ID`) and answers with what that returns, the exit code a process
// of its own would have had; after 64 runs it exits and a fresh child takes its place. No
// exec, no dynamic loading: libraries the worker loaded once (`prepare`) are shared. The
// run record says how it ended. A run whose child dies is retried with backoff and, after
// `max_crashes` in a row, set aside as poisoned with its last stderr (docs/operating.md,
// "Workers").
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/runtime.h"
#include "runtime/schedule.h"

namespace flow::runtime {

struct WorkerOptions {
  std::string store_dir;
  int concurrency = 4;     // runs executing at once
  bool once = false;       // start the runs due now, wait for them, return
  int max_crashes = 3;     // crashes in a row before a run is set aside
  int64_t rescan_ms = 60'000;
  int64_t first_backoff_ms = 1'000;  // after a crash; doubles, at most max_backoff_ms
  int64_t max_backoff_ms = 60'000;
  // Called once before the first child: load what every child would load (libcurl).
  std::function<void()> prepare;
  // Executes run `id` in a child process (one that executes runs one after another): the
  // exit code a process of its own would have had. The codes of a run that
  // went as it should (completed, failed by its script, suspended), and of one that could
  // not start for now (its queue is full: tried again when a slot may be free).
  std::function<int(const std::string& id)> execute;
  std::vector<int> clean_exits;
  int deferred_exit = -1;
  // The exit code of a child that found the run's store damaged: the run is reported as
  // skipped, once, and left for an operator (not retried, not counted as a crash).
  int damaged_exit = -1;
  // Children's stdout goes to the worker's stderr (its stdout carries --json events).
  bool child_stdout_to_stderr = false;
  // Set from a signal handler: start nothing more, ask the children to stop at their next
  // checkpoint (SIGTERM), wait for them, return.
  const std::atomic<bool>* drain = nullptr;
};

enum class WorkerEvent {
  kStarted,    // a child executes the run (detail: why)
  kSuspended,  // it ended suspended (detail: what it waits for)
  kCompleted,
  kFailed,     // the script failed (detail: the error)
  kCancelled,
  kCrashed,    // the child died or could not go on (detail: how; retry_in_ms)
  kPoisoned,   // set aside after max_crashes crashes in a row (detail: the last stderr line)
  kSkipped,    // not started: damage, or another process executes it (detail)
  kDraining,   // the worker stops starting runs
};
const char* WorkerEventName(WorkerEvent e);

struct WorkerReport {
  WorkerEvent event = WorkerEvent::kStarted;
  std::string run_id;
  std::string detail;
  int64_t pid = 0;          // the child's
  int crashes = 0;          // in a row, for kCrashed / kPoisoned
  int64_t retry_in_ms = 0;  // kCrashed
  int64_t wall_ms = 0;
};

class WorkerListener {
 public:
  virtual ~WorkerListener() = default;
  virtual void Report(const WorkerReport& report) = 0;
  // A schedule's tick came: a run queued (started like any queued run), or skipped.
  virtual void ScheduleFired(const ScheduleFiring& firing) {}
  // A line a child wrote to its stderr.
  virtual void ChildStderr(const std::string& run_id, std::string_view line) {}
};

struct WorkerSummary {
  uint64_t started = 0, completed = 0, suspended = 0, failed = 0, crashed = 0, poisoned = 0;
};

// Not ok if the store cannot be opened or the worker cannot wait (inotify, poll).
Status RunWorker(const WorkerOptions& options, WorkerListener* listener, WorkerSummary* summary);

}  // namespace flow::runtime
