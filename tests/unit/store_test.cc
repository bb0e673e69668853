#include <gtest/gtest.h>
#include <fcntl.h>
#include <leveldb/env.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>

#include "store/keys.h"
#include "store/store.h"
#include "runtime/journal.h"
#include "vm/base/coding.h"
#include "vm/base/record.h"
#include "runtime/runtime.h"
#include "temp_dir.h"

namespace flow::store {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;

// A LevelDB Env that remembers how much of each file was synced, and can simulate a power
// loss: every file is cut back to its synced length, as LevelDB's own fault injection does.
class PowerLossEnv : public leveldb::EnvWrapper {
 public:
  PowerLossEnv() : EnvWrapper(leveldb::Env::Default()) {}

  leveldb::Status NewWritableFile(const std::string& name, leveldb::WritableFile** result) override {
    leveldb::WritableFile* inner;
    leveldb::Status s = target()->NewWritableFile(name, &inner);
    if (s.ok()) *result = new TrackedFile(this, name, inner, 0);
    return s;
  }
  leveldb::Status NewAppendableFile(const std::string& name, leveldb::WritableFile** result) override {
    uint64_t size = 0;
    target()->GetFileSize(name, &size);
    leveldb::WritableFile* inner;
    leveldb::Status s = target()->NewAppendableFile(name, &inner);
    if (s.ok()) *result = new TrackedFile(this, name, inner, size);
    return s;
  }

  int syncs() {
    std::lock_guard<std::mutex> lock(mu_);
    return syncs_;
  }

  void PowerLoss() {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, state] : files_)
      if (fs::exists(name)) fs::resize_file(name, state.synced);
  }

 private:
  struct State {
    uint64_t size = 0;
    uint64_t synced = 0;
  };
  class TrackedFile : public leveldb::WritableFile {
   public:
    TrackedFile(PowerLossEnv* env, std::string name, leveldb::WritableFile* inner, uint64_t size)
        : env_(env), name_(std::move(name)), inner_(inner) {
      std::lock_guard<std::mutex> lock(env_->mu_);
      env_->files_[name_] = {size, size};
    }
    ~TrackedFile() override { delete inner_; }
    leveldb::Status Append(const leveldb::Slice& data) override {
      std::lock_guard<std::mutex> lock(env_->mu_);
      env_->files_[name_].size += data.size();
      return inner_->Append(data);
    }
    leveldb::Status Close() override { return inner_->Close(); }
    leveldb::Status Flush() override { return inner_->Flush(); }
    leveldb::Status Sync() override {
      leveldb::Status s = inner_->Sync();
      std::lock_guard<std::mutex> lock(env_->mu_);
      ++env_->syncs_;
      if (s.ok()) env_->files_[name_].synced = env_->files_[name_].size;
      return s;
    }

   private:
    PowerLossEnv* env_;
    std::string name_;
    leveldb::WritableFile* inner_;
  };

  std::mutex mu_;
  std::map<std::string, State> files_;
  int syncs_ = 0;
};

// Acknowledges `steps` checkpoints, loses power, reopens: how many acknowledged ones are gone.
uint64_t CheckpointsLostAtPowerLoss(bool sync, uint64_t steps) {
  TempDir dir;
  PowerLossEnv env;
  std::string db_dir = dir.path() + "/db";
  {
    auto db = RunDb::Open(db_dir, {.create = true, .env = &env});
    EXPECT_TRUE(db.ok()) << db.status().message();
    for (uint64_t i = 1; i <= steps; ++i) {
      Batch batch;
      batch.Put("s", std::to_string(i));
      batch.Put("h" + std::to_string(i), std::string(100, 'x'));
      EXPECT_TRUE((*db)->Write(batch, sync).ok());
    }
  }
  env.PowerLoss();
  auto db = RunDb::Open(db_dir, {.create = false, .env = &env});
  EXPECT_TRUE(db.ok()) << db.status().message();
  std::string value;
  Status s = (*db)->Get("s", &value);
  uint64_t durable = s.ok() ? std::stoull(value) : 0;
  return steps - durable;
}

