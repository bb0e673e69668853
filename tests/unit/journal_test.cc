// StoreJournal (runtime/journal.*), the effect protocol against a real store in a temporary
// folder: an external effect's intent is on record before it runs; after it, one write
// holds its outcome and the checkpoint; later checkpoints carry only what changed; and
// what was written is what a resume (LoadRun) reads back.
#include "runtime/journal.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <filesystem>

#include "compiler/compiler.h"
#include "store/keys.h"
#include "run_program.h"
#include "stdlib/stdlib.h"
#include "vm/bytecode/module.h"
#include "temp_dir.h"
#include "vm/bytecode/opcodes.h"

namespace flow::runtime {
namespace {

namespace fs = std::filesystem;
using State = HistoryEntry::State;

using testing::Compile;
using testing::TempDir;

class TestHost : public RunHost {
 public:
  void WriteOutput(std::string_view text) override { pending.append(text); }
  int64_t NowMs() override { return 1'700'000'000'000; }
  void SetWaitOrigin(int64_t wall_ms) override { wait_origin_ms = wall_ms; }
  Status Flush() override {
    output += pending;
    pending.clear();
    ++flushes;
    return Status::Ok();
  }
  void set_key(const std::string& key) override { keys.push_back(key); }
  int64_t virtual_now_ms() const override { return 0; }

  std::string pending;  // written by the program, not yet flushed
  std::string output;
  int flushes = 0;
  std::vector<std::string> keys;
  int64_t wait_origin_ms = 0;
};

// A StoreJournal that can stop the run before effect `stop_before` (as a crash would:
// with `after_intent`, once the intent is written), and notes each checkpoint's size.
class StoppingJournal : public StoreJournal {
 public:
  using StoreJournal::StoreJournal;
  Status BeforeEffect(VM& vm, uint64_t seq, uint16_t builtin, const Value* args, int argc) override {
    if (seq == stop_before && !after_intent) return Status::IOError("stopped for the test");
    Status s = StoreJournal::BeforeEffect(vm, seq, builtin, args, argc);
    if (s.ok() && seq == stop_before) return Status::IOError("stopped for the test");
    return s;
  }
  Status AfterEffect(VM& vm, uint64_t seq, uint16_t builtin, Value outcome, bool raised) override {
    Status s = StoreJournal::AfterEffect(vm, seq, builtin, outcome, raised);
    checkpoint_bytes.push_back(last_checkpoint_bytes());
    return s;
  }
  uint64_t stop_before = 0;
  bool after_intent = false;
  std::vector<size_t> checkpoint_bytes;  // the size of each effect's checkpoint
};

// One run "r1" in a fresh store: its database, first checkpoint, mark and record, made
// in the order `flow run` makes them (StartRun): the first checkpoint is synced and the
// mark fsynced before the record is written, so a run with a record always has its state.
class StoreRun {
 public:
  void Start(const std::string& source, bool sync = true) {
    module_ = Compile(source);
    Result<store::Store> st = store::Store::Open(dir_.path(), true);
    ASSERT_TRUE(st.ok()) << st.status().message();
    store_ = std::make_unique<store::Store>(std::move(st.value()));
    ASSERT_TRUE(store_->CreateRunDir("r1").ok());
    Result<std::string> hash = store_->PutCode(SerializeModule(module_));
    ASSERT_TRUE(hash.ok());
    store::RunRecord record;
    record.id = "r1";
    record.program = "t.flow";
    record.code_hash = *hash;
    record.durability = sync ? "sync" : "async";
    sync_ = sync;
    OpenDb(true);
    vm_ = std::make_unique<VM>(&module_, &host_, stdlib::GetNatives());
    journal_ = std::make_unique<StoppingJournal>(db_.get(), mark_.get(), &host_, "r1", sync, 0);
    vm_->SetJournal(journal_.get());
    vm_->PrepareToRun();
    store::Batch first;
    ASSERT_TRUE(journal_->WriteCheckpoint(*vm_, true, &first).ok());
    ASSERT_TRUE(journal_->Sync().ok());
    ASSERT_TRUE(mark_->Sync().ok());
    ASSERT_TRUE(store_->WriteRun(record).ok());
  }
  void OpenDb(bool create) {
    auto db = store::RunDb::Open(flow::store::RunFilePath(store_->dir(), "r1", flow::store::kDbDir), {.create = create});
    ASSERT_TRUE(db.ok()) << db.status().message();
    db_ = std::move(db.value());
    auto mark = store_->OpenMark("r1");
    ASSERT_TRUE(mark.ok());
    mark_ = std::move(mark.value());
  }
  // Ends this process's hold on the run (its database admits one opener), as a crash would.
  void Stop() {
    journal_.reset();
    vm_.reset();
    db_.reset();
    mark_.reset();
  }

