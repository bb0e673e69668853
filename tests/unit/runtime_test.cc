// The runtime's commands (runtime/runtime.h) called directly: they return how a run ended
// (outcome, uncaught error, record) and never print; the program's output reaches the
// listener the caller gives. Resumability comes from the record's data (its error kind),
// not from the text of its detail.
#include "runtime/runtime.h"

#include <gtest/gtest.h>
#include <filesystem>

#include "compiler/compiler.h"
#include "run_program.h"
#include "store/keys.h"
#include "temp_dir.h"
#include "vm/heap.h"

namespace flow::runtime {
namespace {

namespace fs = std::filesystem;

using testing::Compile;
using testing::TempDir;

// Keeps what the runtime reports, as data.
class RecordingListener : public RunListener {
 public:
  Status WriteOutput(std::string_view text) override {
    output.append(text);
    return Status::Ok();
  }
  void RunStarted(const std::string& id) override { started.push_back(id); }
  void RunResuming(const std::string& id, uint64_t checkpoint, const HistoryEntry&, bool) override {
    resumed.push_back(id);
    resumed_from = checkpoint;
  }
  std::string output;
  std::vector<std::string> started, resumed;
  uint64_t resumed_from = 0;
};

StartOptions Options(const TempDir& dir, const std::string& id) {
  StartOptions o;
  o.file = "test.flow";
  o.store_dir = dir.path();
  o.run_id = id;
  o.virtual_time = true;
  return o;
}

// Six effects, then a print.
const char* kSixEffects = R"(
let i = 0
while i < 6 {
  time.now()
  i = i + 1
}
print("done", i)
)";

TEST(Runtime, BudgetStopIsReturnedAsDataAndResumes) {
  TempDir dir;
  Module program = Compile(kSixEffects);
  StartOptions options = Options(dir, "budgeted");
  options.budgets.max_effects = 4;
  RecordingListener listener;
  RunResult result;
  ASSERT_TRUE(StartRun(options, program, &listener, &result).ok());
  EXPECT_EQ(listener.started, std::vector<std::string>{"budgeted"});
  EXPECT_TRUE(result.executed);
  EXPECT_EQ(result.outcome, RunOutcome::kFailed);
  ASSERT_TRUE(result.error.has_value());
  EXPECT_EQ(result.error->kind, "budget");
  EXPECT_FALSE(result.error->trace.empty());
  EXPECT_EQ(result.record.status, store::RunStatus::kFailed);
  EXPECT_EQ(result.record.error_kind, "budget");
  EXPECT_TRUE(CanResume(result.record));
  EXPECT_EQ(listener.output, "");

  // The record on disk carries the kind.
  Result<store::Store> st = store::Store::Open(dir.path(), false);
  ASSERT_TRUE(st.ok());
  Result<store::RunRecord> stored = st->ReadRun("budgeted");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->error_kind, "budget");

  BudgetOptions more;
  more.max_effects = 100;
  RunResult resumed;
  ASSERT_TRUE(ResumeRun(dir.path(), "budgeted", more, &listener, &resumed).ok());
  EXPECT_EQ(listener.resumed, std::vector<std::string>{"budgeted"});
  EXPECT_FALSE(resumed.refused);
  EXPECT_EQ(resumed.outcome, RunOutcome::kCompleted);
  EXPECT_FALSE(resumed.error.has_value());
  EXPECT_EQ(resumed.record.status, store::RunStatus::kCompleted);
  EXPECT_EQ(resumed.record.error_kind, "");
  EXPECT_FALSE(CanResume(resumed.record));
  EXPECT_EQ(listener.output, "done 6\n");
}

TEST(Runtime, AnUncaughtErrorIsReturnedAndTheRunIsNotResumed) {
  TempDir dir;
  Module program = Compile("print(\"before\")\nfn f(xs) {\n  return xs[5]\n}\nf([1, 2])\n");
  RecordingListener listener;
  RunResult result;
  ASSERT_TRUE(StartRun(Options(dir, "broken"), program, &listener, &result).ok());
  EXPECT_EQ(listener.output, "before\n");
  EXPECT_EQ(result.outcome, RunOutcome::kFailed);
  ASSERT_TRUE(result.error.has_value());
  EXPECT_TRUE(result.error->is_error);
  EXPECT_EQ(result.error->kind, "index");
  EXPECT_EQ(result.error->message, "list index 5 out of range (length 2)");
  ASSERT_EQ(result.error->trace.size(), 2u);
  EXPECT_NE(result.error->trace[0].find("test.flow:3)"), std::string::npos) << result.error->trace[0];
  EXPECT_EQ(result.record.error_kind, "index");
  EXPECT_FALSE(CanResume(result.record));

  RunResult again;
  ASSERT_TRUE(ResumeRun(dir.path(), "broken", {}, &listener, &again).ok());
  EXPECT_TRUE(again.refused);
  EXPECT_FALSE(again.executed);
  EXPECT_EQ(again.record.status, store::RunStatus::kFailed);
  EXPECT_TRUE(listener.resumed.empty());
}

