// The run database on both backends (store/store.h's RunDb): the same writes read back
// the same on LevelDB and on PostgreSQL (a real server, started for these tests by
// tests/tools/pg_server.py and stopped after them); and what only the PostgreSQL store
// does: a write fenced by the run's lease, the schema's version.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/keys.h"
#include "store/pg/connection.h"
#include "store/pg/pg_store.h"
#include "store/pg/schema.h"
#include "store/store.h"
#include "temp_dir.h"

namespace flow::store {
namespace {

// One server for every test of this file: started at the first that needs it.
class PgServer {
 public:
  static PgServer& Get() {
    static PgServer server;
    return server;
  }
  // A new empty database's address.
  std::string NewDatabase() {
    const std::string name = "unit_" + std::to_string(getpid()) + "_" + std::to_string(++databases_);
    Result<std::unique_ptr<pg::Connection>> c = pg::Connection::Open(address_ + "postgres");
    EXPECT_TRUE(c.ok()) << c.status().message();
    if (!c.ok()) return "";
    EXPECT_TRUE((*c)->ExecScript("CREATE DATABASE " + name).ok());
    return address_ + name;
  }
  ~PgServer() {
    if (shared_) return;
    std::string stop = std::string("python3 ") + FLOW_SOURCE_DIR + "/tests/tools/pg_server.py stop " + folder_.path() +
                       " > /dev/null 2>&1";
    (void)std::system(stop.c_str());
  }

 private:
  // The server a ctest run shares (FLOW_TEST_PG_SHARED names the file that says where:
  // tests/CMakeLists.txt), if it answers; else one of this process.
  PgServer() {
    if (const char* shared = std::getenv("FLOW_TEST_PG_SHARED"); shared && std::filesystem::exists(shared)) {
      std::ifstream in(shared);
      nlohmann::json info = nlohmann::json::parse(in, nullptr, false);
      if (info.is_object() && info.contains("port")) {
        address_ = "postgresql://flow@127.0.0.1:" + std::to_string(info["port"].get<int>()) + "/";
        if (pg::Connection::Open(address_ + "postgres").ok()) {
          shared_ = true;
          return;
        }
      }
    }
    chmod(folder_.path().c_str(), 0755);  // the server's user (nobody, under root) reaches it
    std::string start = std::string("python3 ") + FLOW_SOURCE_DIR + "/tests/tools/pg_server.py start " + folder_.path() + "/pg";
    FILE* out = popen(start.c_str(), "r");
    char line[512] = {};
    if (out && fgets(line, sizeof line, out)) address_ = line;
    if (out) pclose(out);
    while (!address_.empty() && (address_.back() == '\n')) address_.pop_back();
    // postgresql://flow@127.0.0.1:PORT/postgres -> without the database
    address_ = address_.substr(0, address_.rfind('/') + 1);
    if (address_.empty()) ADD_FAILURE() << "no PostgreSQL server started (scripts/setup.sh installs postgresql)";
  }
  testing::TempDir folder_;
  std::string address_;
  bool shared_ = false;
  int databases_ = 0;
};

enum class Backend { kLevelDb, kPostgres };

class RunDbOnBoth : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    location_ = GetParam() == Backend::kPostgres ? PgServer::Get().NewDatabase() : dir_.path() + "/store";
    Result<Store> st = Store::Open(location_, true);
    ASSERT_TRUE(st.ok()) << st.status().message();
    st_.emplace(std::move(st.value()));
    ASSERT_TRUE(st_->CreateRunDir("r", false).ok());
    Result<std::unique_ptr<RunLock>> lock = st_->LockRun("r");
    ASSERT_TRUE(lock.ok()) << lock.status().message();
    lock_ = std::move(lock.value());
    Result<std::unique_ptr<RunDb>> db = st_->OpenRunDb("r", true);
    ASSERT_TRUE(db.ok()) << db.status().message();
    db_ = std::move(db.value());
  }
  void TearDown() override {
    db_.reset();
    lock_.reset();
  }
  testing::TempDir dir_;
  std::string location_;
  std::optional<Store> st_;
  std::unique_ptr<RunLock> lock_;
  std::unique_ptr<RunDb> db_;
};