TEST(PowerLoss, SyncModeLosesNoAcknowledgedCheckpoint) { EXPECT_EQ(CheckpointsLostAtPowerLoss(true, 50), 0u); }

TEST(PowerLoss, TheSameTestDetectsLossInAsyncMode) {
  // Async writes are not synced: a power loss takes them, and the check above must see it.
  EXPECT_GT(CheckpointsLostAtPowerLoss(false, 50), 0u);
}

// Every run starts by creating its database: that costs one MANIFEST and one CURRENT
// written and synced (LevelDB's default then writes both again), and survives a power loss.
TEST(RunDb, ANewDatabaseIsSyncedOnceAndSurvivesAPowerLoss) {
  TempDir dir;
  PowerLossEnv env;
  std::string db_dir = dir.path() + "/db";
  {
    auto db = RunDb::Open(db_dir, {.create = true, .env = &env});
    ASSERT_TRUE(db.ok()) << db.status().message();
    EXPECT_EQ(env.syncs(), 2);
    Batch batch;
    batch.Put("s", "1");
    ASSERT_TRUE((*db)->Write(batch, true).ok());
  }
  env.PowerLoss();
  for (int reopen = 0; reopen < 2; ++reopen) {
    auto db = RunDb::Open(db_dir, {.create = false, .env = &env});
    ASSERT_TRUE(db.ok()) << db.status().message();
    std::string value;
    ASSERT_TRUE((*db)->Get("s", &value).ok());
    EXPECT_EQ(value, "1");
  }
}

// A process killed while LevelDB wrote a big batch leaves a torn record at the end of the
// log (the batch went out in several write() calls). Reopened with reuse_logs, LevelDB drops
// the torn tail and goes on appending: the records written after it must not make the log
// read as damaged at the next open.
TEST(RunDb, ALogEndingInATornRecordReopensAndTakesWritesAgain) {
  TempDir dir;
  std::string db_dir = dir.path() + "/db";
  {
    auto db = RunDb::Open(db_dir, {.create = true});
    ASSERT_TRUE(db.ok()) << db.status().message();
    Batch small;
    small.Put("a", "1");
    ASSERT_TRUE((*db)->Write(small, true).ok());
    Batch big;
    big.Put("big", std::string(3 << 20, 'x'));
    ASSERT_TRUE((*db)->Write(big, true).ok());
  }
  std::string log;
  for (const auto& e : std::filesystem::directory_iterator(db_dir))
    if (e.path().extension() == ".log") log = e.path();
  ASSERT_FALSE(log.empty());
  std::filesystem::resize_file(log, std::filesystem::file_size(log) - (1 << 20));  // torn
  for (int reopen = 0; reopen < 3; ++reopen) {
    auto db = RunDb::Open(db_dir, {.create = false});
    ASSERT_TRUE(db.ok()) << "reopen " << reopen << ": " << db.status().message();
    std::string value;
    ASSERT_TRUE((*db)->Get("a", &value).ok());
    EXPECT_EQ(value, "1");
    EXPECT_TRUE((*db)->Get("big", &value).IsNotFound());
    if (reopen > 0) {
      ASSERT_TRUE((*db)->Get("after" + std::to_string(reopen - 1), &value).ok());
    }
    Batch after;
    after.Put("after" + std::to_string(reopen), std::string(100 << 10, 'y'));
    ASSERT_TRUE((*db)->Write(after, true).ok());
  }
}

// A folder that is empty, or that another process is making into a store (only some of
// its folders exist yet), is no store yet for a reader (flow runs lists nothing), not a
// damaged one; a folder holding anything else is not a store.
TEST(Store, AFolderBeingMadeIntoAStoreIsNoStoreYet) {
  TempDir dir;
  const std::string path = dir.path() + "/s";
  std::filesystem::create_directory(path);
  EXPECT_TRUE(Store::Open(path, false).status().IsNotFound());
  std::filesystem::create_directory(path + "/code");
  EXPECT_TRUE(Store::Open(path, false).status().IsNotFound());
  std::filesystem::create_directory(path + "/other");
  Status s = Store::Open(path, false).status();
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.message();
  EXPECT_NE(s.message().find("is not a Flow store"), std::string::npos) << s.message();
  std::filesystem::remove(path + "/other");
  ASSERT_TRUE(Store::Open(path, true).ok());
  EXPECT_TRUE(Store::Open(path, false).ok());
}