  // Restores the run from the store as `flow resume` does, and runs it to its end.
  Status ResumeToEnd() {
    Stop();
    LoadedRun run;
    if (Status s = LoadRun(*store_, "r1", &host_, &run); !s.ok()) return s;
    auto mark = store_->OpenMark("r1");
    if (!mark.ok()) return mark.status();
    StoreJournal journal(run.db.get(), mark->get(), &host_, "r1", sync_, run.checkpoint);
    run.vm->SetJournal(&journal);
    RunOutcome outcome = run.vm->Run();
    journal.Flush();
    if (outcome != RunOutcome::kCompleted) return Status::Corruption("resumed run: " + run.vm->FormatUncaught());
    return Status::Ok();
  }

  // Loads run `id` from the store as `flow resume` does, and drops it: for what a load refuses.
  Status Load(const std::string& id = "r1") {
    LoadedRun run;
    return LoadRun(*store_, id, &host_, &run);
  }

  HistoryEntry History(uint64_t seq) {
    std::string raw;
    HistoryEntry e;
    Status s = db_->Get(HistoryKey(seq), &raw);
    if (s.ok()) s = DecodeHistoryEntry(raw, &e);
    EXPECT_TRUE(s.ok()) << "history entry " << seq << ": " << s.message();
    return e;
  }
  bool HasHistory(uint64_t seq) {
    std::string raw;
    return db_->Get(HistoryKey(seq), &raw).ok();
  }
  StateRecord State() {
    std::string raw;
    StateRecord r;
    Status s = db_->GetAt(kStateKey, store::kLatestCheckpoint, &raw);
    if (s.ok()) s = DecodeStateRecord(raw, &r);
    EXPECT_TRUE(s.ok()) << s.message();
    return r;
  }
  uint64_t Mark() {
    Result<uint64_t> m = store_->ReadMark("r1");
    EXPECT_TRUE(m.ok());
    return m.ok() ? *m : 0;
  }
  uint16_t Builtin(std::string_view name) {
    int id = FindBuiltin(name);
    EXPECT_GE(id, 0) << name;
    return static_cast<uint16_t>(id);
  }

