// runtime/run_view.h: what `flow ui` reads of a run, as data. A failed run keeps its whole
// error with its stack (key `e`, runtime/error_record.h); its history reads in pages in
// `flow history` order; the state after a past effect, or (not kept) the next kept one, saying so;
// source lines from the source stored with the run's code.
#include "runtime/run_view.h"

#include <gtest/gtest.h>

#include "compiler/compiler.h"
#include "runtime/error_record.h"
#include "run_program.h"
#include "temp_dir.h"

namespace flow::runtime {
namespace {

using testing::Compile;
using testing::TempDir;

class QuietListener : public RunListener {
 public:
  Status WriteOutput(std::string_view) override { return Status::Ok(); }
};

Status Start(const TempDir& dir, const std::string& id, const std::string& source,
             uint32_t keep_checkpoints = store::kKeepDefault) {
  StartOptions o;
  o.keep_checkpoints = keep_checkpoints;
  o.source = source;
  o.file = "test.flow";
  o.store_dir = dir.path();
  o.run_id = id;
  o.virtual_time = true;
  Module program = Compile(source);
  QuietListener listener;
  RunResult result;
  return StartRun(o, program, &listener, &result);
}

TEST(ErrorRecord, RoundTripsAndRefusesDamage) {
  ErrorReport e;
  e.kind = "validation";
  e.message = "order 42 has no items";
  e.data_json = R"({"n":42})";
  e.trace = {"validate (/x/a.flow:4)", "<script> (/x/a.flow:6)"};
  std::string bytes = EncodeErrorRecord(e);
  ErrorReport back;
  ASSERT_TRUE(DecodeErrorRecord(bytes, &back).ok());
  EXPECT_EQ(back.kind, e.kind);
  EXPECT_EQ(back.message, e.message);
  EXPECT_EQ(back.data_json, e.data_json);
  EXPECT_EQ(back.trace, e.trace);
  bytes[bytes.size() - 3] ^= 1;
  EXPECT_TRUE(DecodeErrorRecord(bytes, &back).IsCorruption());
  EXPECT_TRUE(DecodeErrorRecord(bytes.substr(0, 5), &back).IsCorruption());
}

TEST(RunView, AFailedRunKeepsItsWholeErrorWithItsStack) {
  TempDir dir;
  ASSERT_TRUE(Start(dir, "broken", "print(\"before\")\nfn f(xs) {\n  return xs[5]\n}\nf([1, 2])\n").ok());
  RunDetail d;
  ASSERT_TRUE(ReadRunDetail(dir.path(), "broken", &d).ok());
  EXPECT_EQ(d.summary.status, store::RunStatus::kFailed);
  ASSERT_TRUE(d.error.has_value());
  EXPECT_TRUE(d.error_has_stack);
  EXPECT_EQ(d.error->kind, "index");
  EXPECT_EQ(d.error->message, "list index 5 out of range (length 2)");
  ASSERT_EQ(d.stack.size(), 2u);
  EXPECT_EQ(d.stack[0].function, "f");
  EXPECT_EQ(d.stack[0].line, 3u);
  EXPECT_EQ(d.stack[1].line, 5u);
  EXPECT_TRUE(ReadRunDetail(dir.path(), "nothing-here", &d).IsNotFound());
}

TEST(RunView, HistoryReadsInPages) {
  TempDir dir;
  ASSERT_TRUE(Start(dir, "many", "for i in range(7) { time.now() }\n").ok());
  HistoryPage page;
  ASSERT_TRUE(ReadRunHistory(dir.path(), "many", 2, 3, &page).ok());
  EXPECT_EQ(page.total, 7u);
  ASSERT_EQ(page.entries.size(), 3u);
  EXPECT_EQ(page.entries[0].seq, 3u);
  EXPECT_EQ(page.entries[2].seq, 5u);
  ASSERT_TRUE(ReadRunHistory(dir.path(), "many", 6, 100, &page).ok());
  ASSERT_EQ(page.entries.size(), 1u);
  EXPECT_EQ(page.entries[0].seq, 7u);
}

std::string GlobalJson(const StateView& v, const std::string& name) {
  for (const auto& g : v.globals)
    if (g.name == name) return g.json;
  return "<none>";
}

TEST(RunView, StateAfterAPastEffect) {
  TempDir dir;
  ASSERT_TRUE(Start(dir, "three", "let a = 0\nfor i in range(3) { time.now()\n a = a + 10 }\n").ok());
  StateView v;
  ASSERT_TRUE(ReadRunState(dir.path(), "three", std::nullopt, &v).ok());
  EXPECT_EQ(v.effects_done, 3u);
  EXPECT_EQ(GlobalJson(v, "a"), "20");  // the last checkpoint: right after effect 3
  ASSERT_TRUE(ReadRunState(dir.path(), "three", 1, &v).ok());
  EXPECT_EQ(v.effects_done, 1u);
  EXPECT_FALSE(v.at_not_kept) << v.note;
  EXPECT_EQ(GlobalJson(v, "a"), "0");  // right after effect 1: before the loop body's assignment
  ASSERT_TRUE(ReadRunState(dir.path(), "three", 0, &v).ok());
  EXPECT_EQ(v.effects_done, 0u);
  EXPECT_TRUE(ReadRunState(dir.path(), "three", 4, &v).IsNotFound());
}

TEST(RunView, StateAtACheckpointNotKeptSaysSo) {
  TempDir dir;
  ASSERT_TRUE(Start(dir, "three", "let a = 1\nfor i in range(3) { time.now() }\n", /*keep_checkpoints=*/1).ok());
  StateView v;
  ASSERT_TRUE(ReadRunState(dir.path(), "three", 1, &v).ok());
  EXPECT_TRUE(v.at_not_kept);
  EXPECT_EQ(v.effects_done, 3u);
  EXPECT_NE(v.note.find("after effect 1"), std::string::npos) << v.note;
  EXPECT_EQ(GlobalJson(v, "a"), "1");
}

TEST(RunView, SourceLinesAreTheStoredSource) {
  TempDir dir;
  ASSERT_TRUE(Start(dir, "src", "print(\"one\")\nthrow error(\"x\", \"boom\")\n").ok());
  RunDetail d;
  ASSERT_TRUE(ReadRunDetail(dir.path(), "src", &d).ok());
  // test.flow is not on disk: the lines come from the store.
  ASSERT_TRUE(d.source.available) << d.source.note;
  ASSERT_EQ(d.source.lines.size(), 2u);
  EXPECT_EQ(d.source.lines[1], "throw error(\"x\", \"boom\")");
  EXPECT_EQ(d.source.file_on_disk, ProgramFileState::kGone);
}

}  // namespace
}  // namespace flow::runtime
