#include <gtest/gtest.h>

#include <map>
#include <random>

#include "memory_journal.h"
#include "run_program.h"

namespace flow {
namespace {

using testing::MemoryJournal;

using testing::Compile;

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
for i in range(12) {
  let v = count(i)
  items.push({i: i, v: v, tag: "t${i % 3}"})
  seen["k${i % 4}"] = v
  try {
    if i % 5 == 4 { throw error("five", "at ${i}", {i: i}) }
    print("step", i, v)
  } catch e {
    print("caught", e.kind, e.data.i)
  }
}
print(len(items), seen, items[-1])
)";

// Stops a run before effect k, restores a fresh VM from the checkpoint and finishes.
std::string RunWithStopAt(const Module& m, uint64_t k) {
  testing::CaptureHost host;
  MemoryJournal journal;
  journal.stop_before = k;
  RunOutcome outcome = journal.RunFromStart(m, &host);
  if (outcome == RunOutcome::kCompleted) return host.output;
  EXPECT_EQ(outcome, RunOutcome::kAborted);
  VM resumed(&m, &host, stdlib::GetNatives());
  Status s = journal.Restore(resumed);
  EXPECT_TRUE(s.ok()) << s.message();
  journal.stop_before = 0;
  resumed.SetJournal(&journal);
  EXPECT_EQ(resumed.Run(), RunOutcome::kCompleted) << resumed.FormatUncaught();
  return host.output;
}

// Stopped before each of its first `effects` effects in turn and resumed from the
// checkpoint, the program prints what it prints uninterrupted.
void ExpectSameOutputWhereverStopped(const std::string& source, uint64_t effects) {
  Module m = Compile(source);
  testing::ProgramRun plain = testing::RunProgram(source);
  ASSERT_FALSE(plain.output.empty()) << plain.error;
  for (uint64_t k = 1; k <= effects; ++k) EXPECT_EQ(RunWithStopAt(m, k), plain.output) << "stopped before effect " << k;
}

TEST(Checkpoint, ResumingAfterAnyEffectGivesTheSameOutput) {
  ASSERT_NO_FATAL_FAILURE(ExpectSameOutputWhereverStopped(kProgram, 13));
}

TEST(Checkpoint, WritesOnlyWhatChanged) {
  // A large untouched map, then one variable changed per effect.
  Module m = Compile(R"(
let big = {}
for i in range(20000) { big["key${i}"] = [i, "value ${i}"] }
let n = 0
for i in range(50) {
  n = n + 1
  print(n)
}
)");
  testing::CaptureHost host;
  MemoryJournal journal;
  ASSERT_EQ(journal.RunFromStart(m, &host), RunOutcome::kCompleted);
  ASSERT_EQ(journal.objects_written.size(), 51u);
  // The first print after building the map writes it; every later one writes a few objects.
  EXPECT_GT(journal.objects_written[1], 20000u);
  for (size_t i = 3; i < journal.objects_written.size(); ++i) {
    EXPECT_LE(journal.objects_written[i], 4u) << "checkpoint " << i;
    EXPECT_LE(journal.bytes_written[i], 4096u) << "checkpoint " << i;
  }
}

// A loop that catches `budget` around effects: it gets one grace, kept in the checkpoint.
const char* kCatchAllLoop = R"(
while true {
  try { while true { print("x") } } catch e { print("caught", e.kind) }
}
)";

// Runs until the budget stops the run; returns what it printed.
std::string RunToBudgetStop(VM& vm, testing::CaptureHost& host) {
  host.output.clear();
  EXPECT_EQ(vm.Run(), RunOutcome::kFailed);
  EXPECT_NE(vm.FormatUncaught().find("the run stops"), std::string::npos) << vm.FormatUncaught();
  return host.output;
}