TEST_P(RunDbOnBoth, VersionsReadBackAsOfEachCheckpoint) {
  const std::string a = ObjectKey(1), b = ObjectKey(2);
  Batch c1, c2, c3;
  c1.Put(VersionedKey(a, 1), "a1");
  c1.Put(VersionedKey(b, 1), "b1");
  c2.Put(VersionedKey(a, 2), "a2");
  c3.Put(VersionedKey(b, 3), "");  // freed at 3: a tombstone
  for (const Batch* batch : {&c1, &c2, &c3}) ASSERT_TRUE(db_->Write(*batch, true).ok());
  std::string v;
  uint32_t version = 0;
  ASSERT_TRUE(db_->GetAt(a, 1, &v, &version).ok());
  EXPECT_EQ(v, "a1");
  EXPECT_EQ(version, 1u);
  ASSERT_TRUE(db_->GetAt(a, kLatestCheckpoint, &v, &version).ok());
  EXPECT_EQ(v, "a2");
  EXPECT_EQ(version, 2u);
  ASSERT_TRUE(db_->GetAt(b, 2, &v).ok());
  EXPECT_EQ(v, "b1");
  EXPECT_TRUE(db_->GetAt(b, 3, &v).IsNotFound()) << "a tombstone reads as gone";
  EXPECT_TRUE(db_->GetAt(ObjectKey(3), kLatestCheckpoint, &v).IsNotFound());
  std::vector<std::string> older;
  ASSERT_TRUE(db_->ScanVersionsBefore(a, 2, [&](std::string_view, std::string_view value) {
                   older.emplace_back(value);
                   return true;
                 }).ok());
  EXPECT_EQ(older, std::vector<std::string>{"a1"});
  ASSERT_TRUE(db_->ReadLatest(a, &v).ok());
  EXPECT_EQ(v, "a2");
}

TEST_P(RunDbOnBoth, ABatchAppliesItsLastUpdateOfEachKey) {
  Batch setup;
  setup.Put("k1", "old");
  ASSERT_TRUE(db_->Write(setup, false).ok());
  Batch batch;
  batch.Put("k1", "first");
  batch.Delete("k1");  // put, then delete: gone
  batch.Delete("k2");
  batch.Put("k2", "back");  // delete, then put: there
  batch.Put("k3", std::string("\0\xff\x01", 3));  // any bytes
  ASSERT_TRUE(db_->Write(batch, true).ok());
  std::string v;
  EXPECT_TRUE(db_->Get("k1", &v).IsNotFound());
  ASSERT_TRUE(db_->Get("k2", &v).ok());
  EXPECT_EQ(v, "back");
  ASSERT_TRUE(db_->Get("k3", &v).ok());
  EXPECT_EQ(v, std::string("\0\xff\x01", 3));
}

// More keys than a cursor's pages hold, with keys whose bytes sort above 0x7f: every one
// read back once, in LevelDB's (bytewise) order.
TEST_P(RunDbOnBoth, AScanReadsEveryKeyInBytewiseOrderAcrossPages) {
  Batch batch;
  std::vector<std::string> keys;
  for (uint32_t i = 0; i < 6000; ++i) {
    std::string k = HistoryKey(i * 97ull % 6000 + (i % 2 ? 0x80000000ull : 0));
    batch.Put(k, std::to_string(i));
    keys.push_back(k);
  }
  ASSERT_TRUE(db_->Write(batch, false).ok());
  std::sort(keys.begin(), keys.end());
  std::vector<std::string> read;
  ASSERT_TRUE(db_->Scan(kHistoryPrefix, [&](std::string_view k, std::string_view) {
                   read.emplace_back(k);
                   return true;
                 }).ok());
  EXPECT_EQ(read, keys);
}

INSTANTIATE_TEST_SUITE_P(Backends, RunDbOnBoth, ::testing::Values(Backend::kLevelDb, Backend::kPostgres),
                         [](const auto& info) { return info.param == Backend::kLevelDb ? "LevelDb" : "Postgres"; });