  // Destroyed last: the folder outlives the database open in it.
  TempDir dir_;
  bool sync_ = true;
  Module module_;
  TestHost host_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::RunDb> db_;
  std::unique_ptr<store::CheckpointMark> mark_;
  std::unique_ptr<VM> vm_;
  std::unique_ptr<StoppingJournal> journal_;
};

class StoreJournalTest : public StoreRun, public ::testing::Test {};

TEST_F(StoreJournalTest, AnExternalEffectsIntentIsOnRecordBeforeItRuns) {
  Start("print(1)\n");
  EXPECT_EQ(State().checkpoint, 1u);
  Value arg = Value::Int(42);
  ASSERT_TRUE(journal_->BeforeEffect(*vm_, 1, Builtin("fs.remove"), &arg, 1).ok());
  HistoryEntry e = History(1);
  EXPECT_EQ(e.state, State::kIntent);
  EXPECT_EQ(e.effect, "fs.remove");
  EXPECT_EQ(e.idempotency_key, "r1/1");
  EXPECT_EQ(e.args_preview, "[42]");
  EXPECT_NE(e.args_digest, 0u);
  EXPECT_EQ(host_.keys, std::vector<std::string>{"r1/1"});  // the effect sees its key
  EXPECT_EQ(State().checkpoint, 1u);  // the intent is not a checkpoint
}

TEST_F(StoreJournalTest, OutputAndReadsLeaveNoIntent) {
  // A print in flight at a crash simply runs again: nothing is written before it.
  Start("print(1)\n");
  Value arg = Value::Int(1);
  ASSERT_TRUE(journal_->BeforeEffect(*vm_, 1, Builtin("print"), &arg, 1).ok());
  EXPECT_FALSE(HasHistory(1));
  ASSERT_TRUE(journal_->AfterEffect(*vm_, 1, Builtin("print"), Value::Null(), false).ok());
  EXPECT_EQ(History(1).state, State::kDone);
}

TEST_F(StoreJournalTest, AfterAnEffectItsOutcomeAndACheckpointAreWrittenTogether) {
  Start("print(1)\n");
  Value arg = Value::Int(42);
  ASSERT_TRUE(journal_->BeforeEffect(*vm_, 1, Builtin("fs.remove"), &arg, 1).ok());
  host_.pending = "printed before the effect\n";
  ASSERT_TRUE(journal_->AfterEffect(*vm_, 1, Builtin("fs.remove"), Value::Int(7), false).ok());
  HistoryEntry e = History(1);
  EXPECT_EQ(e.state, State::kDone);
  EXPECT_EQ(e.result_preview, "7");
  EXPECT_NE(e.result_digest, 0u);
  EXPECT_EQ(e.idempotency_key, "r1/1");
  EXPECT_EQ(State().checkpoint, 2u);
  EXPECT_EQ(journal_->checkpoint(), 2u);
  EXPECT_EQ(Mark(), 2u);  // sync mode: the mark follows each acknowledged checkpoint
  // The program's output is flushed before the checkpoint that follows it.
  EXPECT_EQ(host_.flushes, 1);
  EXPECT_EQ(host_.output, "printed before the effect\n");
}

TEST_F(StoreJournalTest, ARunRecordsEachEffectInOrder) {
  Start(R"(
print("a")
try { fs.write("/nonexistent-dir/flow-journal-test/x", "y") } catch e { print(e.kind) }
step "s" { print("in step") }
print("b")
)");
  ASSERT_EQ(vm_->Run(), RunOutcome::kCompleted) << vm_->FormatUncaught();
  ASSERT_TRUE(journal_->Flush().ok());
  EXPECT_EQ(History(1).state, State::kDone);
  EXPECT_EQ(History(1).effect, "print");
  HistoryEntry raised = History(2);
  EXPECT_EQ(raised.effect, "fs.write");
  EXPECT_EQ(raised.state, State::kRaised);
  EXPECT_EQ(raised.result_preview.rfind("fs: cannot write", 0), 0u) << raised.result_preview;
  // Inside step "s" the key is the step's, not the run's position.
  EXPECT_EQ(History(4).idempotency_key, "r1/s/1");
  EXPECT_EQ(History(5).args_preview, "[\"b\"]");
  EXPECT_FALSE(HasHistory(6));
  EXPECT_EQ(State().checkpoint, 6u);  // the first, then one per effect
  // The step's events sort among the effects they happened between.
  std::vector<std::string> events;
  ASSERT_TRUE(db_->Scan(store::kStepEventPrefix, [&](std::string_view, std::string_view v) {
                   HistoryEntry e;
                   EXPECT_TRUE(DecodeHistoryEntry(v, &e).ok());
                   events.push_back(e.effect + " " + e.idempotency_key);
                   return true;
                 }).ok());
  EXPECT_EQ(events, (std::vector<std::string>{"step s", "step done s"}));
}

TEST_F(StoreJournalTest, StepEventsWaitForTheNextWrite) {
  Start("print(1)\n");
  journal_->OnStep(*vm_, "k", false, 0);
  bool any = false;
  auto scan = [&] {
    any = false;
    EXPECT_TRUE(db_->Scan(store::kStepEventPrefix, [&](std::string_view, std::string_view) { return !(any = true); }).ok());
    return any;
  };
  EXPECT_FALSE(scan());
  ASSERT_TRUE(journal_->Flush().ok());
  EXPECT_TRUE(scan());
}

TEST_F(StoreJournalTest, AsyncRunsDoNotMoveTheMarkButAOnceStepStartDoes) {
  Start("print(1)\n", /*sync=*/false);
  // An async run's mark stays empty (it does not bind the run) ...
  EXPECT_TRUE(store_->ReadMark("r1").status().IsNotFound());
  ASSERT_TRUE(journal_->AfterEffect(*vm_, 1, Builtin("print"), Value::Null(), false).ok());
  EXPECT_EQ(State().checkpoint, 2u);
  EXPECT_TRUE(store_->ReadMark("r1").status().IsNotFound());
  // Entering a `once` step is made durable whatever the mode.
  ASSERT_TRUE(journal_->OnceStepStarted(*vm_).ok());
  EXPECT_EQ(State().checkpoint, 3u);
  EXPECT_EQ(Mark(), 3u);
  // and the mode is back to async afterwards.
  ASSERT_TRUE(journal_->AfterEffect(*vm_, 2, Builtin("print"), Value::Null(), false).ok());
  EXPECT_EQ(Mark(), 3u);
}

TEST_F(StoreJournalTest, AWaitInFlightAtTheCrashKeepsItsStart) {
  Start("print(1)\n");
  HistoryEntry in_flight;
  in_flight.seq = 1;
  in_flight.effect = "sleep";
  in_flight.idempotency_key = "r1/1";  // matched by its key (tasks may begin effects in another order)
  in_flight.started_ms = 1'600'000'000'000;
  journal_->SetResumedInFlight(in_flight);
  Value d = Value::Int(5);
  ASSERT_TRUE(journal_->BeforeEffect(*vm_, 1, Builtin("sleep"), &d, 1).ok());
  EXPECT_EQ(host_.wait_origin_ms, in_flight.started_ms);
  EXPECT_EQ(History(1).started_ms, in_flight.started_ms);
}

const char* kProgram = R"(
fn make_counter() {
  let n = 0
  return fn(by) {
    n = n + by
    return n
  }
}
let count = make_counter()
let seen = {}
let items = []
for i in range(10) {
  let v = count(i)
  items.push({i: i, v: v, tag: "t${i % 3}"})
  seen["k${i % 4}"] = v
  if i % 3 == 0 { items.pop() }
  if i % 5 == 2 {
    try { fs.write("/nonexistent-flow-journal-test/${i}", "x") } catch e { print("not written", e.kind) }
  }
  try {
    if i % 4 == 3 { throw error("four", "at ${i}", {i: i}) }
    print("step", i, v, len(items))
  } catch e {
    print("caught", e.kind, e.data.i)
  }
}
print(len(items), seen, items[-1])
)";

std::string Uninterrupted(const char* source) {
  TestHost host;
  Module m = Compile(source);
  VM vm(&m, &host, stdlib::GetNatives());
  EXPECT_EQ(vm.Run(), RunOutcome::kCompleted) << vm.FormatUncaught();
  return host.pending;
}

TEST_F(StoreJournalTest, ResumingFromTheStoreAfterAnyEffectGivesTheSameOutput) {
  std::string expected = Uninterrupted(kProgram);
  ASSERT_FALSE(expected.empty());
  for (uint64_t k = 1; k <= 15; ++k) {
    SCOPED_TRACE("stopped before effect " + std::to_string(k));
    StoreRun run;
    run.Start(kProgram, /*sync=*/false);  // fast; what is read back is the same
    run.journal_->stop_before = k;
    run.journal_->after_intent = k % 2 == 0;
    ASSERT_EQ(run.vm_->Run(), RunOutcome::kAborted);
    run.host_.Flush();
    Status s = run.ResumeToEnd();
    ASSERT_TRUE(s.ok()) << s.message();
    run.host_.Flush();
    EXPECT_EQ(run.host_.output, expected);
    // The resumed run completed every effect, the one stopped after its intent too.
    run.OpenDb(false);
    for (uint64_t seq = 1; seq <= 15; ++seq) EXPECT_NE(run.History(seq).state, State::kIntent) << seq;
    EXPECT_FALSE(run.HasHistory(16));
  }
}

TEST_F(StoreJournalTest, LaterCheckpointsCarryOnlyWhatChangedAndResumeStillReadsItAll) {
  // A large map, then small changes beside it: each later checkpoint is small, and a
  // resume reads the map from the first checkpoint with the changes of all later ones.
  const char* source = R"(
let big = {}
for i in range(20000) { big["key${i}"] = [i, "value ${i}"] }
let recent = {}
let n = 0
for i in range(30) {
  n = n + 1
  recent["k${i % 3}"] = [n, big["key${i}"]]
  big["key${i}"][0] = -n
  print(n)
}
print(len(big), recent, big["key7"], big["key19999"])
)";
  Start(source);
  journal_->stop_before = 31;
  ASSERT_EQ(vm_->Run(), RunOutcome::kAborted);
  const std::vector<size_t>& bytes = journal_->checkpoint_bytes;
  ASSERT_EQ(bytes.size(), 30u);
  EXPECT_GT(bytes[0], 20000u * 10) << "the first checkpoint after building the map holds it";
  for (size_t i = 1; i < bytes.size(); ++i) EXPECT_LT(bytes[i], 2048u) << "checkpoint after effect " << i + 1;
  host_.Flush();
  Status s = ResumeToEnd();
  ASSERT_TRUE(s.ok()) << s.message();
  host_.Flush();
  EXPECT_EQ(host_.output, Uninterrupted(source));
}