// runs/ is the top of a hierarchy for ext4's allocator (docs/checkpoint.md, "runs/ spreads
// its folders"), set on a new store and on an old one when opened.
TEST(Store, RunsFolderIsMarkedTopOfAHierarchy) {
  TempDir dir;
  const std::string runs = dir.path() + "/s/" + kRunsDir;
  auto flags_of = [&](int* flags) {
    int fd = ::open(runs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool ok = fd >= 0 && ::ioctl(fd, FS_IOC_GETFLAGS, flags) == 0;
    if (fd >= 0) ::close(fd);
    return ok;
  };
  ASSERT_TRUE(Store::Open(dir.path() + "/s", true).ok());
  int flags = 0;
  if (!flags_of(&flags)) GTEST_SKIP() << "this file system keeps no inode flags";
  EXPECT_TRUE(flags & FS_TOPDIR_FL);
  int fd = ::open(runs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  int cleared = flags & ~FS_TOPDIR_FL;
  ASSERT_EQ(::ioctl(fd, FS_IOC_SETFLAGS, &cleared), 0);  // as a store made before
  ::close(fd);
  ASSERT_TRUE(Store::Open(dir.path() + "/s", false).ok());
  ASSERT_TRUE(flags_of(&flags));
  EXPECT_TRUE(flags & FS_TOPDIR_FL);
}

TEST(Store, RunRecordsRoundTripAndDamageIsReported) {
  TempDir dir;
  auto st = Store::Open(dir.path() + "/s", true);
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(st->CreateRunDir("r1").ok());
  EXPECT_FALSE(st->CreateRunDir("r1").ok());
  RunRecord r;
  r.id = "r1";
  r.program = "p.flow";
  r.code_hash = CodeHash("some bytecode");
  r.args = {{"k", "v"}};
  r.status = RunStatus::kSuspended;
  r.effects = 42;
  r.detail = "waiting";
  ASSERT_TRUE(st->WriteRun(r).ok());
  auto back = st->ReadRun("r1");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->program, "p.flow");
  EXPECT_EQ(back->args, r.args);
  EXPECT_EQ(back->status, RunStatus::kSuspended);
  EXPECT_EQ(back->effects, 42u);
  EXPECT_EQ(back->detail, "waiting");
  EXPECT_TRUE(st->ReadRun("nope").status().IsNotFound());
  EXPECT_EQ(st->ReadRun("../x").status().code(), Status::Code::kInvalidArgument);

  // A code hash names a file in code/: anything but the 32 hex digits a store writes is a
  // malformed record (an imported record could point anywhere).
  for (const std::string& bad : std::vector<std::string>{"abc", "../../../../tmp/x", std::string(32, 'G'), std::string(31, '0')}) {
    RunRecord odd = r;
    odd.code_hash = bad;
    ASSERT_TRUE(st->WriteRun(odd).ok());
    EXPECT_TRUE(st->ReadRun("r1").status().IsCorruption()) << bad;
  }
  ASSERT_TRUE(st->WriteRun(r).ok());

  std::string path = dir.path() + "/s/runs/r1/run";
  FILE* f = std::fopen(path.c_str(), "r+b");
  std::fseek(f, 12, SEEK_SET);
  std::fputc('!', f);
  std::fclose(f);
  EXPECT_TRUE(st->ReadRun("r1").status().IsCorruption());
}

// Version 2 keeps a failed run's error kind; a version 1 record (written before it)
// still reads, its kind taken once from its detail ("error: KIND: message").
TEST(Store, RunRecordKeepsItsErrorKindAndVersion1StillReads) {
  TempDir dir;
  auto st = Store::Open(dir.path() + "/s", true);
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(st->CreateRunDir("r1").ok());
  RunRecord r;
  r.id = "r1";
  r.code_hash = CodeHash("some bytecode");
  r.status = RunStatus::kFailed;
  r.detail = "error: budget: the run used its budget of 4 effects";
  r.error_kind = "value";
  ASSERT_TRUE(st->WriteRun(r).ok());
  auto back = st->ReadRun("r1");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->error_kind, "value");  // the field, not the detail's text

  // Version 1's layout: the same fields, without error_kind.
  auto version1 = [&](RunStatus status, const std::string& detail) {
    std::string p;
    PutBytes(&p, r.id);
    PutBytes(&p, "p.flow");
    PutBytes(&p, r.code_hash);
    PutVarint(&p, 0);
    PutFixed8(&p, static_cast<uint8_t>(status));
    PutBytes(&p, "sync");
    PutFixed8(&p, 0);
    PutVarint(&p, 4);
    PutVarint(&p, 0);
    PutFixed64(&p, static_cast<uint64_t>(INT64_MAX));
    PutVarint(&p, 0);
    PutFixed64(&p, 1);
    PutFixed64(&p, 2);
    PutVarint(&p, 4);
    PutFixed64(&p, 99);
    PutBytes(&p, detail);
    PutFixed64(&p, 0);
    PutBytes(&p, "");
    PutVarint(&p, 0);
    return DecodeRunRecord(SealRecord(1, p), "a version 1 record");
  };
  auto old = version1(RunStatus::kFailed, "error: budget: the run used its budget of 4 effects");
  ASSERT_TRUE(old.ok()) << old.status().message();
  EXPECT_EQ(old->error_kind, "budget");
  EXPECT_EQ(old->max_effects, 4u);
  EXPECT_EQ(version1(RunStatus::kFailed, "error: index: list index 5 out of range")->error_kind, "index");
  EXPECT_EQ(version1(RunStatus::kSuspended, "waiting on a timer")->error_kind, "");
  EXPECT_EQ(version1(RunStatus::kCompleted, "")->error_kind, "");
  // Another version is named, never guessed at.
  EXPECT_EQ(DecodeRunRecord(SealRecord(5, "x"), "a record").status().code(), Status::Code::kNotSupported);
}