// Queue caps and slots, and schedules, on both stores. Two handles on one store act as two
// processes do: on PostgreSQL each is an owner of its own.
class StoreOnBoth : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    location_ = GetParam() == Backend::kPostgres ? PgServer::Get().NewDatabase() : dir_.path() + "/store";
    st_.emplace(Open(true));
  }
  Store Open(bool create) {
    Result<Store> st = Store::Open(location_, create);
    EXPECT_TRUE(st.ok()) << st.status().message();
    return std::move(st.value());
  }
  testing::TempDir dir_;
  std::string location_;
  std::optional<Store> st_;
};

TEST_P(StoreOnBoth, AQueueCapIsStoredListedAndRemoved) {
  EXPECT_EQ(st_->ReadQueueCap("q").value(), 0u);
  ASSERT_TRUE(st_->WriteQueueCap("q", 3).ok());
  ASSERT_TRUE(st_->WriteQueueCap("b", 1).ok());
  ASSERT_TRUE(st_->WriteQueueCap("q", 4).ok());
  EXPECT_EQ(Open(false).ReadQueueCap("q").value(), 4u);
  std::vector<std::string> capped;
  ASSERT_TRUE(st_->ListCappedQueues(&capped).ok());
  EXPECT_EQ(capped, (std::vector<std::string>{"b", "q"}));
  ASSERT_TRUE(st_->WriteQueueCap("q", 0).ok());
  EXPECT_EQ(st_->ReadQueueCap("q").value(), 0u);
  ASSERT_TRUE(st_->ListCappedQueues(&capped).ok());
  EXPECT_EQ(capped, std::vector<std::string>{"b"});
  EXPECT_EQ(st_->WriteQueueCap("-bad", 1).code(), Status::Code::kInvalidArgument);
}

TEST_P(StoreOnBoth, AtMostCapSlotsAreHeldAcrossProcessesAndAGivenBackOneIsTakenAgain) {
  Store other = Open(false);
  std::unique_ptr<QueueSlot> a, b, c;
  ASSERT_TRUE(st_->TryTakeQueueSlot("q", 2, &a).ok());
  ASSERT_TRUE(other.TryTakeQueueSlot("q", 2, &b).ok());
  ASSERT_TRUE(other.TryTakeQueueSlot("q", 2, &c).ok());
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->index(), b->index());
  EXPECT_FALSE(c) << "a third slot of a queue capped at 2";
  EXPECT_EQ(st_->CountHeldQueueSlots("q", 2), 2u);
  EXPECT_EQ(st_->CountHeldQueueSlots("other", 2), 0u);
  a.reset();
  EXPECT_EQ(other.CountHeldQueueSlots("q", 2), 1u);
  ASSERT_TRUE(other.TryTakeQueueSlot("q", 2, &c).ok());
  EXPECT_TRUE(c);
  EXPECT_EQ(st_->CountHeldQueueSlots("q", 2), 2u);
  EXPECT_EQ(st_->CountHeldQueueSlots("q", 1), 1u) << "only the slots under a lowered cap count";
}

// Taking and counting cost the slots in use, not the cap (a loop to it would not end).
TEST_P(StoreOnBoth, ALargeCapIsTakenAndCountedByTheSlotsInUse) {
  constexpr uint32_t kLarge = 4'000'000'000u;
  ASSERT_TRUE(st_->WriteQueueCap("big", kLarge).ok());
  EXPECT_EQ(Open(false).ReadQueueCap("big").value(), kLarge);
  Store other = Open(false);
  std::unique_ptr<QueueSlot> a, b, c;
  ASSERT_TRUE(st_->TryTakeQueueSlot("big", kLarge, &a).ok());
  ASSERT_TRUE(other.TryTakeQueueSlot("big", kLarge, &b).ok());
  ASSERT_TRUE(st_->TryTakeQueueSlot("big", kLarge, &c).ok());
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->index() + b->index() + c->index(), 0u + 1u + 2u) << "the lowest free slots";
  EXPECT_EQ(st_->CountHeldQueueSlots("big", kLarge), 3u);
  b.reset();
  EXPECT_EQ(st_->CountHeldQueueSlots("big", kLarge), 2u);
}