TEST_F(StoreJournalTest, ObjectsFreedByTheCollectorAreDeletedFromTheStore) {
  // A large structure is checkpointed, then dropped; garbage makes the collector run; new
  // objects take some of the freed ids. The store must keep only objects the VM still has
  // (else it grows with every structure a run ever built), and resume must still read.
  const char* source = R"(
let big = []
for j in range(60000) { big.push([j]) }
print(len(big))
big = [1]
for j in range(250000) { let t = [j, j] }
print(len(big))
let again = []
for j in range(30000) { again.push(["x", j]) }
print(len(again), again[-1])
print(big, again[7])
)";
  std::string expected = Uninterrupted(source);
  Start(source, /*sync=*/false);
  journal_->set_keep(1, 0);  // --keep-checkpoints last: only what the last checkpoint reads
  journal_->stop_before = 4;
  ASSERT_EQ(vm_->Run(), RunOutcome::kAborted);
  size_t stored = 0;
  ASSERT_TRUE(db_->Scan(store::kObjectPrefix, [&](std::string_view, std::string_view) { return ++stored, true; }).ok());
  EXPECT_LE(stored, vm_->heap().live_objects());
  EXPECT_GE(stored, 30000u);  // `again` is there
  host_.Flush();
  Status s = ResumeToEnd();
  ASSERT_TRUE(s.ok()) << s.message();
  host_.Flush();
  EXPECT_EQ(host_.output, expected);
}