TEST(Store, CodeIsContentAddressedAndChecked) {
  TempDir dir;
  auto st = Store::Open(dir.path(), true);
  ASSERT_TRUE(st.ok());
  auto h1 = st->PutCode("bytecode one");
  auto h2 = st->PutCode("bytecode one");
  auto h3 = st->PutCode("bytecode two");
  ASSERT_TRUE(h1.ok() && h2.ok() && h3.ok());
  EXPECT_EQ(*h1, *h2);
  EXPECT_NE(*h1, *h3);
  std::string bytes;
  ASSERT_TRUE(st->GetCode(*h1, &bytes).ok());
  EXPECT_EQ(bytes, "bytecode one");
  FILE* f = std::fopen((dir.path() + "/code/" + *h1 + ".flowc").c_str(), "wb");
  std::fputs("bytecode 0ne", f);
  std::fclose(f);
  EXPECT_TRUE(st->GetCode(*h1, &bytes).IsCorruption());
}

TEST(Store, CheckpointMark) {
  TempDir dir;
  auto st = Store::Open(dir.path(), true);
  ASSERT_TRUE(st->CreateRunDir("r").ok());
  // No mark, or an empty one, is NotFound: never read as checkpoint 0.
  EXPECT_TRUE(st->ReadMark("r").status().IsNotFound());
  auto mark = st->OpenMark("r");
  ASSERT_TRUE(mark.ok());
  EXPECT_TRUE(st->ReadMark("r").status().IsNotFound());
  ASSERT_TRUE((*mark)->Write(7).ok());
  ASSERT_TRUE((*mark)->Write(8).ok());
  EXPECT_EQ(*st->ReadMark("r"), 8u);
  FILE* f = std::fopen(RunFilePath(dir.path(), "r", kMarkFile).c_str(), "r+b");
  std::fputc(9, f);
  std::fclose(f);
  EXPECT_TRUE(st->ReadMark("r").status().IsCorruption());
}