TEST_P(StoreOnBoth, TheSlotOfAProcessThatDiedHereIsFreeAtOnce) {
  pid_t pid = fork();
  if (pid == 0) {
    Result<Store> st = Store::Open(location_, false);
    std::unique_ptr<QueueSlot> slot;
    _exit(st.ok() && st->TryTakeQueueSlot("q", 1, &slot).ok() && slot ? 0 : 1);  // never given back
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(st_->CountHeldQueueSlots("q", 1), 0u);
  std::unique_ptr<QueueSlot> slot;
  ASSERT_TRUE(st_->TryTakeQueueSlot("q", 1, &slot).ok());
  EXPECT_TRUE(slot) << "not waited out for a lease";
}

ScheduleRecord SomeSchedule(const std::string& name) {
  ScheduleRecord s;
  s.name = name;
  s.program = "/p.flow";
  s.code_hash = std::string(32, 'a');
  s.queue = "default";
  s.every_ms = 60'000;
  s.next_ms = 120'000;
  return s;
}

TEST_P(StoreOnBoth, SchedulesAreWrittenReadListedAndDeleted) {
  EXPECT_TRUE(st_->ReadSchedule("s").status().IsNotFound());
  ASSERT_TRUE(st_->WriteSchedule(SomeSchedule("s")).ok());
  ASSERT_TRUE(st_->WriteSchedule(SomeSchedule("a")).ok());
  ScheduleRecord changed = SomeSchedule("s");
  changed.fired = 7;
  ASSERT_TRUE(st_->WriteSchedule(changed).ok());
  Result<ScheduleRecord> back = Open(false).ReadSchedule("s");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->fired, 7u);
  EXPECT_EQ(back->next_ms, 120'000);
  int unreadable = 0;
  std::vector<ScheduleRecord> all = st_->ListSchedules([&](const std::string&, const Status&) { ++unreadable; });
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "a");
  EXPECT_EQ(all[1].name, "s");
  EXPECT_EQ(unreadable, 0);
  ASSERT_TRUE(st_->DeleteSchedule("a").ok());
  EXPECT_TRUE(st_->DeleteSchedule("a").IsNotFound());
  EXPECT_EQ(st_->ListSchedules([](const std::string&, const Status&) {}).size(), 1u);
  EXPECT_EQ(st_->ReadSchedule("-bad").status().code(), Status::Code::kInvalidArgument);
}

TEST_P(StoreOnBoth, TheScheduleLockIsHeldByOneProcessAtATime) {
  Result<std::unique_ptr<ScheduleLock>> held = st_->LockSchedules();
  ASSERT_TRUE(held.ok()) << held.status().message();
  std::atomic<bool> taken = false;
  std::thread other([&] {
    Store st = Open(false);
    Result<std::unique_ptr<ScheduleLock>> lock = st.LockSchedules();
    EXPECT_TRUE(lock.ok());
    taken = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(taken) << "taken while another holds it";
  held->reset();
  other.join();
  EXPECT_TRUE(taken);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreOnBoth, ::testing::Values(Backend::kLevelDb, Backend::kPostgres),
                         [](const auto& info) { return info.param == Backend::kLevelDb ? "Folder" : "Postgres"; });

// A store written at version 1 (before queue caps and schedules had tables) is migrated
// when first opened, its runs kept.
TEST(PgStore, AVersion1StoreIsMigratedOnFirstUseKeepingItsRuns) {
  const std::string address = PgServer::Get().NewDatabase();
  {
    Result<Store> st = Store::Open(address, true);
    ASSERT_TRUE(st.ok()) << st.status().message();
    RunRecord r;
    r.id = "r";
    r.code_hash = std::string(32, 'a');
    ASSERT_TRUE(st->CreateRunDir("r", false).ok());
    ASSERT_TRUE(st->WriteRun(r).ok());
  }
  Result<std::unique_ptr<pg::Connection>> c = pg::Connection::Open(address);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->ExecScript("DROP TABLE flow_queues, flow_queue_slots, flow_schedules; UPDATE flow_schema SET version = 1").ok());
  Result<Store> st = Store::Open(address, false);
  ASSERT_TRUE(st.ok()) << st.status().message();
  Result<int> version = pg::SchemaVersion(**c);
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, pg::kSchemaVersion);
  EXPECT_TRUE(st->ReadRun("r").ok());
  EXPECT_TRUE(st->WriteQueueCap("q", 2).ok());
  EXPECT_TRUE(st->WriteSchedule(SomeSchedule("s")).ok());
}