TEST_F(StoreJournalTest, AMissingOrDamagedObjectIsReportedOnResume) {
  Start("let xs = [1, [2, 3], {a: \"b\"}]\nprint(xs)\nprint(len(xs))\n");
  journal_->stop_before = 2;
  ASSERT_EQ(vm_->Run(), RunOutcome::kAborted);
  std::vector<std::string> keys;
  ASSERT_TRUE(db_->Scan(store::kObjectPrefix, [&](std::string_view k, std::string_view) { return keys.emplace_back(k), true; }).ok());
  ASSERT_FALSE(keys.empty());

  // Damaged: one byte of one object flipped.
  std::string raw;
  ASSERT_TRUE(db_->Get(keys.back(), &raw).ok());
  store::Batch damage;
  raw.back() ^= 0x5a;
  damage.Put(keys.back(), raw);
  ASSERT_TRUE(db_->Write(damage, true).ok());
  Stop();
  Status s = Load();
  EXPECT_TRUE(s.IsCorruption()) << s.message();
  EXPECT_NE(s.message().find("checksum"), std::string::npos) << s.message();

  // Missing: the object deleted.
  OpenDb(false);
  store::Batch remove;
  remove.Delete(keys.back());
  ASSERT_TRUE(db_->Write(remove, true).ok());
  Stop();
  s = Load();
  EXPECT_TRUE(s.IsCorruption()) << s.message();
  EXPECT_NE(s.message().find("missing"), std::string::npos) << s.message();
}

TEST_F(StoreJournalTest, ARunWhoseDatabaseHoldsNoCheckpointIsRefusedNotStartedAgain) {
  // A run has its first checkpoint before its record, so a record without a checkpoint is
  // a database emptied or rolled back, even with no effect done: never "start again".
  Start("print(\"once\")\n");
  store::Batch remove;
  ASSERT_TRUE(db_->ScanVersionsBefore(kStateKey, store::kLatestCheckpoint, [&](std::string_view k, std::string_view) {
                   remove.Delete(k);
                   return true;
                 }).ok());
  ASSERT_TRUE(db_->Write(remove, true).ok());
  Stop();
  Status s = Load();
  EXPECT_TRUE(s.IsCorruption()) << s.message();
  EXPECT_NE(s.message().find("no checkpoint"), std::string::npos) << s.message();
  s = ResumeToEnd();
  EXPECT_TRUE(s.IsCorruption()) << s.message();
  host_.Flush();
  EXPECT_EQ(host_.output, "");  // nothing ran again
}

