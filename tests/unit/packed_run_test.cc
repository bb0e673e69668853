// Packed runs (store/packed_run.cc): an idle run's record, mark and database in one file,
// whole in one form or the other at every step of a pack or an unpack.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "store/keys.h"
#include "store/store.h"
#include "temp_dir.h"

namespace flow::store {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// A run "r1" with a record, a mark (checkpoint 3) and a database holding key "k".
struct RunInFiles {
  TempDir dir;
  Result<Store> st = Store::Open(dir.path() + "/s", true);
  RunRecord record;

  RunInFiles() {
    EXPECT_TRUE(st.ok());
    EXPECT_TRUE(st->CreateRunDir("r1").ok());
    {
      auto db = RunDb::Open(flow::store::RunFilePath(st->dir(), "r1", flow::store::kDbDir), {.create = true});
      EXPECT_TRUE(db.ok());
      Batch b;
      b.Put("k", "the value");
      EXPECT_TRUE((*db)->Write(b, true).ok());
    }
    auto mark = st->OpenMark("r1");
    EXPECT_TRUE(mark.ok() && (*mark)->Write(3).ok());
    record.id = "r1";
    record.program = "p.flow";
    record.code_hash = CodeHash("code");
    record.status = RunStatus::kSuspended;
    record.detail = "waiting for signal go";
    EXPECT_TRUE(st->WriteRun(record).ok());
  }
  std::string Path(const char* name) { return RunFilePath(st->dir(), "r1", name); }
  // The database read back, read only, from either form.
  std::string ValueOfK() {
    auto db = st->OpenRunDbToRead("r1");
    if (!db.ok()) return "error: " + db.status().message();
    std::string v;
    Status s = (*db)->Get("k", &v);
    return s.ok() ? v : "error: " + s.message();
  }
};

uint64_t MarkOf(const Store& st) {
  Result<uint64_t> m = st.ReadMark("r1");
  return m.ok() ? *m : 0;
}

std::vector<std::string> Names(const std::string& folder) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(folder)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(PackedRun, PackLeavesOneFileThatReadsAsTheRunAndUnpacksBackToIt) {
  RunInFiles run;
  ASSERT_TRUE(run.st->PackRun("r1", 1 << 20).ok());
  EXPECT_EQ(Names(run.st->RunDir("r1")), (std::vector<std::string>{"packed"}));  // no record, mark or db/
  EXPECT_TRUE(run.st->IsPacked("r1"));
  EXPECT_TRUE(run.st->RunExists("r1"));
  auto record = run.st->ReadRun("r1");
  ASSERT_TRUE(record.ok()) << record.status().message();
  EXPECT_EQ(record->detail, "waiting for signal go");
  EXPECT_EQ(MarkOf(*run.st), 3u);
  EXPECT_EQ(run.ValueOfK(), "the value");
  EXPECT_EQ(run.st->ListRuns([](const std::string&, const Status&) {}).size(), 1u);
  EXPECT_TRUE(run.st->PackRun("r1", 1 << 20).ok()) << "packing a packed run does nothing";

  ASSERT_TRUE(run.st->UnpackRun("r1").ok());
  EXPECT_FALSE(run.st->IsPacked("r1"));
  EXPECT_FALSE(fs::exists(run.Path(kPackedFile)));
  EXPECT_EQ(MarkOf(*run.st), 3u);
  auto db = RunDb::Open(flow::store::RunFilePath(run.st->dir(), "r1", flow::store::kDbDir), {});  // for writing again
  ASSERT_TRUE(db.ok()) << db.status().message();
  std::string v;
  EXPECT_TRUE((*db)->Get("k", &v).ok());
  EXPECT_EQ(v, "the value");
}

TEST(PackedRun, ARunTooBigToPackStaysInFiles) {
  RunInFiles run;
  Status s = run.st->PackRun("r1", 100);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(run.st->IsPacked("r1"));
  EXPECT_FALSE(fs::exists(run.Path(kPackedFile)));
  EXPECT_EQ(run.ValueOfK(), "the value");
}

// A pack cut short after writing the packed file: the record is still there, so the
// folder is the run, and the next unpack drops the copy.
TEST(PackedRun, APackCutShortBeforeTheRecordWentLeavesTheFolderInCharge) {
  RunInFiles run;
  std::string record_bytes;
  ASSERT_TRUE(ReadFile(run.Path(kRunRecordFile), &record_bytes).ok());
  ASSERT_TRUE(run.st->PackRun("r1", 1 << 20).ok());
  ASSERT_TRUE(run.st->UnpackRun("r1").ok());
  ASSERT_TRUE(run.st->PackRun("r1", 1 << 20).ok());
  std::string packed;
  ASSERT_TRUE(ReadFile(run.Path(kPackedFile), &packed).ok());
  ASSERT_TRUE(run.st->UnpackRun("r1").ok());
  ASSERT_TRUE(WriteFileAtomically(run.Path(kPackedFile), packed).ok());  // as if the pack stopped there
  EXPECT_FALSE(run.st->IsPacked("r1"));
  EXPECT_EQ(run.ValueOfK(), "the value");
  ASSERT_TRUE(run.st->UnpackRun("r1").ok());
  EXPECT_FALSE(fs::exists(run.Path(kPackedFile)));
  EXPECT_EQ(run.ValueOfK(), "the value");
}

// A pack cut short after the record went, with the database partly removed; and an
// unpack cut short with the database partly written: the packed file is the run.
TEST(PackedRun, LeftoversBesideAPackedFileAreReplacedByTheUnpack) {
  RunInFiles run;
  ASSERT_TRUE(run.st->PackRun("r1", 1 << 20).ok());
  fs::create_directory(flow::store::RunFilePath(run.st->dir(), "r1", flow::store::kDbDir));
  std::ofstream(flow::store::RunFilePath(run.st->dir(), "r1", flow::store::kDbDir) + "/CURRENT") << "MANIFEST-999999\n";  // half of something
  std::ofstream(run.Path(kMarkFile)) << "junk";
  EXPECT_TRUE(run.st->IsPacked("r1"));
  EXPECT_EQ(run.ValueOfK(), "the value") << "a reader reads the packed file";
  EXPECT_EQ(MarkOf(*run.st), 3u) << "and its mark, not the torn one beside it";
  ASSERT_TRUE(run.st->UnpackRun("r1").ok());
  EXPECT_EQ(MarkOf(*run.st), 3u);
  EXPECT_EQ(run.ValueOfK(), "the value");
}

// A damaged copy beside a whole folder (an unpack cut short, then damage) hides nothing:
// the record is read, and the next unpack removes the copy.
TEST(PackedRun, ADamagedCopyBesideARecordIsIgnored) {
  RunInFiles run;
  ASSERT_TRUE(WriteFileAtomically(run.Path(kPackedFile), "not a packed run").ok());
  auto record = run.st->ReadRun("r1");
  ASSERT_TRUE(record.ok()) << record.status().message();
  EXPECT_EQ(record->detail, "waiting for signal go");
  EXPECT_TRUE(run.st->RunExists("r1"));
  ASSERT_TRUE(run.st->UnpackRun("r1").ok());
  EXPECT_FALSE(fs::exists(run.Path(kPackedFile)));
}

TEST(PackedRun, DamageToThePackedFileIsCorruptionNeverAnotherRun) {
  RunInFiles run;
  ASSERT_TRUE(run.st->PackRun("r1", 1 << 20).ok());
  std::string bytes;
  ASSERT_TRUE(ReadFile(run.Path(kPackedFile), &bytes).ok());
  for (size_t at : {size_t{0}, size_t{5}, bytes.size() / 2, bytes.size() - 1}) {
    std::string bad = bytes;
    bad[at] ^= 0x20;
    ASSERT_TRUE(WriteFileAtomically(run.Path(kPackedFile), bad).ok());
    EXPECT_FALSE(run.st->ReadRun("r1").ok()) << at;
    EXPECT_FALSE(run.st->UnpackRun("r1").ok()) << at;
    EXPECT_TRUE(fs::exists(run.Path(kPackedFile))) << "never removed: " << at;
  }
  ASSERT_TRUE(WriteFileAtomically(run.Path(kPackedFile), bytes.substr(0, bytes.size() / 2)).ok());
  EXPECT_TRUE(run.st->ReadRun("r1").status().IsCorruption());
  // A packed file naming a path out of the database folder is malformed, not written there.
  Store::PackedRun evil;
  evil.record = bytes;  // any bytes: the names are checked first
  evil.db_files = {{"../../escaped", "x"}};
  ASSERT_TRUE(WriteFileAtomically(run.Path(kPackedFile), EncodePackedRun(evil)).ok());
  EXPECT_TRUE(run.st->ReadPacked("r1").status().IsCorruption());
  EXPECT_FALSE(run.st->UnpackRun("r1").ok());
  EXPECT_FALSE(fs::exists(run.st->RunDir("r1") + "/../escaped"));
}

TEST(ReadFile, RefusesWhatIsNoRegularFileAndWhatIsTooBig) {
  TempDir dir;
  std::string out;
  EXPECT_TRUE(ReadFile(dir.path() + "/missing", &out).IsNotFound());
  std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  EXPECT_TRUE(ReadFile(fifo, &out).IsCorruption()) << "a FIFO is refused without blocking";
  std::ofstream(dir.path() + "/big") << std::string(1000, 'x');
  EXPECT_TRUE(ReadFile(dir.path() + "/big", &out, 999).IsCorruption());
  ASSERT_TRUE(ReadFile(dir.path() + "/big", &out, 1000).ok());
  EXPECT_EQ(out.size(), 1000u);
}

}  // namespace
}  // namespace flow::store