int ThreadsOfThisProcess() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

// Leases and slots are renewed while held (a 300 ms lease outlives a second), and the
// renewal thread ends as soon as nothing is held: a worker forks with no other thread.
TEST(PgStore, LeasesAndSlotsAreRenewedWhileHeldAndTheThreadEndsWhenNoneIs) {
  const std::string address = PgServer::Get().NewDatabase();
  setenv("FLOW_LEASE_MS", "300", 1);
  Result<Store> st = Store::Open(address, true);
  unsetenv("FLOW_LEASE_MS");
  ASSERT_TRUE(st.ok()) << st.status().message();
  Result<Store> other = Store::Open(address, false);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(st->CreateRunDir("r", false).ok());
  const int before = ThreadsOfThisProcess();
  Result<std::unique_ptr<RunLock>> lock = st->LockRun("r");
  ASSERT_TRUE(lock.ok());
  std::unique_ptr<QueueSlot> slot;
  ASSERT_TRUE(st->TryTakeQueueSlot("q", 1, &slot).ok() && slot);
  EXPECT_EQ(ThreadsOfThisProcess(), before + 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  int64_t pid = 0;
  EXPECT_TRUE(other->IsRunLive("r", &pid)) << "the lease, renewed";
  EXPECT_EQ(other->CountHeldQueueSlots("q", 1), 1u) << "the slot, renewed";
  lock->reset();
  EXPECT_EQ(ThreadsOfThisProcess(), before + 1) << "a slot is still held";
  slot.reset();
  EXPECT_EQ(ThreadsOfThisProcess(), before);
  Result<std::unique_ptr<RunLock>> again = st->LockRun("r");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(ThreadsOfThisProcess(), before + 1) << "started again when a lease is taken";
  again->reset();
  EXPECT_EQ(ThreadsOfThisProcess(), before);
}

// A lease holder is known dead when its pid is gone, or names another process now (pids
// are reused): the owner carries its process's start time.
TEST(PgStore, AnOwnerIsDeadOnceItsPidIsGoneOrAnotherProcesss) {
  Result<std::shared_ptr<pg::PgStore>> st = pg::PgStore::Open(PgServer::Get().NewDatabase(), true);
  ASSERT_TRUE(st.ok()) << st.status().message();
  const std::string mine = (*st)->owner();
  EXPECT_FALSE(pg::OwnerDiedHere(mine)) << mine;
  // The same pid, started at another time: a later process given this one's pid.
  const size_t start = mine.rfind(':') + 1, dot = mine.find('.', start);
  ASSERT_NE(dot, std::string::npos) << mine;
  EXPECT_TRUE(pg::OwnerDiedHere(mine.substr(0, start) + "1" + mine.substr(start, dot - start) + mine.substr(dot)));
  EXPECT_FALSE(pg::OwnerDiedHere(mine + "+claim")) << "a claim of this process";
  // A child that has exited and been reaped.
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  std::string child = mine;
  const size_t a = child.find(':'), b = child.find(':', a + 1);
  child.replace(a + 1, b - a - 1, std::to_string(pid));
  EXPECT_TRUE(pg::OwnerDiedHere(child)) << child;
}

TEST(PgStore, AWriteAfterTheLeaseWasTakenOverWritesNothing) {
  const std::string address = PgServer::Get().NewDatabase();
  Result<Store> st = Store::Open(address, true);
  ASSERT_TRUE(st.ok()) << st.status().message();
  ASSERT_TRUE(st->CreateRunDir("r", false).ok());
  Result<std::unique_ptr<RunLock>> lock = st->LockRun("r");
  ASSERT_TRUE(lock.ok());
  Result<std::unique_ptr<RunDb>> db = st->OpenRunDb("r", true);
  ASSERT_TRUE(db.ok());
  Batch first;
  first.Put("k", "mine");
  ASSERT_TRUE((*db)->Write(first, true).ok());
  // Another worker's lease, as after this one's ran out and it took the run.
  Result<std::unique_ptr<pg::Connection>> other = pg::Connection::Open(address);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->ExecScript("UPDATE flow_runs SET lease_owner = 'elsewhere:1:m:0' WHERE id = 'r'").ok());
  Batch late;
  late.Put("k", "late");
  Status s = (*db)->Write(late, true);
  EXPECT_EQ(s.code(), Status::Code::kIOError);
  EXPECT_NE(s.message().find("another worker took it over"), std::string::npos) << s.message();
  std::string v;
  ASSERT_TRUE((*db)->Get("k", &v).ok());
  EXPECT_EQ(v, "mine");
  RunRecord r;
  r.id = "r";
  r.code_hash = std::string(32, 'a');
  EXPECT_EQ(st->WriteRun(r).code(), Status::Code::kIOError) << "nor its record";
  EXPECT_TRUE(st->ReadRunRecordBytes("r", &v).IsNotFound());
}

