// Retention in the store: deleting runs, collecting code no run names, and never the code
// a run is being created on (docs/checkpoint.md, "Retention").
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "store/keys.h"
#include "store/store.h"
#include "temp_dir.h"

namespace flow::store {
namespace {

RunRecord RecordFor(const std::string& id, const std::string& hash) {
  RunRecord r;
  r.id = id;
  r.program = "/p.flow";
  r.code_hash = hash;
  r.status = RunStatus::kCompleted;
  return r;
}

TEST(Retention, CollectCodeRemovesOnlyCodeNoRecordNames) {
  testing::TempDir dir;
  Store st = Store::Open(dir.path(), true).value();
  std::string kept = st.PutCode("kept code").value(), dropped = st.PutCode("dropped code").value();
  ASSERT_TRUE(st.PutSource(kept, "source of kept").ok());
  ASSERT_TRUE(st.PutSource(dropped, "source of dropped").ok());
  ASSERT_TRUE(st.CreateRunDir("r1").ok());
  ASSERT_TRUE(st.WriteRun(RecordFor("r1", kept)).ok());
  std::vector<std::string> removed;
  uint64_t freed = 0;
  ASSERT_TRUE(st.CollectCode(true, {}, &removed, &freed).ok());
  EXPECT_EQ(removed, std::vector<std::string>{dropped});
  EXPECT_TRUE(std::filesystem::exists(CodePath(dir.path(), dropped))) << "a dry run removes nothing";
  ASSERT_TRUE(st.CollectCode(true, {"r1"}, &removed, &freed).ok());
  EXPECT_EQ(removed.size(), 2u) << "a dry run counts the runs about to go as gone";
  ASSERT_TRUE(st.CollectCode(false, {}, &removed, &freed).ok());
  EXPECT_EQ(freed, std::string("dropped code").size() + std::string("source of dropped").size());
  EXPECT_FALSE(std::filesystem::exists(CodePath(dir.path(), dropped)));
  EXPECT_FALSE(std::filesystem::exists(SourcePath(dir.path(), dropped)));
  std::string text;
  EXPECT_TRUE(st.GetCode(kept, &text).ok());
  EXPECT_TRUE(st.GetSource(kept, &text).ok());
}

// A start stores its code, then (after its first checkpoint) the record naming it; in
// between no record names the code. Holding the code lock shared across that, the start
// makes gc wait, so the code is there when its record is.
TEST(Retention, CollectCodeWaitsForARunBeingCreatedOnItsCode) {
  testing::TempDir dir;
  Store st = Store::Open(dir.path(), true).value();
  auto creating = st.LockCode(false);
  ASSERT_TRUE(creating.ok());
  std::string hash = st.PutCode("new code").value();
  std::vector<std::string> removed;
  uint64_t freed = 0;
  std::thread gc([&] {
    Store other = Store::Open(dir.path(), false).value();
    ASSERT_TRUE(other.CollectCode(false, {}, &removed, &freed).ok());
  });
  // Give gc every chance to run now: without the lock it would find no record naming the code.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(st.CreateRunDir("r1").ok());
  ASSERT_TRUE(st.WriteRun(RecordFor("r1", hash)).ok());
  creating->reset();
  gc.join();
  EXPECT_TRUE(removed.empty());
  std::string bytes;
  EXPECT_TRUE(st.GetCode(hash, &bytes).ok());
}

TEST(Retention, DeleteRunRemovesItsFolderAndMailbox) {
  testing::TempDir dir;
  Store st = Store::Open(dir.path(), true).value();
  std::string hash = st.PutCode("code").value();
  ASSERT_TRUE(st.CreateRunDir("r1").ok());
  ASSERT_TRUE(st.WriteRun(RecordFor("r1", hash)).ok());
  ASSERT_TRUE(st.UpdateShared(MailboxName("r1"), [](std::string* b) { *b = "x"; }).ok());
  uint64_t freed = 0;
  ASSERT_TRUE(st.DeleteRun("r1", &freed).ok());
  EXPECT_GT(freed, 0u);
  EXPECT_FALSE(std::filesystem::exists(RunPath(dir.path(), "r1")));
  EXPECT_FALSE(std::filesystem::exists(SharedFilePath(dir.path(), MailboxName("r1"))));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(RunsPath(dir.path())), {}), 0)
      << "no hidden leftover";
  EXPECT_TRUE(st.DeleteRun("r1", &freed).IsNotFound());
}

}  // namespace
}  // namespace flow::store