// A run written by format 4 (one state record under "s", unversioned objects) or an older
// one is refused by name, never misread or taken for an emptied database.
TEST_F(StoreJournalTest, ARunOfTheFormerFormatIsRefusedClearly) {
  Start("let xs = [1, 2]\nprint(xs)\nprint(len(xs))\n");
  journal_->stop_before = 2;
  ASSERT_EQ(vm_->Run(), RunOutcome::kAborted);
  std::string raw;
  ASSERT_TRUE(db_->GetAt(kStateKey, store::kLatestCheckpoint, &raw).ok());
  raw[0] = 4;
  store::Batch older;
  ASSERT_TRUE(db_->ScanVersionsBefore(kStateKey, store::kLatestCheckpoint, [&](std::string_view k, std::string_view) {
                   older.Delete(k);
                   return true;
                 }).ok());
  older.Put(kStateKey, raw);
  ASSERT_TRUE(db_->Write(older, true).ok());
  Stop();
  Status s = Load();
  EXPECT_EQ(s.code(), Status::Code::kNotSupported) << s.message();
  EXPECT_NE(s.message().find("format version 4, this flow reads version 5"), std::string::npos) << s.message();
}

// A crash between pushes to a long list (stored in chunks) resumes from the store to the
// same output; the chunks are under their own keys.
TEST_F(StoreJournalTest, ACrashAcrossPushesToALongListResumes) {
  const char* source = R"(
let xs = []
for i in range(1000) { xs.push(i) }
for i in range(6) {
  for j in range(100) { xs.push(i * j) }
  print(len(xs), xs[-1])
}
xs[700] = "set"
for i in range(800) { xs.pop() }
print(len(xs), xs)
)";
  std::string expected = Uninterrupted(source);
  for (uint64_t k : {2, 5, 7}) {
    SCOPED_TRACE("stopped before effect " + std::to_string(k));
    StoreRun run;
    run.Start(source);
    run.journal_->stop_before = k;
    ASSERT_EQ(run.vm_->Run(), RunOutcome::kAborted);
    size_t chunks = 0;
    ASSERT_TRUE(run.db_->Scan(store::kListChunkPrefix, [&](std::string_view, std::string_view) { return ++chunks, true; }).ok());
    EXPECT_GE(chunks, 4u);
    run.host_.Flush();
    Status s = run.ResumeToEnd();
    ASSERT_TRUE(s.ok()) << s.message();
    run.host_.Flush();
    EXPECT_EQ(run.host_.output, expected);
  }
}

// Two thousand distinct strings of about 1 KB (over kSplitBytes in all), then effects that
// read some of them, then all of them.
const char* kBigState = R"(
let chunk = "x"
for i in range(10) { chunk = chunk + chunk }
let big = []
for i in range(2000) { big.push(str(i) + chunk) }
print("built", len(big))
print(big[7].slice(0, 3))
let total = 0
for s in big { total = total + len(s) }
print(total)
)";

// The id and versioned key of the string big[i] in a stopped run's database.
std::pair<uint32_t, std::string> BigItemKey(StoreRun& run, size_t i) {
  LoadedRun loaded;
  EXPECT_TRUE(LoadRun(*run.store_, "r1", &run.host_, &loaded, true).ok());
  Value big = Value::Null();
  for (const auto& [name, v] : loaded.vm->InspectGlobals())
    if (name == "big") big = v;
  uint32_t id = loaded.vm->heap().Get<ListObj>(big.ref)->items.at(i).ref;
  std::string raw;
  uint32_t version = 0;
  EXPECT_TRUE(loaded.db->GetAt(ObjectKey(id), store::kLatestCheckpoint, &raw, &version).ok());
  return {id, store::VersionedKey(ObjectKey(id), version)};
}

// Replaces the record of string big[i] of the stopped run "r1" with bytes that are no
// record: its id.
uint32_t DamageBigItem(StoreRun& run, size_t i) {
  auto [id, key] = BigItemKey(run, i);
  run.OpenDb(false);
  store::Batch damage;
  damage.Put(key, "not a sealed record");
  EXPECT_TRUE(run.db_->Write(damage, true).ok());
  run.db_.reset();
  run.mark_.reset();
  return id;
}

TEST_F(StoreJournalTest, AResumedRunReadsItsStringsWhenItFirstUsesThem) {
  std::string expected = Uninterrupted(kBigState);
  Start(kBigState);
  journal_->stop_before = 2;  // after "built": the strings are in the store
  ASSERT_EQ(vm_->Run(), RunOutcome::kAborted);
  host_.Flush();
  Stop();
  LoadedRun run;
  ASSERT_TRUE(LoadRun(*store_, "r1", &host_, &run).ok());
  // The list is read whole; its strings wait until used.
  EXPECT_GE(run.vm->heap().unread_strings(), 2000u);
  auto mark = store_->OpenMark("r1");
  ASSERT_TRUE(mark.ok());
  StoreJournal journal(run.db.get(), mark->get(), &host_, "r1", true, run.checkpoint);
  run.vm->SetJournal(&journal);
  ASSERT_EQ(run.vm->Run(), RunOutcome::kCompleted);
  host_.Flush();
  EXPECT_EQ(host_.output, expected);
  EXPECT_EQ(run.vm->heap().unread_strings(), 1u);  // the last loop read every one; `chunk` is never used again
}