// Every file of a folder, with its bytes.
std::map<std::string, std::string> Snapshot(const std::string& folder) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::directory_iterator(folder)) {
    std::FILE* f = std::fopen(e.path().c_str(), "rb");
    std::string bytes;
    char buf[4096];
    size_t n;
    while (f && (n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.append(buf, n);
    if (f) std::fclose(f);
    files[e.path().filename()] = bytes;
  }
  return files;
}

TEST(RunDb, ReadOnlyOpenLeavesTheDatabaseAsItWas) {
  TempDir dir;
  std::string db_dir = dir.path() + "/db";
  {
    auto db = RunDb::Open(db_dir, {.create = true});
    ASSERT_TRUE(db.ok());
    for (int i = 0; i < 100; ++i) {
      Batch batch;
      batch.Put("h" + std::to_string(i), std::string(100, 'x'));
      batch.Put("s", std::to_string(i));
      ASSERT_TRUE((*db)->Write(batch, true).ok());
    }
  }
  auto before = Snapshot(db_dir);
  {
    // A plain open would turn the log into a table, write a new manifest and log, and
    // rotate LOG: here all of that stays in memory, and reads see everything.
    auto db = RunDb::Open(db_dir, {.read_only = true});
    ASSERT_TRUE(db.ok()) << db.status().message();
    std::string value;
    ASSERT_TRUE((*db)->Get("s", &value).ok());
    EXPECT_EQ(value, "99");
    int n = 0;
    ASSERT_TRUE((*db)->Scan("h", [&](std::string_view, std::string_view) { return ++n > 0; }).ok());
    EXPECT_EQ(n, 100);
  }
  EXPECT_EQ(Snapshot(db_dir), before);
  auto db = RunDb::Open(db_dir, {});  // and the database still opens for writing
  ASSERT_TRUE(db.ok()) << db.status().message();
  std::string value;
  ASSERT_TRUE((*db)->Get("s", &value).ok());
  EXPECT_EQ(value, "99");
}

// The log of a database (one: LevelDB keeps one live log), or "" if none.
std::string LogOf(const std::string& db_dir) {
  std::string log;
  for (const auto& e : fs::directory_iterator(db_dir))
    if (e.path().extension() == ".log") log = e.path().filename();
  return log;
}

// Reopening a run for writing keeps its log and MANIFEST (reuse_logs): LevelDB's default
// would write the replayed log out as a table, a new MANIFEST, log and CURRENT, and sync
// each. The files stay as they were, and writes go on in the same log.
TEST(RunDb, ReopeningASmallRunWritesNoNewFile) {
  TempDir dir;
  std::string db_dir = dir.path() + "/db";
  {
    auto db = RunDb::Open(db_dir, {.create = true});
    ASSERT_TRUE(db.ok());
    Batch batch;
    batch.Put("s", "1");
    ASSERT_TRUE((*db)->Write(batch, true).ok());
  }
  auto before = Snapshot(db_dir);
  const std::string log = LogOf(db_dir);
  ASSERT_FALSE(log.empty());
  for (int reopen = 0; reopen < 3; ++reopen) {
    auto db = RunDb::Open(db_dir, {});
    ASSERT_TRUE(db.ok()) << db.status().message();
    EXPECT_EQ((*db)->replayed_log_bytes(), fs::file_size(db_dir + "/" + log));
    std::string value;
    ASSERT_TRUE((*db)->Get("s", &value).ok());
    EXPECT_EQ(value, std::to_string(reopen + 1));
    if (reopen == 0) {
      auto now = Snapshot(db_dir);
      EXPECT_EQ(now, before);  // the open wrote nothing
    }
    Batch batch;
    batch.Put("s", std::to_string(reopen + 2));
    ASSERT_TRUE((*db)->Write(batch, true).ok());
  }
  EXPECT_EQ(LogOf(db_dir), log);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(db_dir)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{log, "CURRENT", "LOCK", "MANIFEST-000001"}));
}

