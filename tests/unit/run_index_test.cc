// The index of packed runs (store/run_index.h): a row per packed run, added after its pack,
// removed before anything changes the run; a listing trusts a row, so a row must never
// outlive what it says.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sys/wait.h>
#include <unistd.h>

#include "store/keys.h"
#include "store/store.h"
#include "temp_dir.h"

namespace flow::store {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

void Ignore(const std::string&, const Status&) {}

// The ids of the index's rows, read with SQLite itself (not with the code under test).
std::vector<std::string> RowIds(const std::string& store_dir) {
  std::vector<std::string> ids;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(RunIndexPath(store_dir).c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT id FROM packed_runs ORDER BY id", -1, &stmt, nullptr) == SQLITE_OK)
      while (sqlite3_step(stmt) == SQLITE_ROW) ids.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return ids;
}

void Sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
}

// A store with suspended runs in files (a record, a one-key database), packed on request.
struct StoreOfRuns {
  TempDir dir;
  Result<Store> st = Store::Open(dir.path() + "/s", true);

  void Add(const std::string& id, RunStatus status = RunStatus::kSuspended) {
    ASSERT_TRUE(st->CreateRunDir(id).ok());
    {
      auto db = RunDb::Open(flow::store::RunFilePath(st->dir(), id, flow::store::kDbDir), {.create = true});
      ASSERT_TRUE(db.ok());
      Batch b;
      b.Put("k", "v");
      ASSERT_TRUE((*db)->Write(b, true).ok());
    }
    RunRecord r;
    r.id = id;
    r.program = "p.flow";
    r.code_hash = CodeHash("code");
    r.status = status;
    r.detail = "as written";
    ASSERT_TRUE(st->WriteRun(r).ok());
  }
  void AddPacked(const std::string& id) {
    Add(id);
    ASSERT_TRUE(st->PackRun(id, 1 << 20).ok());
  }
  // id -> whether the listing read it from the index.
  std::map<std::string, bool> Listing(Status* index_status = nullptr) {
    std::map<std::string, bool> out;
    for (const ListedRun& r : st->ListRunEntries(Ignore, index_status)) out[r.record.id] = r.indexed;
    return out;
  }
  std::string IndexPath() { return RunIndexPath(st->dir()); }
};

TEST(RunIndex, APackAddsARowAndTheListingReadsItFromThere) {
  StoreOfRuns s;
  s.Add("a-in-files");
  s.AddPacked("b-packed");
  EXPECT_EQ(RowIds(s.st->dir()), std::vector<std::string>{"b-packed"});
  std::map<std::string, bool> expected{{"a-in-files", false}, {"b-packed", true}};
  EXPECT_EQ(s.Listing(), expected);
  auto entries = s.st->ListRunEntries(Ignore);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1].record.detail, "as written");
  EXPECT_EQ(entries[1].record.status, RunStatus::kSuspended);
  EXPECT_EQ(entries[1].disk_bytes, s.st->RunDiskBytes("b-packed"));
}

TEST(RunIndex, AnUnpackRemovesTheRowBeforeTheRunChanges) {
  StoreOfRuns s;
  s.AddPacked("r");
  ASSERT_TRUE(s.st->UnpackRun("r").ok());
  EXPECT_TRUE(RowIds(s.st->dir()).empty());
  RunRecord changed = *s.st->ReadRun("r");
  changed.status = RunStatus::kCompleted;
  ASSERT_TRUE(s.st->WriteRun(changed).ok());
  auto entries = s.st->ListRunEntries(Ignore);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_FALSE(entries[0].indexed);
  EXPECT_EQ(entries[0].record.status, RunStatus::kCompleted);
  ASSERT_TRUE(s.st->PackRun("r", 1 << 20).ok());  // packed again: a row again, the new record
  entries = s.st->ListRunEntries(Ignore);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_TRUE(entries[0].indexed);
  EXPECT_EQ(entries[0].record.status, RunStatus::kCompleted);
}

TEST(RunIndex, PoisoningDeletingAndANewRunOfTheSameIdRemoveTheRow) {
  StoreOfRuns s;
  s.AddPacked("poisoned");
  s.AddPacked("deleted");
  s.AddPacked("removed-by-hand");
  ASSERT_EQ(RowIds(s.st->dir()).size(), 3u);
  ASSERT_TRUE(s.st->SetPoisoned("poisoned", "boom").ok());
  uint64_t freed = 0;
  ASSERT_TRUE(s.st->DeleteRun("deleted", &freed).ok());
  fs::remove_all(s.st->RunDir("removed-by-hand"));
  EXPECT_EQ(RowIds(s.st->dir()), std::vector<std::string>{"removed-by-hand"});
  EXPECT_EQ(s.Listing().count("removed-by-hand"), 0u) << "a row without a folder is not a run";
  ASSERT_TRUE(s.st->CreateRunDir("removed-by-hand").ok());
  EXPECT_TRUE(RowIds(s.st->dir()).empty()) << "the new run is not the old row";
  EXPECT_EQ(s.Listing(), (std::map<std::string, bool>{{"poisoned", false}}));
}