TEST_F(StoreJournalTest, ADamagedStringStopsTheRunWhenFirstUsedBeforeItsNextEffect) {
  Start(kBigState);
  journal_->stop_before = 2;
  ASSERT_EQ(vm_->Run(), RunOutcome::kAborted);
  const uint64_t checkpoint = State().checkpoint;
  Stop();
  const uint32_t id = DamageBigItem(*this, 7);
  host_.output.clear();
  host_.pending.clear();

  LoadedRun run;
  ASSERT_TRUE(LoadRun(*store_, "r1", &host_, &run).ok());  // not read yet: the load succeeds
  auto mark = store_->OpenMark("r1");
  ASSERT_TRUE(mark.ok());
  StoreJournal journal(run.db.get(), mark->get(), &host_, "r1", true, run.checkpoint);
  run.vm->SetJournal(&journal);
  ASSERT_EQ(run.vm->Run(), RunOutcome::kAborted);
  EXPECT_TRUE(run.vm->abort_status().IsCorruption()) << run.vm->abort_status().message();
  EXPECT_NE(run.vm->abort_status().message().find(fmt::format("string {}", id)), std::string::npos)
      << run.vm->abort_status().message();
  host_.Flush();
  EXPECT_EQ(host_.output, "");  // the print of big[7] never ran
  StateRecord state;
  std::string raw;
  ASSERT_TRUE(run.db->GetAt(kStateKey, store::kLatestCheckpoint, &raw).ok());
  ASSERT_TRUE(DecodeStateRecord(raw, &state).ok());
  EXPECT_EQ(state.checkpoint, checkpoint);  // nothing written on top of it
}

TEST_F(StoreJournalTest, AFullCheckpointAfterALazyResumeWritesEveryString) {
  std::string expected = Uninterrupted(kBigState);
  Start(kBigState);
  journal_->stop_before = 2;
  ASSERT_EQ(vm_->Run(), RunOutcome::kAborted);
  host_.Flush();
  Stop();
  {
    LoadedRun run;
    ASSERT_TRUE(LoadRun(*store_, "r1", &host_, &run).ok());
    auto mark = store_->OpenMark("r1");
    ASSERT_TRUE(mark.ok());
    StoreJournal journal(run.db.get(), mark->get(), &host_, "r1", true, run.checkpoint);
    store::Batch batch;
    ASSERT_TRUE(journal.WriteCheckpoint(*run.vm, true, &batch).ok());
    EXPECT_EQ(run.vm->heap().unread_strings(), 0u);
    EXPECT_GT(journal.last_checkpoint_bytes(), 2000u * 1024);
  }
  ASSERT_TRUE(ResumeToEnd().ok());
  host_.Flush();
  EXPECT_EQ(host_.output, expected);
}

TEST_F(StoreJournalTest, AFullCheckpointThatFindsADamagedStringWritesNoState) {
  Start(kBigState);
  journal_->stop_before = 2;
  ASSERT_EQ(vm_->Run(), RunOutcome::kAborted);
  const uint64_t checkpoint = State().checkpoint;
  Stop();
  DamageBigItem(*this, 1500);
  {
    LoadedRun run;
    ASSERT_TRUE(LoadRun(*store_, "r1", &host_, &run).ok());
    auto mark = store_->OpenMark("r1");
    ASSERT_TRUE(mark.ok());
    StoreJournal journal(run.db.get(), mark->get(), &host_, "r1", true, run.checkpoint);
    store::Batch batch;
    Status s = journal.WriteCheckpoint(*run.vm, true, &batch);  // reads every string first
    EXPECT_TRUE(s.IsCorruption()) << s.message();
  }
  OpenDb(false);  // batches written before the damaged string was reached are dropped
  std::string v;
  EXPECT_TRUE(db_->Get(store::kUnfinishedCheckpointKey, &v).IsNotFound());
  EXPECT_EQ(State().checkpoint, checkpoint);
}