TEST(Checkpoint, BudgetGraceIsKeptAcrossARestore) {
  Module m = Compile(kCatchAllLoop);
  testing::CaptureHost host;
  MemoryJournal journal;
  {
    VM vm(&m, &host, stdlib::GetNatives());
    vm.SetBudget({.max_effects = 3});
    journal.Begin(vm);
    // 3 effects, the budget (caught: one print), its grace of 10 effects, then final.
    std::string out = RunToBudgetStop(vm, host);
    std::string nine;
    for (int i = 0; i < 9; ++i) nine += "x\n";
    EXPECT_EQ(out, "x\nx\nx\ncaught budget\n" + nine);
    EXPECT_EQ(vm.effects_done(), 13u);
  }
  {
    // The same budget after a restore: its grace is used, nothing more runs.
    VM vm(&m, &host, stdlib::GetNatives());
    ASSERT_TRUE(journal.Restore(vm).ok());
    vm.SetJournal(&journal);
    vm.SetBudget({.max_effects = 3});
    EXPECT_EQ(RunToBudgetStop(vm, host), "");
    EXPECT_EQ(vm.effects_done(), 13u);
  }
  {
    // A larger budget on resume has a grace of its own.
    VM vm(&m, &host, stdlib::GetNatives());
    ASSERT_TRUE(journal.Restore(vm).ok());
    vm.SetJournal(&journal);
    vm.SetBudget({.max_effects = 20});
    std::string out = RunToBudgetStop(vm, host);
    EXPECT_NE(out.find("caught budget"), std::string::npos) << out;
    EXPECT_EQ(vm.effects_done(), 30u);
  }
}

// Every header holds the budget graces: one without them is damaged, never run with
// fresh graces (that would let a resumed run outrun its budget).
TEST(Checkpoint, HeaderWithoutGracesIsRefused) {
  Module m = Compile(kProgram);
  testing::CaptureHost host;
  MemoryJournal journal;
  VM vm(&m, &host, stdlib::GetNatives());
  journal.Begin(vm);
  // The graces, none given: a count of 5, then 5 pairs of zeros, one byte each.
  const std::string graces = std::string(1, static_cast<char>(kBudgetKinds)) + std::string(2 * kBudgetKinds, '\0');
  const size_t at = journal.header.find(graces);
  ASSERT_NE(at, std::string::npos);
  journal.header.erase(at, graces.size());
  VM restored(&m, &host, stdlib::GetNatives());
  EXPECT_FALSE(journal.Restore(restored).ok());
}

// Every kind of handler, open at once, each with fields set (a retry on its second
// attempt, a step with an effect done, a timeout's deadline, a try's catch): restored from a
// checkpoint, they are what they were (the header encodes again byte for byte), and the run
// goes on as if never stopped, its next effect carrying the step's next key.
TEST(Checkpoint, HandlerFieldsRoundTrip) {
  const char* source = R"(
let n = 0
let v = step "s" {
  retry (attempts: 3, backoff: 5ms) {
    n = n + 1
    timeout 1h {
      breaker "checkpoint_test" (failures: 5) {
        try {
          print("attempt", n)
          if n == 1 { throw error("flaky", "first") }
          print("in body")
        } catch e { throw e }
        n
      }
    }
  }
}
print("value", v)
)";
  Module m = Compile(source);
  struct Scopes : MemoryJournal {
    Status BeforeEffect(VM& vm, uint64_t seq, uint16_t b, const Value* a, int n) override {
      scopes.push_back(vm.effect_key());
      return MemoryJournal::BeforeEffect(vm, seq, b, a, n);
    }
    std::vector<std::string> scopes;
  };
  testing::CaptureHost host;
  Scopes journal;
  // Effects: print attempt 1, the retry's wait, print attempt 2, print in body (stopped
  // before it), print value.
  journal.stop_before = 4;
  ASSERT_EQ(journal.RunFromStart(m, &host), RunOutcome::kAborted);
  EXPECT_EQ(journal.scopes, (std::vector<std::string>{"s/1", "2", "s/1", "s/2"}));
  const std::string saved = journal.header;
  journal.stop_before = 0;
  journal.scopes.clear();
  host.now_ms += 60'000;  // a minute later: the timeout keeps its own deadline
  VM resumed(&m, &host, stdlib::GetNatives());
  ASSERT_TRUE(journal.Restore(resumed).ok());
  MemoryJournal again;
  again.Save(resumed, true);
  EXPECT_EQ(again.header, saved);
  resumed.SetJournal(&journal);
  host.output.clear();
  ASSERT_EQ(resumed.Run(), RunOutcome::kCompleted) << resumed.FormatUncaught();
  EXPECT_EQ(host.output, "in body\nvalue 2\n");
  EXPECT_EQ(journal.scopes, (std::vector<std::string>{"s/2", "5"}));
}

