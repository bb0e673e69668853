// A run's history as a trace: the run is the root span; its tasks, steps and effects are
// spans under it, each with its microsecond times. `flow trace` draws them (Chrome's JSON,
// or OTLP/JSON); a live process sends them to an OTLP collector as they finish
// (runtime/live_trace.h). Built from history entries only, so the same ids come out of
// the store and out of the live process.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "runtime/runtime.h"
#include "store/store.h"

namespace flow::runtime {

using SpanValue = std::variant<std::string, int64_t, bool, double>;
using SpanAttributes = std::vector<std::pair<std::string, SpanValue>>;

struct SpanEvent {
  std::string name;  // "exception" (semantic conventions), "retry"
  int64_t time_us = 0;
  SpanAttributes attributes;
};

struct Span {
  // OTLP's values (trace.proto): SPAN_KIND_INTERNAL, SPAN_KIND_CLIENT; STATUS_CODE_*.
  enum class Kind : int { kInternal = 1, kClient = 3 };
  enum class Status : int { kUnset = 0, kOk = 1, kError = 2 };
  std::string span_id;    // 16 hex digits
  std::string parent_id;  // "" for the run's span
  std::string name;   // as the semantic conventions name it (`POST`, `chat gpt-4o`)
  std::string label;  // as flow names it (`http.post`, `llm.chat`), for the Chrome form
  std::string category;  // run, task, step, effect, wait
  // done, failed, unfinished (a step or effect still open when the history ends), in_doubt
  std::string state = "done";
  std::string task;  // the task it belongs to ("" the top level): its track
  Kind kind = Kind::kInternal;
  int64_t start_us = 0, end_us = 0;
  Status status = Status::kUnset;
  std::string status_message;
  SpanAttributes attributes;
  std::vector<SpanEvent> events;
};

// The run as its record has it, for the root span and the resource.
struct TraceRun {
  std::string id;
  std::string program;
  store::RunStatus status = store::RunStatus::kRunning;
  bool live = false;  // a process runs it: "running", not "crashed"
  std::string detail, error_kind;
  int64_t created_ms = 0, updated_ms = 0;
  static TraceRun Of(const store::RunRecord& record, bool live);
  bool ended() const;  // completed, failed or cancelled
};

// 32 hex digits, the same for every reader of the run; 16 hex digits for a span.
std::string TraceIdOf(const std::string& run_id);
std::string SpanIdOf(const std::string& run_id, const std::string& what);

// Turns history entries, given in history order, into spans: an effect's span as soon as
// its entry comes, a step's at its end, the tasks' and the run's at Finish.
class SpanBuilder {
 public:
  explicit SpanBuilder(std::string run_id) : run_id_(std::move(run_id)) {}
  void Add(const HistoryEntry& e, std::vector<Span>* done);
  // The history is complete: what is still open (steps, the tasks, the run).
  void Finish(const TraceRun& run, std::vector<Span>* done);

 private:
  struct OpenStep {
    std::string key;
    Span span;
  };
  struct TaskExtent {
    int64_t first_us = INT64_MAX, last_us = 0;
  };
  std::string ParentIn(const std::string& task);
  Span StepSpan(const HistoryEntry& e, int64_t start, int64_t nth);
  void CloseStep(Span span, int64_t end_us, const char* state, std::vector<Span>* done);
  void CloseStepsAbove(std::vector<OpenStep>& stack, size_t keep, int64_t end_us, std::vector<Span>* done);
  void See(const std::string& task, int64_t start_us, int64_t end_us);
  std::string run_id_;
  std::map<std::string, std::vector<OpenStep>> steps_;  // per task: the steps open, innermost last
  std::map<std::string, TaskExtent> tasks_;          // "" is the top level
  struct LastRaised {
    std::string effect;
    uint64_t args_digest = 0;
    int attempt = 0;
  };
  std::map<std::string, LastRaised> last_raised_;  // per task: its last effect, if it raised
  std::map<std::string, int> step_attempts_;         // task + key -> times begun
  int64_t first_us_ = INT64_MAX, last_us_ = 0;
};

// A run's history from its database: its effects, with its step events among them (each
// after the effects it happened after). Corruption if an entry cannot be decoded.
Status ReadHistoryEntries(store::RunDb& db, std::vector<HistoryEntry>* out);

// Every span of a stored run, in the order they finish.
std::vector<Span> TraceSpans(const TraceRun& run, const std::vector<HistoryEntry>& history);

// An OTLP ExportTraceServiceRequest in its JSON encoding (resourceSpans -> scopeSpans ->
// spans), for the spans given.
std::string OtlpJson(const TraceRun& run, const std::vector<Span>& spans);

}  // namespace flow::runtime
