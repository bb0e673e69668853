// Tasks in the VM: every checkpoint of a run with tasks restores to the same state and
// goes on to the same output, and a checkpoint writes what changed, not every task.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "memory_journal.h"
#include "run_program.h"
#include "stdlib/stdlib.h"
#include "vm/vm.h"

namespace flow {
namespace {

using testing::Compile;
using testing::MemoryJournal;

// A clock that waits move (as --virtual-time).
struct ClockHost : testing::CaptureHost {
  void SleepMs(int64_t ms) override { now_ms += ms; }
};

const char* kTasksProgram = R"(
fn worker(name, ms) {
  let seen = []
  for k in range(2) {
    sleep(ms)
    seen.push("${name}${k}")
  }
  return seen
}
let total = 0
fn fan() {
  let local = "outer"
  let a = spawn { worker("a", 30) }
  let b = spawn {
    let mine = local   // a variable of the spawner's frame, read while it waits
    local = "changed by b"
    worker("b", 20)
  }
  let r = parallel (limit: 2) for i, x in [1, 2, 3] {
    sleep(x * 5)
    total = total + x
    x * 10 + i
  }
  return [await [a, b], r, local]
}
print(fan())
let racing = tasks.race([spawn { sleep(50); "slow" }, spawn { sleep(10); "fast" }])
print(racing, total)
let s = tasks.settle([spawn { sleep(5); throw error("k", "m") }, spawn { step "once" { sleep(3); 1 } }])
print(s[0].ok, s[1].value)
)";

std::string RunToEnd(VM& vm, ClockHost& host) {
  host.output.clear();
  RunOutcome r = vm.Run();
  EXPECT_EQ(r, RunOutcome::kCompleted) << vm.FormatUncaught();
  return host.output;
}

TEST(Tasks, EveryCheckpointRestoresAndGoesOnToTheSameOutput) {
  Module m = Compile(kTasksProgram);
  ClockHost clean_host;
  MemoryJournal clean;
  VM vm(&m, &clean_host, stdlib::GetNatives());
  clean.Begin(vm);
  const std::string expected = RunToEnd(vm, clean_host);
  ASSERT_EQ(expected,
            "[[[\"a0\",\"a1\"],[\"b0\",\"b1\"]],[10,21,32],\"changed by b\"]\nfast 6\nfalse 1\n");
  const size_t effects = clean.objects_written.size() - 1;  // a checkpoint per effect, after the first
  ASSERT_GT(effects, 10u);
  for (uint64_t k = 1; k <= effects; ++k) {
    SCOPED_TRACE("stopped before effect " + std::to_string(k));
    ClockHost host;
    MemoryJournal journal;
    journal.stop_before = k;
    VM first(&m, &host, stdlib::GetNatives());
    journal.Begin(first);
    ASSERT_EQ(first.Run(), RunOutcome::kAborted);
    const std::string before = host.output;
    // The last checkpoint restores, and encodes again to the very same header.
    VM resumed(&m, &host, stdlib::GetNatives());
    ASSERT_TRUE(journal.Restore(resumed).ok()) << journal.Restore(resumed).message();
    MemoryJournal again;
    again.Save(resumed, true);
    EXPECT_EQ(again.header, journal.header);
    journal.stop_before = 0;
    resumed.SetJournal(&journal);
    EXPECT_EQ(before + RunToEnd(resumed, host), expected);
  }
}

// One task wakes per step while up to `n` others wait: what each checkpoint writes, past
// the first one after the tasks were spawned (which writes them all): the median and the
// largest (a task's end rewrites a chunk of the list of live tasks).
struct CheckpointBytes {
  size_t median, largest;
};
CheckpointBytes SteadyCheckpoints(int n) {
  std::string source = "let ticks = 0\nfor i in range(" + std::to_string(n) +
                       ") {\n  spawn {\n    for k in range(3) {\n      sleep(1000 + i * 7 + k * 100000)\n"
                       "      ticks = ticks + 1\n    }\n  }\n}\nsleep(1000000)\nprint(ticks)\n";
  Module m = Compile(source);
  ClockHost host;
  MemoryJournal journal;
  VM vm(&m, &host, stdlib::GetNatives());
  journal.Begin(vm);
  EXPECT_EQ(RunToEnd(vm, host), std::to_string(3 * n) + "\n");
  std::vector<size_t> bytes(journal.bytes_written.begin() + 2, journal.bytes_written.end());
  size_t largest = *std::max_element(bytes.begin(), bytes.end());
  std::nth_element(bytes.begin(), bytes.begin() + bytes.size() / 2, bytes.end());
  return {bytes[bytes.size() / 2], largest};
}

TEST(Tasks, ACheckpointWritesTheTaskThatRanNotEveryTask) {
  const CheckpointBytes one = SteadyCheckpoints(1), thousand = SteadyCheckpoints(1000);
  EXPECT_LE(thousand.largest, 4096u) << "one task's wake among 1,000 waiting";
  EXPECT_LE(thousand.median, one.median + 128) << "flat: " << one.median << " bytes with 1 task, " << thousand.median
                                               << " with 1,000";
}

TEST(Tasks, ADamagedTaskRecordIsRefused) {
  Module m = Compile("let t = spawn { sleep(10); 1 }\nlet u = spawn { sleep(20); 2 }\nprint(await [t, u])\n");
  ClockHost host;
  MemoryJournal journal;
  journal.stop_before = 3;  // the print: both tasks have run, their records are written
  VM vm(&m, &host, stdlib::GetNatives());
  journal.Begin(vm);
  ASSERT_EQ(vm.Run(), RunOutcome::kAborted);
  size_t tasks = 0;
  for (auto& [id, bytes] : journal.objects) {
    if (bytes.empty() || bytes[0] != static_cast<char>(ObjKind::kTask)) continue;
    ++tasks;
    MemoryJournal damaged = journal;
    damaged.objects[id][damaged.objects[id].size() / 2] ^= 0x5a;
    VM restored(&m, &host, stdlib::GetNatives());
    Status s = damaged.Restore(restored);
    if (s.ok()) continue;  // a flipped byte may still be a valid (other) state; never a crash
    EXPECT_NE(s.message().find("checkpoint is inconsistent"), std::string::npos) << s.message();
  }
  EXPECT_GE(tasks, 3u) << "the top level and two tasks are records";
}

}  // namespace
}  // namespace flow