TEST(Runtime, ResumabilityIsTheRecordsDataNotItsText) {
  store::RunRecord r;
  r.status = store::RunStatus::kFailed;
  r.detail = "error: budget: the run used its budget of 4 effects";
  r.error_kind = "value";  // the text says budget; the kind does not
  EXPECT_FALSE(CanResume(r));
  r.detail = "something else entirely";
  r.error_kind = "budget";
  EXPECT_TRUE(CanResume(r));
  for (store::RunStatus s : {store::RunStatus::kRunning, store::RunStatus::kSuspended, store::RunStatus::kCrashed}) {
    r.status = s;
    EXPECT_TRUE(CanResume(r));
  }
  for (store::RunStatus s : {store::RunStatus::kCompleted, store::RunStatus::kCancelled}) {
    r.status = s;
    EXPECT_FALSE(CanResume(r));
  }
}

TEST(Runtime, EphemeralRunReturnsItsErrorAndOutput) {
  Module program = Compile("print(\"hi\")\nthrow error(\"nope\", \"it broke\", {n: 1})\n");
  TempDir dir;
  StartOptions options = Options(dir, "");
  options.ephemeral = true;
  RecordingListener listener;
  RunResult result;
  ASSERT_TRUE(StartRun(options, program, &listener, &result).ok());
  EXPECT_EQ(listener.output, "hi\n");
  EXPECT_TRUE(listener.started.empty());
  EXPECT_EQ(result.run_id, "");
  EXPECT_EQ(result.outcome, RunOutcome::kFailed);
  ASSERT_TRUE(result.error.has_value());
  EXPECT_EQ(result.error->kind, "nope");
  EXPECT_EQ(result.error->message, "it broke");
  EXPECT_EQ(result.error->data_json, "{\"n\":1}");
  EXPECT_TRUE(fs::is_empty(dir.path()));  // no store
}

// A listener whose output fails: the run stops with the print not done.
class FailingListener : public RecordingListener {
 public:
  Status WriteOutput(std::string_view) override { return Status::IOError("cannot write the program's output: disk full"); }
};

// A resumed run reads its strings when first used (docs/checkpoint.md, "Resume cost"):
// one found damaged only as the run ends (here in its uncaught error's data) stops it
// there, with no error or end recorded, as a damaged resume does.
TEST(Runtime, ADamagedStringFoundAsTheRunEndsStopsItWithNothingRecorded) {
  TempDir dir;
  Module program = Compile(
      "let a = \"state \" + str(42)\ntime.now()\ntime.now()\nthrow error(\"boom\", \"msg\", {s: a})\n");
  StartOptions options = Options(dir, "ending");
  options.budgets.max_effects = 1;  // a budget stop before the second effect: resumable
  RecordingListener listener;
  RunResult result;
  ASSERT_TRUE(StartRun(options, program, &listener, &result).ok());
  ASSERT_EQ(result.record.error_kind, "budget");
  {  // damage the string `a` where the run keeps it
    Result<store::Store> st = store::Store::Open(dir.path(), false);
    ASSERT_TRUE(st.ok());
    std::string key;
    {
      LoadedRun run;
      ASSERT_TRUE(OpenRunToRead(*st, "ending", &run).ok());
      for (const auto& [name, v] : run.vm->InspectGlobals())
        if (name == "a") {
          std::string raw;
          uint32_t version = 0;
          ASSERT_TRUE(run.db->GetAt(store::ObjectKey(v.ref), store::kLatestCheckpoint, &raw, &version).ok());
          key = store::VersionedKey(store::ObjectKey(v.ref), version);
        }
    }
    ASSERT_FALSE(key.empty());
    ASSERT_TRUE(st->UnpackRun("ending").ok());  // an idle run is kept packed
    auto db = store::RunDb::Open(flow::store::RunFilePath(st->dir(), "ending", flow::store::kDbDir), {});
    ASSERT_TRUE(db.ok()) << db.status().message();
    store::Batch damage;
    damage.Put(key, "not a sealed record");
    ASSERT_TRUE((*db)->Write(damage, true).ok());
  }
  BudgetOptions more;
  more.max_effects = 100;
  RunResult resumed;
  Status s = ResumeRun(dir.path(), "ending", more, &listener, &resumed);
  EXPECT_TRUE(s.IsCorruption()) << s.message();
  EXPECT_NE(s.message().find("string"), std::string::npos) << s.message();
  EXPECT_EQ(resumed.outcome, RunOutcome::kAborted);
  EXPECT_FALSE(resumed.error.has_value());
  Result<store::Store> st = store::Store::Open(dir.path(), false);
  ASSERT_TRUE(st.ok());
  Result<store::RunRecord> stored = st->ReadRun("ending");
  ASSERT_TRUE(stored.ok());
  EXPECT_NE(stored->status, store::RunStatus::kFailed);  // not failed with an error built on ""
  EXPECT_NE(stored->status, store::RunStatus::kCompleted);
}

TEST(Runtime, OutputThatCannotBeWrittenStopsTheRun) {
  TempDir dir;
  Module program = Compile("print(\"lost\")\nprint(\"never\")\n");
  FailingListener listener;
  RunResult result;
  Status s = StartRun(Options(dir, "mute"), program, &listener, &result);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(result.output_failed);
  EXPECT_EQ(result.outcome, RunOutcome::kAborted);
  EXPECT_NE(s.message().find("disk full"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace flow::runtime