TEST(Checkpoint, DamagedHeadersAreRefusedNotRun) {
  Module m = Compile(kProgram);
  testing::CaptureHost host;
  MemoryJournal journal;
  journal.stop_before = 7;
  ASSERT_EQ(journal.RunFromStart(m, &host), RunOutcome::kAborted);
  std::string good = journal.header;
  std::mt19937 rng(42);
  int refused = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    journal.header = good;
    int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) journal.header[rng() % good.size()] ^= static_cast<char>(1 + rng() % 255);
    if (trial % 7 == 0) journal.header.resize(rng() % good.size());
    VM vm(&m, &host, stdlib::GetNatives());
    if (!journal.Restore(vm).ok()) ++refused;
  }
  EXPECT_GT(refused, 1000);
  // A missing object is refused too.
  journal.header = good;
  journal.objects.erase(journal.objects.begin());
  VM vm(&m, &host, stdlib::GetNatives());
  EXPECT_FALSE(journal.Restore(vm).ok());
}


// ---- The compact encoding (format 3) ----

// Values of every size class survive a checkpoint and a restore, in lists and maps nested
// in each other, short and long.
TEST(Checkpoint, ValuesOfEverySizeClassRoundTrip) {
  const char* source = R"(
let ints = [0, 1, -1, 63, -64, 64, -65, 127, 128, 8191, 8192, -8193, 2147483647, -2147483648,
            4294967296, 9223372036854775807, -9223372036854775807 - 1]
let floats = [0.0, -0.5, 1.5, 1e300, -2.5e-300]
let pad = "x"
for i in range(8) { pad = pad + pad }
let strings = ["", "a", "short", "é ü 字", pad + "y"]
let nested = {ints: ints, more: {floats: floats, strings: strings, flags: [true, false, null]}, empty: {}, none: []}
let long = []
for i in range(700) {
  if i % 3 == 0 { long.push(nested) } else if i % 3 == 1 { long.push(i * 1000003 - 350000000) } else { long.push("s${i}") }
}
print(ints, floats, strings)
print(nested)
print(len(long), long[0] == nested, long[1], long[698], long[699])
let sum = 0
for x in long { if type(x) == "int" { sum = sum + x } }
print(sum)
)";
  ASSERT_NO_FATAL_FAILURE(ExpectSameOutputWhereverStopped(source, 5));
}

// Small ints take two bytes (a tag and a one-byte varint), not nine.
TEST(Checkpoint, SmallIntsTakeTwoBytes) {
  Module m = Compile("let xs = []\nfor i in range(200) { xs.push(i % 50 - 25) }\nprint(len(xs))\n");
  testing::CaptureHost host;
  MemoryJournal journal;
  ASSERT_EQ(journal.RunFromStart(m, &host), RunOutcome::kCompleted);
  ASSERT_EQ(journal.bytes_written.size(), 2u);
  EXPECT_LE(journal.bytes_written[1], 200u * 2 + 200) << "the list of 200 small ints, and the header";
}

const char* kLongListEdits = R"(
let xs = []
for i in range(100000) { xs.push(i) }
print(len(xs))
for i in range(20) {
  xs.push(i)
  print(len(xs))
}
xs[5] = "five"
print(xs[5])
xs[-1] = "last"
print(xs[-1])
)";

// A push to a long list rewrites its head and last chunk, not the list.
TEST(Checkpoint, APushToALongListRewritesOneChunk) {
  Module m = Compile(kLongListEdits);
  testing::CaptureHost host;
  MemoryJournal journal;
  ASSERT_EQ(journal.RunFromStart(m, &host), RunOutcome::kCompleted);
  ASSERT_EQ(journal.objects_written.size(), 24u);
  EXPECT_GT(journal.bytes_written[1], 100000u) << "the first checkpoint after building the list holds it";
  for (size_t i = 2; i < journal.objects_written.size(); ++i) {
    EXPECT_LE(journal.objects_written[i], 4u) << "checkpoint " << i;
    EXPECT_LE(journal.bytes_written[i], 2048u) << "checkpoint " << i;
  }
}