// A log that an open kept counts toward what a suspending run moves into a table: a run
// resumed again and again, writing a little each time, would otherwise replay an ever
// longer log at every open.
TEST(RunDb, ALogKeptByTheOpenIsSettledWhenTheRunSuspends) {
  TempDir dir;
  auto st = Store::Open(dir.path() + "/store", true);
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(st->CreateRunDir("r").ok());
  const std::string db_dir = flow::store::RunFilePath(st->dir(), "r", flow::store::kDbDir);
  {
    auto db = RunDb::Open(db_dir, {.create = true});
    ASSERT_TRUE(db.ok());
    Batch big;  // a big checkpoint, then the process died: no settling
    big.Put("big", std::string(runtime::StoreJournal::kSettleBytes + 1000, 'x'));
    ASSERT_TRUE((*db)->Write(big, true).ok());
  }
  class QuietHost : public runtime::RunHost {
   public:
    void WriteOutput(std::string_view) override {}
    int64_t NowMs() override { return 0; }
    Status Flush() override { return Status::Ok(); }
    void set_key(const std::string&) override {}
    int64_t virtual_now_ms() const override { return 0; }
  } host;
  auto db = RunDb::Open(db_dir, {});
  ASSERT_TRUE(db.ok());
  EXPECT_GT((*db)->replayed_log_bytes(), runtime::StoreJournal::kSettleBytes);
  auto mark = st->OpenMark("r");
  ASSERT_TRUE(mark.ok());
  runtime::StoreJournal journal(db->get(), mark->get(), &host, "r", true, 0);
  ASSERT_TRUE(journal.Settle().ok());  // nothing written since the open
  EXPECT_LT(fs::file_size(db_dir + "/" + LogOf(db_dir)), 4096u);
  std::string value;
  ASSERT_TRUE((*db)->Get("big", &value).ok());
  EXPECT_EQ(value.size(), runtime::StoreJournal::kSettleBytes + 1000);
}

// A VersionReader steps to the next key when it is the one a seek would find: whatever
// the order of the reads, with older versions, tombstones and keys both in a table and in
// the log, it answers as GetAt does.
TEST(RunDb, AVersionReaderAnswersAsGetAtInAnyOrder) {
  TempDir dir;
  auto db = RunDb::Open(dir.path() + "/db", {.create = true});
  ASSERT_TRUE(db.ok());
  const std::vector<std::string> bases = {"oa", "ob", "oc", "od", "oe", "of"};
  for (uint32_t version = 1; version <= 6; ++version) {
    Batch batch;
    for (size_t i = 0; i < bases.size(); ++i) {
      if ((i + version) % 3 == 0) continue;  // not written at this version
      // A tombstone (empty) now and then: freed at that checkpoint.
      std::string value = (i * version) % 5 == 4 ? "" : bases[i] + "@" + std::to_string(version);
      batch.Put(VersionedKey(bases[i], version), value);
    }
    ASSERT_TRUE((*db)->Write(batch, true).ok());
    if (version == 3) ASSERT_TRUE((*db)->MoveLogToTable().ok());  // the older versions in a table
  }
  auto expected = [&](const std::string& base, uint32_t at, std::string* value) {
    return (*db)->GetAt(base, at, value);
  };
  std::vector<std::vector<std::string>> orders = {bases, {bases.rbegin(), bases.rend()},
                                                  {"oa", "oa", "oc", "ob", "of", "oz", "oe", "o", "od"}};
  for (uint32_t at = 0; at <= 7; ++at) {
    for (const auto& order : orders) {
      auto reader = (*db)->ReaderAt(at);
      for (const std::string& base : order) {
        std::string want, got;
        Status w = expected(base, at, &want);
        Status g = reader->Get(base, &got);
        ASSERT_EQ(w.ok(), g.ok()) << base << " at " << at << ": " << w.message() << " / " << g.message();
        ASSERT_EQ(w.IsNotFound(), g.IsNotFound()) << base << " at " << at;
        if (w.ok()) EXPECT_EQ(got, want) << base << " at " << at;
      }
    }
  }
}