// Whether a child process (forked now) can take run `id`'s lease; with `worker_child`, as
// a worker's child does (Store::TakeClaimsOfParent).
bool ChildTakesLease(const std::string& address, const std::string& id, bool worker_child) {
  pid_t pid = fork();
  if (pid == 0) {
    if (worker_child) Store::TakeClaimsOfParent();
    Result<Store> st = Store::Open(address, false);
    _exit(st.ok() && st->LockRun(id).ok() ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST(PgStore, OnlyAWorkersChildTakesOverItsClaimAndNoChildALeaseItsParentHolds) {
  const std::string address = PgServer::Get().NewDatabase();
  // This process forks while it holds a lease, so its renewal thread is alive: a lease
  // that is renewed once in 200 s keeps that thread asleep, not holding a lock of malloc
  // or libpq that a child would wait on for ever (a worker forks with no such thread).
  setenv("FLOW_LEASE_MS", "600000", 1);
  Result<Store> st = Store::Open(address, true);
  unsetenv("FLOW_LEASE_MS");
  ASSERT_TRUE(st.ok()) << st.status().message();
  for (const char* id : {"held", "claimed", "claimed2"}) ASSERT_TRUE(st->CreateRunDir(id, false).ok());
  Result<std::unique_ptr<RunLock>> held = st->LockRun("held");
  ASSERT_TRUE(held.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the renewal thread started, and asleep
  EXPECT_FALSE(ChildTakesLease(address, "held", false)) << "a process started by the run's own (an exec'd flow resume)";
  EXPECT_FALSE(ChildTakesLease(address, "held", true)) << "a lock is not a claim";
  for (const char* id : {"claimed", "claimed2"}) {
    Result<bool> claimed = st->ClaimRun(id);
    ASSERT_TRUE(claimed.ok() && *claimed) << id;
  }
  EXPECT_FALSE(ChildTakesLease(address, "claimed", false)) << "any child but a worker's";
  EXPECT_TRUE(ChildTakesLease(address, "claimed2", true)) << "the worker's child, its claim handed over";
}

TEST(PgStore, ADatabaseOfANewerSchemaIsRefused) {
  const std::string address = PgServer::Get().NewDatabase();
  ASSERT_TRUE(Store::Open(address, true).ok());
  Result<std::unique_ptr<pg::Connection>> c = pg::Connection::Open(address);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->ExecScript("UPDATE flow_schema SET version = " + std::to_string(pg::kSchemaVersion + 1)).ok());
  for (bool create : {false, true}) {
    Result<Store> st = Store::Open(address, create);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.status().message().find("newer flow"), std::string::npos) << st.status().message();
  }
}

TEST(PgStore, ADatabaseWithoutAStoreIsNotFoundUnlessCreated) {
  const std::string address = PgServer::Get().NewDatabase();
  Result<Store> st = Store::Open(address, false);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.status().IsNotFound()) << st.status().message();
  EXPECT_NE(st.status().message().find("flow store init"), std::string::npos);
}

}  // namespace
}  // namespace flow::store