// Restoring after each edit of a long list (pushes, sets, pops across chunk boundaries, a
// long list shrinking to a short one and growing again) gives the uninterrupted output, and
// the store keeps no chunk a list no longer has.
TEST(Checkpoint, ChunkedListEditsRestore) {
  const char* source = R"(
let xs = []
for i in range(1000) { xs.push(i) }
print(len(xs), xs[999])
xs[0] = "zero"
xs[512] = [512]
print(xs[0], xs[512], xs[513])
for i in range(300) { xs.pop() }
print(len(xs), xs[-1])
for i in range(650) { xs.pop() }
print(len(xs), xs)
for i in range(400) { xs.push({i: i}) }
print(len(xs), xs[300], xs[-1])
xs = null
let ys = []
for i in range(3000) { ys.push(i) }
print(len(ys))
)";
  Module m = Compile(source);
  ASSERT_NO_FATAL_FAILURE(ExpectSameOutputWhereverStopped(source, 7));

  // Shrinking to 50 items (one record) drops the list's chunks from the store.
  testing::CaptureHost host;
  MemoryJournal journal;
  journal.stop_before = 5;
  ASSERT_EQ(journal.RunFromStart(m, &host), RunOutcome::kAborted);
  EXPECT_TRUE(journal.chunks.empty()) << journal.chunks.size() << " chunks left";
}

// A freed long list's chunks leave the store with it.
TEST(Checkpoint, AFreedLongListsChunksAreDropped) {
  Module m = Compile(R"(
let big = []
for i in range(5000) { big.push(i) }
print(len(big))
big = null
for j in range(300000) { let t = [j] }
print("dropped")
)");
  testing::CaptureHost host;
  MemoryJournal journal;
  ASSERT_EQ(journal.RunFromStart(m, &host), RunOutcome::kCompleted);
  ASSERT_EQ(journal.objects_written.size(), 3u);
  EXPECT_GE(journal.objects_written[1], 21u);  // its head, and 5,000 items in 20 chunks of 256
  EXPECT_TRUE(journal.chunks.empty()) << journal.chunks.size() << " chunks left";
}

// Hostile bytes in a long list's head or chunks are refused as Corruption, never run and
// never a crash.
TEST(Checkpoint, DamagedListChunksAreRefused) {
  Module m = Compile("let xs = []\nfor i in range(1000) { xs.push(i) }\nprint(len(xs))\nprint(xs[999])\n");
  testing::CaptureHost host;
  MemoryJournal journal;
  journal.stop_before = 2;
  ASSERT_EQ(journal.RunFromStart(m, &host), RunOutcome::kAborted);
  ASSERT_EQ(journal.chunks.size(), 4u);
  const auto good_chunks = journal.chunks;
  const auto good_objects = journal.objects;
  uint32_t list_id = good_chunks.begin()->first.first;
  const std::string good_head = good_objects.at(list_id);
  auto refused = [&](const char* what) {
    VM vm(&m, &host, stdlib::GetNatives());
    Status s = journal.Restore(vm);
    EXPECT_TRUE(s.IsCorruption()) << what << ": " << s.message();
    journal.chunks = good_chunks;
    journal.objects = good_objects;
  };
  {
    VM vm(&m, &host, stdlib::GetNatives());
    ASSERT_TRUE(journal.Restore(vm).ok());
  }
  journal.chunks.erase({list_id, 2});
  refused("a missing chunk");
  journal.chunks[{list_id, 3}].push_back('\0');
  refused("a chunk with a value too many");
  journal.chunks[{list_id, 1}].pop_back();
  refused("a truncated chunk");
  journal.chunks[{list_id, 4}] = journal.chunks[{list_id, 3}];
  journal.objects[list_id] = good_head;
  journal.objects[list_id][1] = static_cast<char>(0xe9);  // n: 1001 for 1000 (varint e9 07)
  refused("a head that says one more item");
  journal.objects[list_id] = good_head;
  journal.objects[list_id].back() = 0;  // 0 items per chunk
  refused("a head with empty chunks");
  journal.objects[list_id] = std::string("\x07\x05\x10", 3);  // 5 items: too short to be chunked
  refused("a short list written as chunked");
  std::mt19937 rng(7);
  for (int trial = 0; trial < 2000; ++trial) {
    auto& chunk = journal.chunks[{list_id, static_cast<uint32_t>(rng() % 4)}];
    for (int f = 0; f < 1 + static_cast<int>(rng() % 3); ++f) chunk[rng() % chunk.size()] ^= static_cast<char>(1 + rng() % 255);
    VM vm(&m, &host, stdlib::GetNatives());
    Status s = journal.Restore(vm);  // accepted (an int changed) or refused: never a crash
    EXPECT_TRUE(s.ok() || s.IsCorruption()) << s.message();
    journal.chunks = good_chunks;
  }
}

}  // namespace
}  // namespace flow
