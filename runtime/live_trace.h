// FLOW_OTLP_ENDPOINT=http://host:port: a running flow process sends its spans to an
// OTLP/HTTP collector (POST {endpoint}/v1/traces, OTLP/JSON) as they finish. It never
// slows or fails the run: spans are built on the run's thread (a few per effect) and
// queued; a background thread sends them in batches with a short timeout; a full queue
// drops spans; an unreachable collector is reported once; at exit what is queued gets a
// bounded wait. Unset: no object, no thread, no cost.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "runtime/trace.h"

namespace flow::runtime {

class LiveTrace {
 public:
  using Warn = std::function<void(std::string_view)>;
  static constexpr int64_t kPostTimeoutMs = 2000;  // one batch's POST
  static constexpr int64_t kExitWaitMs = 1500;     // what a process waits at exit for its spans
  static constexpr size_t kMaxQueued = 8192;       // spans waiting; beyond, new ones are dropped
  static constexpr size_t kBatch = 512;

  // The export FLOW_OTLP_ENDPOINT asks for, or null when it is unset or empty.
  static std::unique_ptr<LiveTrace> FromEnvironment(const std::string& run_id, Warn warn);
  LiveTrace(const std::string& endpoint, const std::string& run_id, Warn warn);
  ~LiveTrace();  // sends what is queued, waiting at most kExitWaitMs

  // A history entry just recorded (an effect's outcome, a step event): its span, if it
  // finishes one, is queued.
  void Add(const HistoryEntry& entry);
  // The run stopped. Once it has ended, the spans of the run and of its tasks (built from
  // its whole history in `db`, so they cover every process that ran it) are queued.
  void RunStopped(const store::RunRecord& record, store::RunDb* db);

 private:
  struct Shared;  // the queue and the sending thread's state: it may outlive this object
  void Queue(std::vector<Span> spans);
  SpanBuilder builder_;
  std::string run_id_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace flow::runtime