TEST_F(StoreJournalTest, ABigCheckpointCutShortIsNeverReadAndIsDroppedAtTheNextWritableOpen) {
  std::string expected = Uninterrupted(kBigState);
  Start(kBigState);
  journal_->stop_before = 2;
  ASSERT_EQ(vm_->Run(), RunOutcome::kAborted);
  host_.Flush();
  const uint32_t checkpoint = static_cast<uint32_t>(State().checkpoint);
  EXPECT_GT(journal_->checkpoint_bytes.at(0), StoreJournal::kSplitBytes);  // written in batches
  std::string unfinished;
  EXPECT_TRUE(db_->Get(store::kUnfinishedCheckpointKey, &unfinished).IsNotFound());  // finished
  Stop();
  // What a process killed between the batches of checkpoint+1 leaves: newer versions of
  // objects (here garbage in place of big[7] and of the list's first chunk), and the key.
  auto [id, key] = BigItemKey(*this, 7);
  OpenDb(false);
  store::Batch cut;
  const uint32_t next = checkpoint + 1;
  cut.Put(store::VersionedKey(ObjectKey(id), next), "not a sealed record");
  std::string chunk_key;
  ASSERT_TRUE(db_->Scan(store::kListChunkPrefix, [&](std::string_view k, std::string_view) {
    chunk_key = std::string(k.substr(0, k.size() - store::kVersionBytes));
    return false;
  }).ok());
  cut.Put(store::VersionedKey(chunk_key, next), "not a sealed record");
  cut.Put(store::kUnfinishedCheckpointKey, std::string{0, 0, 0, static_cast<char>(next)});
  ASSERT_TRUE(db_->Write(cut, true).ok());
  db_.reset();
  mark_.reset();

  {  // a reader (flow inspect) reads the last whole checkpoint, and writes nothing
    LoadedRun reading;
    Status s = LoadRun(*store_, "r1", &host_, &reading, true);
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_EQ(reading.checkpoint, checkpoint);
  }
  OpenDb(false);  // a writable open drops them
  std::string v;
  EXPECT_TRUE(db_->Get(store::kUnfinishedCheckpointKey, &v).IsNotFound());
  EXPECT_TRUE(db_->Get(store::VersionedKey(ObjectKey(id), next), &v).IsNotFound());
  EXPECT_TRUE(db_->Get(store::VersionedKey(chunk_key, next), &v).IsNotFound());
  EXPECT_TRUE(db_->GetAt(ObjectKey(id), store::kLatestCheckpoint, &v).ok());  // its own version stays
  Status s = ResumeToEnd();
  ASSERT_TRUE(s.ok()) << s.message();
  host_.Flush();
  EXPECT_EQ(host_.output, expected);
}

TEST_F(StoreJournalTest, AStartThatDiedBeforeItsFirstCheckpointLeavesNoRunToResume) {
  // Such a start leaves only a folder, no record (the next `flow run` with the id takes
  // it over): there is nothing to resume.
  Start("print(1)\n");
  ASSERT_TRUE(store_->CreateRunDir("r2").ok());
  EXPECT_FALSE(store_->RunExists("r2"));
  Status s = Load("r2");
  EXPECT_TRUE(s.IsNotFound()) << s.message();
}

TEST_F(StoreJournalTest, ASyncRunWhoseMarkIsMissingEmptyOrAheadIsRefused) {
  Start("print(1)\nprint(2)\n");
  journal_->stop_before = 2;
  ASSERT_EQ(vm_->Run(), RunOutcome::kAborted);
  ASSERT_EQ(Mark(), 2u);
  Stop();
  const std::string mark_path = store::RunFilePath(store_->dir(), "r1", store::kMarkFile);
  ASSERT_TRUE(Load().ok());  // intact: it loads

  auto mark = store_->OpenMark("r1");
  ASSERT_TRUE(mark.ok());
  ASSERT_TRUE((*mark)->Write(3).ok());  // ahead of the checkpoint (2)
  Status s = Load();
  EXPECT_TRUE(s.IsCorruption()) << s.message();
  EXPECT_NE(s.message().find("checkpoint 3 was acknowledged"), std::string::npos) << s.message();

  fs::resize_file(mark_path, 0);  // emptied
  s = Load();
  EXPECT_TRUE(s.IsCorruption()) << s.message();
  EXPECT_NE(s.message().find("mark is missing"), std::string::npos) << s.message();

  mark->reset();
  fs::remove(mark_path);  // missing
  s = Load();
  EXPECT_TRUE(s.IsCorruption()) << s.message();
  EXPECT_NE(s.message().find("mark is missing"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace flow::runtime

