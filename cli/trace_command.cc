// flow trace RUN [--format chrome|otlp]: the run's history as a trace (runtime/trace.h):
// Chrome's trace JSON (chrome://tracing, Perfetto), or OTLP/JSON for OpenTelemetry tools.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "runtime/trace.h"
#include "store/store.h"

namespace flow::cli {

namespace {

using Json = nlohmann::ordered_json;

Json ValueOf(const runtime::SpanValue& v) {
  return std::visit([](const auto& x) { return Json(x); }, v);
}

// Chrome's trace events: one complete event (ph X) per span at microsecond times; a track
// (thread) per task, named by thread_name metadata; errors and retries as instant events.
// A wait is drawn as a wait (category `wait`); a failed, unfinished or in-doubt span says
// so in its name, its args and its colour.
std::string ChromeTrace(const runtime::TraceRun& run, const std::vector<runtime::Span>& spans) {
  Json events = Json::array();
  events.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", 1}, {"args", {{"name", "flow run " + run.id}}}});
  std::map<std::string, int> tracks;  // task path -> tid, the top level first
  auto track = [&](const std::string& task) {
    auto [it, added] = tracks.emplace(task, static_cast<int>(tracks.size()) + 1);
    if (added) {
      events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", 1}, {"tid", it->second},
                        {"args", {{"name", task.empty() ? "top level" : "task " + task}}}});
      events.push_back({{"name", "thread_sort_index"}, {"ph", "M"}, {"pid", 1}, {"tid", it->second},
                        {"args", {{"sort_index", it->second}}}});
    }
    return it->second;
  };
  track("");
  for (const auto& s : spans) {
    std::string name = s.label.empty() ? s.name : s.label;
    std::string colour;
    if (s.state == "failed") name += " [failed]", colour = "terrible";
    else if (s.state == "unfinished") name += " [unfinished]", colour = "grey";
    else if (s.state == "in_doubt") name += " [in doubt]", colour = "bad";
    else if (s.category == "wait") colour = "thread_state_sleeping";
    Json args = {{"state", s.state}};
    if (!s.status_message.empty()) args["error"] = s.status_message;
    for (const auto& [key, value] : s.attributes) args[key] = ValueOf(value);
    const int tid = track(s.task);
    Json event = {{"name", name}, {"cat", s.category}, {"ph", "X"}, {"ts", s.start_us},
                  {"dur", std::max<int64_t>(s.end_us - s.start_us, 1)}, {"pid", 1}, {"tid", tid}, {"args", args}};
    if (!colour.empty()) event["cname"] = colour;
    events.push_back(std::move(event));
    for (const auto& e : s.events) {
      Json eargs = Json::object();
      for (const auto& [key, value] : e.attributes) eargs[key] = ValueOf(value);
      events.push_back({{"name", e.name}, {"cat", s.category}, {"ph", "i"}, {"s", "t"}, {"ts", e.time_us}, {"pid", 1},
                        {"tid", tid}, {"args", eargs}});
    }
  }
  Json trace = {{"traceEvents", events}, {"displayTimeUnit", "ms"}, {"otherData", {{"run", run.id}}}};
  return trace.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

int TraceCommand(const std::string& store_dir, const std::string& run_id, const std::string& format) {
  if (format != "chrome" && format != "otlp") {
    fmt::print(stderr, "flow trace: --format is chrome or otlp, not `{}`\n", format);
    return kExitUsage;
  }
  std::vector<runtime::HistoryEntry> entries;
  if (int code = LoadHistory(store_dir, run_id, &entries); code != kExitOk) return code;
  Result<store::Store> st = store::Store::Open(store_dir, false);
  if (!st.ok()) return Fail(st.status(), "");
  Result<store::RunRecord> record = st->ReadRun(run_id);
  if (!record.ok()) return Fail(record.status(), "");
  int64_t pid = 0;
  runtime::TraceRun run = runtime::TraceRun::Of(*record, st->IsRunLive(run_id, &pid));
  std::vector<runtime::Span> spans = runtime::TraceSpans(run, entries);
  fmt::print("{}\n", format == "otlp" ? runtime::OtlpJson(run, spans) : ChromeTrace(run, spans));
  return kExitOk;
}

}  // namespace flow::cli
