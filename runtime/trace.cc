// History -> spans (SpanBuilder), and spans -> OTLP/JSON. Ids are hashes of the run id and
// what a span stands for, so every reader and the live process agree on them.
#include "runtime/trace.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "vm/base/coding.h"

namespace flow::runtime {

namespace {

using Json = nlohmann::ordered_json;

std::string Hex64(uint64_t v) { return fmt::format("{:016x}", v == 0 ? 1 : v); }  // all zeros is invalid

int64_t StartUs(const HistoryEntry& e) { return e.started_us ? e.started_us : e.started_ms * 1000; }
int64_t EndUs(const HistoryEntry& e) { return StartUs(e) + std::max<int64_t>(e.duration_us, 0); }

// What an attribute keeps of an effect's arguments or result.
std::string Cut(const std::string& json) {
  constexpr size_t kCap = 1024;
  return json.size() <= kCap ? json : json.substr(0, kCap - 3) + "...";
}

Json Parse(const std::string& text) { return Json::parse(text, nullptr, false); }

// "kind: message" of a raised effect's result.
void SplitError(const std::string& text, std::string* kind, std::string* message) {
  size_t colon = text.find(": ");
  *kind = colon == std::string::npos ? "error" : text.substr(0, colon);
  *message = colon == std::string::npos ? text : text.substr(colon + 2);
}

bool IsWait(const std::string& effect) { return effect == "sleep" || effect == "signal.wait"; }

// The GenAI semantic conventions on an llm.chat span: operation, models, token usage.
void AddGenAi(const HistoryEntry& e, Span* s) {
  std::string model;
  Json args = Parse(e.args_preview);
  if (args.is_array() && !args.empty() && args[0].is_object() && args[0].contains("model") && args[0]["model"].is_string())
    model = args[0]["model"].get<std::string>();
  s->name = model.empty() ? "chat" : "chat " + model;  // {gen_ai.operation.name} {gen_ai.request.model}
  s->attributes.emplace_back("gen_ai.operation.name", std::string("chat"));
  if (!model.empty()) s->attributes.emplace_back("gen_ai.request.model", model);
  if (e.state != HistoryEntry::State::kDone) return;
  Json result = Parse(e.result_preview);
  if (!result.is_object()) return;
  if (result.contains("model") && result["model"].is_string())
    s->attributes.emplace_back("gen_ai.response.model", result["model"].get<std::string>());
  const Json& usage = result.contains("usage") ? result["usage"] : Json();
  if (!usage.is_object()) return;
  // OpenAI's names for them (the API llm.chat speaks).
  if (usage.contains("prompt_tokens") && usage["prompt_tokens"].is_number_integer())
    s->attributes.emplace_back("gen_ai.usage.input_tokens", usage["prompt_tokens"].get<int64_t>());
  if (usage.contains("completion_tokens") && usage["completion_tokens"].is_number_integer())
    s->attributes.emplace_back("gen_ai.usage.output_tokens", usage["completion_tokens"].get<int64_t>());
}

// HTTP client conventions: method, url, response status.
void AddHttp(const HistoryEntry& e, Span* s) {
  std::string method = e.effect.substr(5);
  Json args = Parse(e.args_preview);
  size_t url_at = 0;
  if (e.effect == "http.request" && args.is_array() && !args.empty() && args[0].is_string()) {
    method = args[0].get<std::string>();
    url_at = 1;
  }
  std::transform(method.begin(), method.end(), method.begin(), [](unsigned char c) { return std::toupper(c); });
  s->name = method;  // {method}: the semantic conventions' name when there is no route
  s->attributes.emplace_back("http.request.method", method);
  if (args.is_array() && args.size() > url_at && args[url_at].is_string())
    s->attributes.emplace_back("url.full", args[url_at].get<std::string>());
  Json result = e.state == HistoryEntry::State::kDone ? Parse(e.result_preview) : Json();
  if (result.is_object() && result.contains("status") && result["status"].is_number_integer())
    s->attributes.emplace_back("http.response.status_code", result["status"].get<int64_t>());
}

}  // namespace

TraceRun TraceRun::Of(const store::RunRecord& r, bool live) {
  TraceRun t;
  t.id = r.id;
  t.program = r.program;
  t.status = r.status;
  t.live = live;
  t.detail = r.detail;
  t.error_kind = r.error_kind;
  t.created_ms = r.created_ms;
  t.updated_ms = r.updated_ms;
  return t;
}

bool TraceRun::ended() const {
  return status == store::RunStatus::kCompleted || status == store::RunStatus::kFailed ||
         status == store::RunStatus::kCancelled;
}

std::string TraceIdOf(const std::string& run_id) {
  return Hex64(Checksum("flow trace\x01" + run_id)) + Hex64(Checksum("flow trace\x02" + run_id));
}

std::string SpanIdOf(const std::string& run_id, const std::string& what) {
  return Hex64(Checksum(run_id + '\0' + what));
}

// The span of step e.idempotency_key begun at `start`; `nth` tells its attempts apart.
Span SpanBuilder::StepSpan(const HistoryEntry& e, int64_t start, int64_t nth) {
  Span s;
  s.span_id = SpanIdOf(run_id_, fmt::format("step/{}/{}/{}", e.task, e.idempotency_key, nth));
  s.parent_id = ParentIn(e.task);
  s.name = "step " + e.idempotency_key;
  s.category = "step";
  s.task = e.task;
  s.start_us = start;
  s.attributes.emplace_back("flow.step.key", e.idempotency_key);
  return s;
}

std::string SpanBuilder::ParentIn(const std::string& task) {
  auto it = steps_.find(task);
  if (it != steps_.end() && !it->second.empty()) return it->second.back().span.span_id;
  return SpanIdOf(run_id_, task.empty() ? "run" : "task/" + task);
}

void SpanBuilder::See(const std::string& task, int64_t start_us, int64_t end_us) {
  TaskExtent& t = tasks_[task];
  t.first_us = std::min(t.first_us, start_us);
  t.last_us = std::max(t.last_us, end_us);
  first_us_ = std::min(first_us_, start_us);
  last_us_ = std::max(last_us_, end_us);
}

void SpanBuilder::CloseStep(Span span, int64_t end_us, const char* state, std::vector<Span>* done) {
  span.end_us = std::max(end_us, span.start_us);
  span.state = state;
  if (span.state == "failed") {
    span.status = Span::Status::kError;
    span.status_message = "the step did not complete";
  }
  done->push_back(std::move(span));
}

// Steps above `keep` in a task's stack ended without completing: they failed.
void SpanBuilder::CloseStepsAbove(std::vector<OpenStep>& stack, size_t keep, int64_t end_us, std::vector<Span>* done) {
  while (stack.size() > keep) {
    CloseStep(std::move(stack.back().span), end_us, "failed", done);
    stack.pop_back();
  }
}

void SpanBuilder::Add(const HistoryEntry& e, std::vector<Span>* done) {
  const int64_t start = StartUs(e), end = EndUs(e);
  std::vector<OpenStep>& stack = steps_[e.task];
  See(e.task, start, end);
  if (e.effect == "step") {
    // The same step begun again while open: the attempt before failed (a retry).
    for (size_t i = 0; i < stack.size(); ++i)
      if (stack[i].key == e.idempotency_key) CloseStepsAbove(stack, i, start, done);
    int attempt = ++step_attempts_[e.task + '\0' + e.idempotency_key];
    Span s = StepSpan(e, start, attempt);
    if (!e.task.empty()) s.attributes.emplace_back("flow.task", e.task);
    if (attempt > 1) {
      s.attributes.emplace_back("flow.step.attempt", int64_t{attempt});
      s.events.push_back({"retry", start, {{"flow.retry.attempt", int64_t{attempt}}}});
    }
    stack.push_back({e.idempotency_key, std::move(s)});
    return;
  }
  if (e.effect == "step done") {
    for (size_t i = stack.size(); i-- > 0;) {
      if (stack[i].key != e.idempotency_key) continue;
      CloseStepsAbove(stack, i + 1, end, done);
      CloseStep(std::move(stack[i].span), end, "done", done);
      stack.pop_back();
      return;
    }
    // Begun in another process's part of the history we were not given: from its duration.
    CloseStep(StepSpan(e, start, start), end, "done", done);
    return;
  }
  // An effect outside the innermost open steps (its key is not under theirs) means they
  // ended without completing. A wait is not a step's own effect (a retry's backoff has
  // the task's key), so it closes nothing.
  if (!IsWait(e.effect)) {
    while (!stack.empty() && e.idempotency_key.rfind(run_id_ + "/" + stack.back().key + "/", 0) != 0)
      CloseStepsAbove(stack, stack.size() - 1, start, done);
  }
  Span s;
  s.span_id = SpanIdOf(run_id_, fmt::format("effect/{}", e.seq));
  s.parent_id = ParentIn(e.task);
  s.name = s.label = e.effect;
  s.category = IsWait(e.effect) ? "wait" : "effect";
  s.task = e.task;
  s.start_us = start;
  s.end_us = end;
  s.attributes.emplace_back("flow.effect", e.effect);
  s.attributes.emplace_back("flow.seq", static_cast<int64_t>(e.seq));
  s.attributes.emplace_back("flow.idempotency_key", e.idempotency_key);
  if (!e.task.empty()) s.attributes.emplace_back("flow.task", e.task);
  s.attributes.emplace_back("flow.args", Cut(e.args_preview));
  if (e.effect == "llm.chat") {
    s.kind = Span::Kind::kClient;
    AddGenAi(e, &s);
  } else if (e.effect.rfind("http.", 0) == 0) {
    s.kind = Span::Kind::kClient;
    AddHttp(e, &s);
  }
  // The same call (effect and arguments) made again by the same task after it raised, with
  // at most a wait between (a retry's backoff): an attempt of a retry, an event on its span.
  LastRaised& last = last_raised_[e.task];
  int attempt = last.effect == e.effect && last.args_digest == e.args_digest ? last.attempt + 1 : 1;
  if (!IsWait(e.effect))
    last = e.state == HistoryEntry::State::kRaised ? LastRaised{e.effect, e.args_digest, attempt} : LastRaised{};
  if (attempt > 1) {
    s.attributes.emplace_back("flow.retry.attempt", int64_t{attempt});
    s.events.push_back({"retry", start, {{"flow.retry.attempt", int64_t{attempt}}}});
  }
  switch (e.state) {
    case HistoryEntry::State::kDone:
      s.attributes.emplace_back("flow.result", Cut(e.result_preview));
      break;
    case HistoryEntry::State::kRaised: {
      std::string kind, message;
      SplitError(e.result_preview, &kind, &message);
      s.state = "failed";
      s.status = Span::Status::kError;
      s.status_message = e.result_preview;
      s.attributes.emplace_back("error.type", kind);
      s.events.push_back({"exception", end, {{"exception.type", kind}, {"exception.message", message}}});
      break;
    }
    case HistoryEntry::State::kInDoubt:
      s.state = "in_doubt";
      s.status = Span::Status::kError;
      s.status_message = "in doubt: in flight inside a `once` step when the run stopped";
      break;
    case HistoryEntry::State::kIntent:
      s.state = "unfinished";  // in flight: its end is the history's (Finish may move it)
      break;
  }
  done->push_back(std::move(s));
}

void SpanBuilder::Finish(const TraceRun& run, std::vector<Span>* done) {
  const int64_t created_us = run.created_ms * 1000;
  const int64_t start = std::min(first_us_, created_us > 0 ? created_us : first_us_);
  int64_t end = std::max(last_us_, run.ended() ? run.updated_ms * 1000 : last_us_);
  if (start == INT64_MAX) end = created_us;
  // Steps still open: the run is still going (unfinished), or they never completed.
  for (auto& [task, stack] : steps_) {
    while (!stack.empty()) {
      CloseStep(std::move(stack.back().span), end, run.ended() ? "failed" : "unfinished", done);
      stack.pop_back();
    }
  }
  for (const auto& [path, extent] : tasks_) {
    if (path.empty()) continue;
    Span t;
    t.span_id = SpanIdOf(run_id_, "task/" + path);
    size_t dot = path.rfind('.');
    std::string parent = dot == std::string::npos ? "" : path.substr(0, dot);
    t.parent_id = SpanIdOf(run_id_, !parent.empty() && tasks_.count(parent) ? "task/" + parent : "run");
    t.name = "task " + path;
    t.category = "task";
    t.task = path;
    t.start_us = extent.first_us;
    t.end_us = extent.last_us;
    t.attributes.emplace_back("flow.task", path);
    done->push_back(std::move(t));
  }
  Span r;
  r.span_id = SpanIdOf(run_id_, "run");
  std::string program = run.program.substr(run.program.rfind('/') + 1);
  r.name = "run " + (program.empty() ? run.id : program);
  r.category = "run";
  r.start_us = start == INT64_MAX ? created_us : start;
  r.end_us = std::max(end, r.start_us);
  store::RunStatus status = run.status == store::RunStatus::kRunning && !run.live ? store::RunStatus::kCrashed : run.status;
  r.attributes.emplace_back("flow.run_id", run.id);
  r.attributes.emplace_back("flow.program", run.program);
  r.attributes.emplace_back("flow.status", std::string(store::RunStatusName(status)));
  if (!run.detail.empty()) r.attributes.emplace_back("flow.detail", run.detail);
  if (!run.ended()) r.state = "unfinished";
  if (status == store::RunStatus::kCompleted) r.status = Span::Status::kOk;
  if (status == store::RunStatus::kFailed || status == store::RunStatus::kCancelled) {
    r.state = "failed";
    r.status = Span::Status::kError;
    r.status_message = run.detail;
    r.events.push_back({"exception", r.end_us,
                        {{"exception.type", run.error_kind.empty() ? std::string("error") : run.error_kind},
                         {"exception.message", run.detail}}});
  }
  done->push_back(std::move(r));
}

Status ReadHistoryEntries(store::RunDb& db, std::vector<HistoryEntry>* out) {
  auto scan = [&](const char* prefix, std::vector<HistoryEntry>* into) -> Status {
    Status bad;
    Status s = db.Scan(prefix, [&](std::string_view, std::string_view value) {
      HistoryEntry e;
      bad = DecodeHistoryEntry(value, &e);
      if (!bad.ok()) return false;
      into->push_back(std::move(e));
      return true;
    });
    return bad.ok() ? s : Status::Corruption(bad.message());
  };
  std::vector<HistoryEntry> entries, steps;
  if (Status s = scan(store::kHistoryPrefix, &entries); !s.ok()) return s;
  if (Status s = scan(store::kStepEventPrefix, &steps); !s.ok()) return s;
  size_t si = 0;
  for (auto& e : entries) {
    while (si < steps.size() && steps[si].seq < e.seq) out->push_back(std::move(steps[si++]));
    out->push_back(std::move(e));
  }
  while (si < steps.size()) out->push_back(std::move(steps[si++]));
  return Status::Ok();
}

std::vector<Span> TraceSpans(const TraceRun& run, const std::vector<HistoryEntry>& history) {
  SpanBuilder builder(run.id);
  std::vector<Span> spans;
  for (const auto& e : history) builder.Add(e, &spans);
  builder.Finish(run, &spans);
  // An effect still in flight lasts, as far as anyone knows, to the history's end.
  int64_t end = spans.back().end_us;
  for (Span& s : spans)
    if (s.state == "unfinished" && s.category != "step" && s.category != "run") s.end_us = std::max(s.end_us, end);
  return spans;
}

namespace {

// An AnyValue (common.proto) in the JSON encoding: 64-bit ints as decimal strings.
Json AnyValue(const SpanValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return {{"stringValue", *s}};
  if (const auto* i = std::get_if<int64_t>(&v)) return {{"intValue", std::to_string(*i)}};
  if (const auto* b = std::get_if<bool>(&v)) return {{"boolValue", *b}};
  return {{"doubleValue", std::get<double>(v)}};
}

Json Attributes(const SpanAttributes& attributes) {
  Json out = Json::array();
  for (const auto& [key, value] : attributes) out.push_back({{"key", key}, {"value", AnyValue(value)}});
  return out;
}

std::string Nanos(int64_t us) { return std::to_string(us) + "000"; }

}  // namespace

std::string OtlpJson(const TraceRun& run, const std::vector<Span>& spans) {
  const std::string trace_id = TraceIdOf(run.id);
  Json out_spans = Json::array();
  for (const Span& s : spans) {
    Json span = {{"traceId", trace_id}, {"spanId", s.span_id}};
    if (!s.parent_id.empty()) span["parentSpanId"] = s.parent_id;
    span["name"] = s.name;
    span["kind"] = static_cast<int>(s.kind);
    span["startTimeUnixNano"] = Nanos(s.start_us);
    span["endTimeUnixNano"] = Nanos(std::max(s.end_us, s.start_us));
    SpanAttributes attributes = s.attributes;
    attributes.emplace_back("flow.category", s.category);
    attributes.emplace_back("flow.state", s.state);
    span["attributes"] = Attributes(attributes);
    Json events = Json::array();
    for (const SpanEvent& e : s.events)
      events.push_back({{"timeUnixNano", Nanos(e.time_us)}, {"name", e.name}, {"attributes", Attributes(e.attributes)}});
    if (!events.empty()) span["events"] = events;
    Json status = {{"code", static_cast<int>(s.status)}};
    if (!s.status_message.empty()) status["message"] = s.status_message;
    span["status"] = status;
    out_spans.push_back(std::move(span));
  }
  SpanAttributes resource = {{"service.name", std::string("flow")}, {"flow.run_id", run.id}};
  if (!run.program.empty()) resource.emplace_back("flow.program", run.program);
  Json request = {{"resourceSpans",
                   Json::array({{{"resource", {{"attributes", Attributes(resource)}}},
                                 {"scopeSpans", Json::array({{{"scope", {{"name", "flow"}, {"version", FLOW_VERSION}}},
                                                              {"spans", out_spans}}})}}})}};
  return request.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace flow::runtime