TEST(RunIndex, RunsPackedWithoutARowAreReadFromFilesThenIndexedUnlessHeld) {
  StoreOfRuns s;
  s.AddPacked("free");
  s.AddPacked("held");
  s.Add("in-files");
  ASSERT_TRUE(RunIndex::Remove(s.IndexPath()).ok());  // as a store written before the index
  auto entries = s.st->ListRunEntries(Ignore);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_TRUE(entries[0].packed_without_row && !entries[0].indexed);
  EXPECT_FALSE(entries[2].packed_without_row);
  {
    auto lock = s.st->LockRun("held");  // another process's, as far as the index knows
    ASSERT_TRUE(lock.ok());
    // A lock of this process is not seen by its own fcntl: a child takes it instead.
    pid_t child = fork();
    if (child == 0) {
      auto again = Store::Open(s.st->dir(), false);
      _exit(again.ok() && again->IndexPackedRuns({"free", "held", "in-files"}).ok() ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ(RowIds(s.st->dir()), std::vector<std::string>{"free"});
}

TEST(RunIndex, ADamagedIndexIsNotTrustedAndIsReplacedByTheNextWriter) {
  StoreOfRuns s;
  s.AddPacked("r");
  for (const char* suffix : {"", "-wal"})  // the database and its log, which holds what is not yet copied in
    std::ofstream(s.IndexPath() + suffix, std::ios::trunc) << std::string(8192, 'x');
  Status index_status;
  EXPECT_EQ(s.Listing(&index_status), (std::map<std::string, bool>{{"r", false}}));
  EXPECT_TRUE(index_status.IsCorruption()) << index_status.message();
  ASSERT_TRUE(s.st->UnpackRun("r").ok()) << "an unpack is not stopped by a damaged index";
  EXPECT_FALSE(fs::exists(s.IndexPath())) << "it went, with any row it held";
  ASSERT_TRUE(s.st->PackRun("r", 1 << 20).ok());
  EXPECT_EQ(RowIds(s.st->dir()), std::vector<std::string>{"r"});
  EXPECT_EQ(s.Listing(&index_status), (std::map<std::string, bool>{{"r", true}}));
  EXPECT_TRUE(index_status.ok());
}

TEST(RunIndex, AnIndexOfANewerSchemaIsReadByNoOneAndRemovedByTheFirstChange) {
  StoreOfRuns s;
  s.AddPacked("r");
  Sql(s.IndexPath(), "PRAGMA user_version=99");
  Status index_status;
  EXPECT_EQ(s.Listing(&index_status), (std::map<std::string, bool>{{"r", false}}));
  EXPECT_EQ(index_status.code(), Status::Code::kNotSupported);
  EXPECT_NE(index_status.message().find("newer version of Flow"), std::string::npos) << index_status.message();
  EXPECT_EQ(s.st->IndexPackedRuns({"r"}).code(), Status::Code::kNotSupported) << "no row is written into it";
  ASSERT_TRUE(s.st->UnpackRun("r").ok()) << "a cache this version cannot read does not stop a run";
  EXPECT_FALSE(fs::exists(s.IndexPath())) << "it went, with the rows this version cannot keep true";
}

TEST(RunIndex, ARunSetAsideIsNeverIndexed) {
  StoreOfRuns s;
  s.AddPacked("poisoned-packed");
  ASSERT_TRUE(s.st->SetPoisoned("poisoned-packed", "boom").ok());
  EXPECT_TRUE(RowIds(s.st->dir()).empty());
  auto entries = s.st->ListRunEntries(Ignore);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_TRUE(entries[0].packed_without_row);
  ASSERT_TRUE(s.st->IndexPackedRuns({"poisoned-packed"}).ok());
  EXPECT_TRUE(RowIds(s.st->dir()).empty()) << "its folder says it is set aside: no row says otherwise";
  // A pack that ends after the mark (the mark is written without the run's lock).
  s.Add("packed-after");
  ASSERT_TRUE(s.st->SetPoisoned("packed-after", "boom").ok());
  ASSERT_TRUE(s.st->PackRun("packed-after", 1 << 20).ok());
  EXPECT_TRUE(RowIds(s.st->dir()).empty());
}

TEST(RunIndex, AFolderTakenOverLosesItsRow) {
  StoreOfRuns s;
  s.AddPacked("r");
  ASSERT_EQ(RowIds(s.st->dir()), std::vector<std::string>{"r"});
  fs::remove(RunFilePath(s.st->dir(), "r", kPackedFile));  // the run lost: a folder without record or packed file
  ASSERT_TRUE(s.st->ClearRunDir("r").ok());  // a start takes the folder over
  EXPECT_TRUE(RowIds(s.st->dir()).empty());
}

// What the index relies on SQLite for: a log beside an empty (new) database is dropped.
TEST(RunIndex, ALogLeftByAnIndexRemovedByHandIsNotReadIntoTheNext) {
  StoreOfRuns s;
  s.AddPacked("r");
  ASSERT_TRUE(fs::exists(s.IndexPath() + "-wal"));
  fs::remove(s.IndexPath());  // the database only: its log, with the row, stays
  ASSERT_TRUE(s.st->UnpackRun("r").ok());
  s.AddPacked("other");  // creates a new index
  EXPECT_EQ(RowIds(s.st->dir()), std::vector<std::string>{"other"});
}

TEST(RunIndex, AnotherSqliteDatabaseIsNotTakenForAnIndex) {
  StoreOfRuns s;
  Sql(s.IndexPath(), "CREATE TABLE other(x); PRAGMA user_version=1");
  auto index = RunIndex::Open(s.IndexPath(), false);
  EXPECT_TRUE(index.status().IsCorruption()) << index.status().message();
}

TEST(RunIndex, ARowThatDoesNotDecodeIsPassedToTheFolder) {
  StoreOfRuns s;
  s.AddPacked("r");
  Sql(s.IndexPath(), "UPDATE packed_runs SET record = x'0102'");
  auto entries = s.st->ListRunEntries(Ignore);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_FALSE(entries[0].indexed);
  EXPECT_EQ(entries[0].record.detail, "as written");
}

}  // namespace
}  // namespace flow::store
