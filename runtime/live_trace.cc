// The live OTLP export: spans queued by the run's thread, sent by a background thread.
#include "runtime/live_trace.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>

#include "stdlib/stdlib.h"

namespace flow::runtime {

namespace {
// The collector failed in this process (a worker runs many runs): warned once, and no
// process waits for it at the end of a run again.
std::atomic<bool> collector_failed{false};
}  // namespace

// Shared by the LiveTrace and its thread, so that a thread still sending at exit (after
// the bounded wait) never touches a destroyed object.
struct LiveTrace::Shared {
  std::mutex mu;
  std::condition_variable wake, drained;
  std::deque<Span> queue;
  TraceRun resource;  // its id and program name the spans' resource
  std::string url;
  Warn warn;
  bool stopping = false, finished = false;
  size_t dropped = 0;

  // Takes a batch off the queue and POSTs it; returns when stopping and nothing is left.
  void Loop() {
    std::unique_lock lock(mu);
    for (;;) {
      // A short pause gathers a batch; stopping sends at once.
      wake.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping || queue.size() >= kBatch; });
      if (queue.empty()) {
        if (stopping) break;
        continue;
      }
      std::vector<Span> batch;
      while (!queue.empty() && batch.size() < kBatch) {
        batch.push_back(std::move(queue.front()));
        queue.pop_front();
      }
      TraceRun run = resource;
      lock.unlock();
      std::string error;
      bool sent = stdlib::PostJson(url, OtlpJson(run, batch), kPostTimeoutMs, &error);
      lock.lock();
      if (!sent && !collector_failed.exchange(true) && warn)
        warn(fmt::format("cannot send spans to {} ({}); the run goes on, its spans are dropped", url, error));
    }
    finished = true;
    drained.notify_all();
  }
};

std::unique_ptr<LiveTrace> LiveTrace::FromEnvironment(const std::string& run_id, Warn warn) {
  const char* endpoint = std::getenv("FLOW_OTLP_ENDPOINT");
  if (!endpoint || !*endpoint) return nullptr;
  return std::make_unique<LiveTrace>(endpoint, run_id, std::move(warn));
}

LiveTrace::LiveTrace(const std::string& endpoint, const std::string& run_id, Warn warn)
    : builder_(run_id), run_id_(run_id), shared_(std::make_shared<Shared>()) {
  std::string base = endpoint;
  while (!base.empty() && base.back() == '/') base.pop_back();
  shared_->url = base + "/v1/traces";
  shared_->resource.id = run_id;
  shared_->warn = std::move(warn);
  std::thread([shared = shared_] { shared->Loop(); }).detach();
}

LiveTrace::~LiveTrace() {
  std::unique_lock lock(shared_->mu);
  shared_->stopping = true;
  shared_->wake.notify_all();
  // Once the collector has failed, no wait: the thread sends what it can while the process lives on.
  if (!collector_failed &&
      !shared_->drained.wait_for(lock, std::chrono::milliseconds(kExitWaitMs), [&] { return shared_->finished; }) &&
      !collector_failed.exchange(true) && shared_->warn)  // a collector that does not answer
    shared_->warn(fmt::format("{} did not take the run's spans within {} ms; the rest are dropped", shared_->url,
                              kExitWaitMs));
  shared_->warn = nullptr;  // its host goes away with the run (the thread warns under the lock)
}

void LiveTrace::Queue(std::vector<Span> spans) {
  if (spans.empty()) return;
  std::lock_guard lock(shared_->mu);
  for (Span& s : spans) {
    if (shared_->queue.size() >= kMaxQueued) {
      ++shared_->dropped;
      continue;
    }
    shared_->queue.push_back(std::move(s));
  }
  if (shared_->queue.size() >= kBatch) shared_->wake.notify_all();
}

void LiveTrace::Add(const HistoryEntry& entry) {
  std::vector<Span> spans;
  builder_.Add(entry, &spans);
  // An effect still in flight (a task's wait) is sent when its outcome comes.
  std::erase_if(spans, [](const Span& s) { return s.category != "step" && s.state == "unfinished"; });
  Queue(std::move(spans));
}

void LiveTrace::RunStopped(const store::RunRecord& record, store::RunDb* db) {
  {
    std::lock_guard lock(shared_->mu);
    shared_->resource.program = record.program;
  }
  TraceRun run = TraceRun::Of(record, false);
  if (!run.ended()) return;  // suspended: a later process ends it
  // The run's and its tasks' spans from its whole history (every process that ran it).
  std::vector<HistoryEntry> history;
  if (!ReadHistoryEntries(*db, &history).ok()) return;
  SpanBuilder whole(run_id_);
  std::vector<Span> ignored, finished;
  for (const auto& e : history) whole.Add(e, &ignored);
  whole.Finish(run, &finished);
  Queue(std::move(finished));
}

}  // namespace flow::runtime
