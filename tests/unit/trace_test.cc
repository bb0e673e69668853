// Traces from history (runtime/trace.h): the µs start of history entries (and entries
// written before it), spans' ids and parents, failed and unfinished steps, retries and
// errors as events, GenAI attributes, OTLP/JSON's encoding of ids, times and values.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "runtime/journal.h"
#include "runtime/trace.h"
#include "vm/base/coding.h"
#include "vm/base/record.h"

namespace flow::runtime {
namespace {

HistoryEntry Effect(uint64_t seq, std::string effect, std::string key, int64_t start_us, int64_t duration_us,
                    std::string task = "") {
  HistoryEntry e;
  e.seq = seq;
  e.effect = std::move(effect);
  e.state = HistoryEntry::State::kDone;
  e.idempotency_key = std::move(key);
  e.started_us = start_us;
  e.started_ms = start_us / 1000;
  e.duration_us = duration_us;
  e.task = std::move(task);
  e.args_preview = "[]";
  e.result_preview = "null";
  return e;
}

HistoryEntry StepEvent(uint64_t seq, bool done, std::string key, int64_t start_us, int64_t duration_us = 0) {
  HistoryEntry e = Effect(seq, done ? "step done" : "step", key, start_us, duration_us);
  e.args_preview = "[\"" + key + "\"]";
  return e;
}

TEST(HistoryEntry, StartedUsRoundTripsAndOlderEntriesReadFromStartedMs) {
  HistoryEntry e = Effect(3, "sleep", "r/3", 1'700'000'000'123'456, 10);
  HistoryEntry back;
  ASSERT_TRUE(DecodeHistoryEntry(EncodeHistoryEntry(e), &back).ok());
  EXPECT_EQ(back.started_us, 1'700'000'000'123'456);
  // An entry as flow wrote it before issue 11: no trailing started_us.
  std::string old;
  BeginRecord(&old);
  PutVarint(&old, 3);
  PutBytes(&old, "sleep");
  PutFixed8(&old, 2);
  PutBytes(&old, "r/3");
  PutFixed64(&old, 0);
  PutFixed64(&old, 0);
  PutFixed64(&old, 1'700'000'000'123);
  PutFixed64(&old, 10);
  for (int i = 0; i < 4; ++i) PutBytes(&old, "");
  FinishRecord(kRunDbRecordVersion, &old);
  ASSERT_TRUE(DecodeHistoryEntry(old, &back).ok());
  EXPECT_EQ(back.started_ms, 1'700'000'000'123);
  EXPECT_EQ(back.started_us, 1'700'000'000'123'000);
}

const Span* Named(const std::vector<Span>& spans, const std::string& name, int nth = 0) {
  for (const Span& s : spans)
    if (s.name == name && nth-- == 0) return &s;
  return nullptr;
}

TEST(Trace, SpansNestUnderStepsTasksAndTheRun) {
  const int64_t t0 = 1'700'000'000'000'000;
  std::vector<HistoryEntry> h = {
      StepEvent(0, false, "a", t0 + 1),
      Effect(1, "time.now", "r/a/1", t0 + 5, 7),
      StepEvent(1, true, "a", t0 + 1, 20),
      Effect(2, "sleep", "r/1/1", t0 + 30, 300'000, "1"),
  };
  HistoryEntry get = Effect(3, "http.get", "r/2", t0 + 400'000, 50);
  get.state = HistoryEntry::State::kRaised;
  get.args_preview = "[\"http://x/\"]";
  get.args_digest = 42;
  get.result_preview = "http: get http://x/ answered 503";
  h.push_back(get);
  h.push_back(Effect(4, "sleep", "r/3", t0 + 400'100, 1000));  // a retry's backoff
  get.seq = 5, get.idempotency_key = "r/4", get.started_us = t0 + 401'200;
  get.state = HistoryEntry::State::kDone, get.result_preview = "{\"status\":200}";
  h.push_back(get);
  h.push_back(StepEvent(5, false, "open", t0 + 402'000));

  TraceRun run;
  run.id = "r";
  run.program = "/x/p.flow";
  run.status = store::RunStatus::kSuspended;
  run.created_ms = t0 / 1000;
  std::vector<Span> spans = TraceSpans(run, h);
  const Span* root = Named(spans, "run p.flow");
  const Span* step = Named(spans, "step a");
  const Span* now = Named(spans, "time.now");
  const Span* task = Named(spans, "task 1");
  const Span* sleep = Named(spans, "sleep");
  ASSERT_TRUE(root && step && now && task && sleep);
  EXPECT_TRUE(root->parent_id.empty());
  EXPECT_EQ(step->parent_id, root->span_id);
  EXPECT_EQ(now->parent_id, step->span_id);
  EXPECT_EQ(sleep->parent_id, task->span_id);
  EXPECT_EQ(task->parent_id, root->span_id);
  EXPECT_EQ(step->start_us, t0 + 1);
  EXPECT_EQ(step->end_us, t0 + 21);
  EXPECT_EQ(sleep->end_us - sleep->start_us, 300'000);
  EXPECT_EQ(sleep->category, "wait");
  EXPECT_EQ(std::regex_match(root->span_id, std::regex("[0-9a-f]{16}")), true);
  EXPECT_EQ(std::regex_match(TraceIdOf("r"), std::regex("[0-9a-f]{32}")), true);
  EXPECT_EQ(SpanIdOf("r", "run"), root->span_id);  // the same from any reader

  const Span* failed = Named(spans, "GET");
  const Span* retried = Named(spans, "GET", 1);
  ASSERT_TRUE(failed && retried);
  EXPECT_EQ(failed->status, Span::Status::kError);
  ASSERT_EQ(failed->events.size(), 1u);
  EXPECT_EQ(failed->events[0].name, "exception");
  EXPECT_EQ(std::get<std::string>(failed->events[0].attributes[0].second), "http");
  ASSERT_EQ(retried->events.size(), 1u);
  EXPECT_EQ(retried->events[0].name, "retry");
  EXPECT_EQ(retried->kind, Span::Kind::kClient);

  const Span* open = Named(spans, "step open");
  ASSERT_TRUE(open);
  EXPECT_EQ(open->state, "unfinished");  // the run is suspended: the step is still going
  EXPECT_EQ(root->state, "unfinished");

  run.status = store::RunStatus::kFailed;
  run.detail = "error: http: boom";
  run.error_kind = "http";
  spans = TraceSpans(run, h);
  EXPECT_EQ(Named(spans, "step open")->state, "failed");
  EXPECT_EQ(Named(spans, "run p.flow")->status, Span::Status::kError);
}

TEST(Trace, FailedStepClosedByTheNextEffectOutsideIt) {
  const int64_t t0 = 1'700'000'000'000'000;
  std::vector<HistoryEntry> h = {StepEvent(0, false, "b", t0), Effect(1, "fs.read", "r/b/1", t0 + 10, 5),
                                 Effect(2, "print", "r/2", t0 + 100, 5)};
  h[1].state = HistoryEntry::State::kRaised;
  h[1].result_preview = "fs: cannot read x";
  TraceRun run;
  run.id = "r";
  run.status = store::RunStatus::kCompleted;
  std::vector<Span> spans = TraceSpans(run, h);
  const Span* step = Named(spans, "step b");
  ASSERT_TRUE(step);
  EXPECT_EQ(step->state, "failed");
  EXPECT_EQ(step->end_us, t0 + 100);
  EXPECT_EQ(Named(spans, "print")->parent_id, SpanIdOf("r", "run"));
}

TEST(Trace, LlmChatFollowsTheGenAiConventions) {
  HistoryEntry e = Effect(1, "llm.chat", "r/1", 1'700'000'000'000'000, 1000);
  e.args_preview = R"([{"model":"m1","messages":[]}])";
  e.result_preview = R"({"content":"hi","usage":{"prompt_tokens":12,"completion_tokens":5},"model":"m1-2024"})";
  TraceRun run;
  run.id = "r";
  std::vector<Span> spans = TraceSpans(run, {e});
  const Span* chat = Named(spans, "chat m1");
  ASSERT_TRUE(chat);
  std::map<std::string, SpanValue> a(chat->attributes.begin(), chat->attributes.end());
  EXPECT_EQ(std::get<std::string>(a["gen_ai.operation.name"]), "chat");
  EXPECT_EQ(std::get<std::string>(a["gen_ai.request.model"]), "m1");
  EXPECT_EQ(std::get<std::string>(a["gen_ai.response.model"]), "m1-2024");
  EXPECT_EQ(std::get<int64_t>(a["gen_ai.usage.input_tokens"]), 12);
  EXPECT_EQ(std::get<int64_t>(a["gen_ai.usage.output_tokens"]), 5);

  auto json = nlohmann::json::parse(OtlpJson(run, spans));
  const auto& span = json["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
  EXPECT_EQ(span["startTimeUnixNano"], "1700000000000000000");
  EXPECT_EQ(span["endTimeUnixNano"], "1700000000001000000");
  EXPECT_EQ(span["kind"], 3);
  bool found = false;
  for (const auto& attr : span["attributes"])
    if (attr["key"] == "gen_ai.usage.input_tokens") found = attr["value"] == nlohmann::json{{"intValue", "12"}};
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace flow::runtime