TEST(Store, RunIds) {
  EXPECT_TRUE(IsValidRunId("20261128T030922.246Z-5c96"));
  EXPECT_TRUE(IsValidRunId("my_run-1"));
  EXPECT_FALSE(IsValidRunId(""));
  EXPECT_FALSE(IsValidRunId(".hidden"));
  EXPECT_FALSE(IsValidRunId("a/b"));
  EXPECT_FALSE(IsValidRunId(std::string(65, 'a')));
  std::string a = NewRunId(), b = NewRunId();
  EXPECT_TRUE(IsValidRunId(a));
  EXPECT_NE(a, b);
}

// The names and keys of store/keys.h are on disk: they must stay as docs/checkpoint.md
// spells them.
TEST(StoreKeys, NamesAndKeysAreAsDocumented) {
  using namespace std::string_literals;
  EXPECT_EQ(CodePath("S", "ab"), "S/code/ab.flowc");
  EXPECT_EQ(RunPath("S", "r"), "S/runs/r");
  EXPECT_EQ(RunFilePath("S", "r", kRunRecordFile), "S/runs/r/run");
  EXPECT_EQ(RunFilePath("S", "r", kLockFile), "S/runs/r/lock");
  EXPECT_EQ(RunFilePath("S", "r", kMarkFile), "S/runs/r/mark");
  EXPECT_EQ(RunFilePath("S", "r", kCancelFile), "S/runs/r/cancel");
  EXPECT_EQ(RunFilePath("S", "r", kDbDir), "S/runs/r/db");
  EXPECT_EQ(SharedPath("S"), "S/shared");
  EXPECT_STREQ(kDefaultStoreDir, ".flow");
  EXPECT_STREQ(kStateKey, "s");
  EXPECT_STREQ(kCancelKey, "c");
  EXPECT_EQ(ObjectKey(0x01020304), "o\x01\x02\x03\x04"s);
  EXPECT_EQ(HistoryKey(5), "h\0\0\0\0\0\0\0\x05"s);
  EXPECT_EQ(StepEventKey(0x0102, 3), "t\0\0\0\0\0\0\x01\x02\0\0\0\x03"s);
  EXPECT_EQ(SignalCountKey("go"), "ggo");
  EXPECT_EQ(SignalOfCountKey(SignalCountKey("go")), "go");
  EXPECT_EQ(MailboxName("r"), "mailbox:r");
  EXPECT_EQ(BreakerName("api"), "breaker:api");
}

}  // namespace
}  // namespace flow::store

// History entries: the pre-state of a file effect in flight round-trips; other versions
// and damage are refused.
namespace flow::runtime {
namespace {

TEST(HistoryEntry, PreStateRoundTripsAndOtherVersionsAreRefused) {
  HistoryEntry e;
  e.seq = 7;
  e.effect = "fs.append";
  e.idempotency_key = "run/7";
  e.args_preview = "[\"log.txt\",\"x\"]";
  std::string done = EncodeHistoryEntry(e);
  EXPECT_EQ(static_cast<uint8_t>(done[0]), kRunDbRecordVersion);
  HistoryEntry back;
  ASSERT_TRUE(DecodeHistoryEntry(done, &back).ok());
  EXPECT_EQ(back.effect, "fs.append");
  EXPECT_TRUE(back.pre_state.empty());

  e.pre_state = std::string("\x01\x01\x05\0\0\0\0\0\0\0", 10);
  std::string in_flight = EncodeHistoryEntry(e);
  ASSERT_TRUE(DecodeHistoryEntry(in_flight, &back).ok());
  EXPECT_EQ(back.pre_state, e.pre_state);
  EXPECT_EQ(back.idempotency_key, "run/7");

  in_flight[0] = 1;  // the format before pre-states (and step keys per retry) is refused, not misread
  EXPECT_FALSE(DecodeHistoryEntry(in_flight, &back).ok());
  in_flight[0] = static_cast<char>(kRunDbRecordVersion);
  in_flight.back() ^= 1;  // and a damaged one fails its checksum
  EXPECT_FALSE(DecodeHistoryEntry(in_flight, &back).ok());
}

}  // namespace
}  // namespace flow::runtime
