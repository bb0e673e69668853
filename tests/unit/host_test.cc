// The VM knows only the VM (issue 9, item 2): a native's outcome is one NativeResult the VM
// switches on; the environment, the meaning of a token and Retry-After are the host's and
// the stdlib's, reached through VmHost and plain numbers.
#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <map>

#include "memory_journal.h"
#include "run_program.h"
#include "runtime/journal.h"
#include "runtime/runtime.h"

namespace flow {
namespace {

using testing::Compile;

// A host with an environment of its own, that records the waits it is asked for.
class TestHost : public testing::CaptureHost {
 public:
  bool EnvironmentValue(const std::string& name, std::string* value) override {
    auto it = env.find(name);
    if (it == env.end()) return false;
    *value = it->second;
    return true;
  }
  void SleepMs(int64_t ms) override { waits.push_back(ms); }
  std::map<std::string, std::string> env;
  std::vector<int64_t> waits;
};

// Counts the journal's records, by builtin.
class CountingJournal : public EffectJournal {
 public:
  Status BeforeEffect(VM&, uint64_t, uint16_t builtin, const Value*, int) override {
    ++intents[builtin];
    return Status::Ok();
  }
  Status AfterEffect(VM&, uint64_t, uint16_t builtin, Value, bool) override {
    ++outcomes[builtin];
    return Status::Ok();
  }
  std::map<uint16_t, int> intents, outcomes;
};

constexpr uint16_t Id(Builtin b) { return static_cast<uint16_t>(b); }

// stdlib's natives with one builtin replaced.
class NativesWith {
 public:
  NativesWith(Builtin id, BuiltinFn fn) {
    Natives stdlib = stdlib::GetNatives();
    std::copy(stdlib.builtins, stdlib.builtins + kBuiltinCount, table_.begin());
    table_[Id(id)] = fn;
    natives_ = {table_.data(), stdlib.methods};
  }
  Natives natives() const { return natives_; }

 private:
  std::array<BuiltinFn, kBuiltinCount> table_;
  Natives natives_;
};

NativeResult SuspendingWait(VM& vm, Value*, int, Value*) { return vm.Suspend({42, "go"}); }
NativeResult AbortingNative(VM& vm, Value*, int, Value*) { return vm.Abort(Status::Corruption("the mailbox is damaged")); }

struct Outcome {
  RunOutcome outcome;
  std::string output;
  std::string abort_message;
  Suspension suspension;
  uint64_t effects_done;
};

Outcome RunWith(const std::string& source, Builtin id, BuiltinFn fn, CountingJournal* journal = nullptr) {
  Module m = Compile(source);
  TestHost host;
  NativesWith natives(id, fn);
  VM vm(&m, &host, natives.natives());
  if (journal) vm.SetJournal(journal);
  RunOutcome outcome = vm.Run();
  return {outcome, host.output, vm.abort_status().message(), vm.suspension(), vm.effects_done()};
}

TEST(NativeResult, SuspendedStopsTheRunWithTheEffectInFlight) {
  CountingJournal journal;
  Outcome o = RunWith("print(\"before\")\ntry { sleep(5) } catch e { print(\"caught\", e.kind) }\nprint(\"after\")\n",
                      Builtin::SLEEP, SuspendingWait, &journal);
  EXPECT_EQ(o.outcome, RunOutcome::kSuspended);
  EXPECT_EQ(o.output, "before\n");  // not caught: a suspension is no error
  EXPECT_EQ(o.suspension.wake_ms, 42);
  EXPECT_EQ(o.suspension.signal, "go");
  EXPECT_EQ(journal.intents[Id(Builtin::SLEEP)], 1);
  EXPECT_EQ(journal.outcomes[Id(Builtin::SLEEP)], 0);  // in flight: it runs again on resume
  EXPECT_EQ(o.effects_done, 1u);
}

TEST(NativeResult, AbortedStopsTheRunUncaught) {
  CountingJournal journal;
  Outcome o = RunWith("try { sleep(5) } catch e { print(\"caught\", e.kind) }\nprint(\"after\")\n", Builtin::SLEEP,
                      AbortingNative, &journal);
  EXPECT_EQ(o.outcome, RunOutcome::kAborted);
  EXPECT_EQ(o.output, "");
  EXPECT_EQ(o.abort_message, "the mailbox is damaged");
  EXPECT_EQ(journal.outcomes[Id(Builtin::SLEEP)], 0);
  EXPECT_EQ(o.effects_done, 0u);
}

// A pure builtin's outcome is switched on too (before, a false from it always meant an
// error, and the run went on to a handler with no error pending).
TEST(NativeResult, PureBuiltinThatAbortsStopsTheRun) {
  Outcome o = RunWith("try { print(len(\"abc\")) } catch e { print(\"caught\") }\n", Builtin::LEN, AbortingNative);
  EXPECT_EQ(o.outcome, RunOutcome::kAborted);
  EXPECT_EQ(o.output, "");
}

// Called as a map's member (m.f(x)), a builtin goes through the same path as f(x): an
// effect is journaled, and its suspension stops the run. Before, such a call ran the
// native directly: no intent, no checkpoint, and a suspension lost.
TEST(NativeResult, EffectCalledAsAMapMemberIsJournaledAndMaySuspend) {
  CountingJournal journal;
  Outcome o = RunWith("let m = {p: print, w: sleep}\nm.p(\"x\")\nm.w(5)\nprint(\"after\")\n", Builtin::SLEEP,
                      SuspendingWait, &journal);
  EXPECT_EQ(o.outcome, RunOutcome::kSuspended);
  EXPECT_EQ(o.output, "x\n");
  EXPECT_EQ(journal.intents[Id(Builtin::PRINT)], 1);
  EXPECT_EQ(journal.outcomes[Id(Builtin::PRINT)], 1);
  EXPECT_EQ(journal.intents[Id(Builtin::SLEEP)], 1);
  EXPECT_EQ(o.effects_done, 1u);
}

// env.get, secret() and a restored secret read the host's environment, never the process's.
TEST(Host, EnvironmentIsTheHosts) {
  setenv("FLOW_HOST_TEST_VAR", "from the process", 1);
  Module m = Compile(R"(
print(env.get("FLOW_HOST_TEST_VAR"), env.get("FLOW_HOST_TEST_UNSET", "default"))
let s = secret("FLOW_HOST_TEST_VAR")
print(s)
)");
  TestHost host;
  host.env["FLOW_HOST_TEST_VAR"] = "from the host";
  VM vm(&m, &host, stdlib::GetNatives());
  ASSERT_EQ(vm.Run(), RunOutcome::kCompleted) << vm.FormatUncaught();
  EXPECT_EQ(host.output.substr(0, host.output.find('\n')), "from the host default");

  TestHost empty;  // a host without the variable: secret() raises, though the process has it
  VM vm2(&m, &empty, stdlib::GetNatives());
  EXPECT_EQ(vm2.Run(), RunOutcome::kFailed);
  EXPECT_NE(vm2.FormatUncaught().find("error: secret: the secret `FLOW_HOST_TEST_VAR` is not set"), std::string::npos)
      << vm2.FormatUncaught();
  unsetenv("FLOW_HOST_TEST_VAR");
}

TEST(Host, RestoredSecretIsReadFromTheHost) {
  Module m = Compile("let s = secret(\"FLOW_HOST_TEST_SECRET\")\nprint(\"got\")\nprint(s)\n");
  TestHost host;
  host.env["FLOW_HOST_TEST_SECRET"] = "hunter22";
  struct Saving : CountingJournal {
    Status AfterEffect(VM& vm, uint64_t seq, uint16_t b, Value v, bool r) override {
      if (seq == 2) saved.Save(vm, true);  // after print("got")
      return CountingJournal::AfterEffect(vm, seq, b, v, r);
    }
    testing::MemoryJournal saved;
  } journal;
  VM vm(&m, &host, stdlib::GetNatives());
  vm.SetJournal(&journal);
  ASSERT_EQ(vm.Run(), RunOutcome::kCompleted) << vm.FormatUncaught();
  setenv("FLOW_HOST_TEST_SECRET", "from the process", 1);
  TestHost without;
  VM refused(&m, &without, stdlib::GetNatives());
  Status s = journal.saved.Restore(refused);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("the secret `FLOW_HOST_TEST_SECRET`"), std::string::npos) << s.message();
  unsetenv("FLOW_HOST_TEST_SECRET");
  VM restored(&m, &host, stdlib::GetNatives());
  ASSERT_TRUE(journal.saved.Restore(restored).ok());
}

// The token budget is a counter that natives charge in units of their own: the VM counts
// and limits, the native says what a token is.
NativeResult ChargeSeven(VM& vm, Value*, int, Value* out) {
  if (!vm.TokensLeft("widgets")) return NativeResult::kRaised;
  vm.ChargeTokens(7);
  *out = Value::Null();
  return NativeResult::kDone;
}

TEST(Host, TokenBudgetCountsWhatNativesCharge) {
  Module m = Compile(R"(
for i in range(5) {
  try {
    llm.chat({})
    print("call", i)
  } catch e { print(e.kind, e.message) }
}
)");
  TestHost host;
  NativesWith natives(Builtin::LLM_CHAT, ChargeSeven);
  VM vm(&m, &host, natives.natives());
  vm.SetBudget({.max_tokens = 10});
  EXPECT_EQ(vm.Run(), RunOutcome::kFailed);
  EXPECT_EQ(host.output, "call 0\ncall 1\nbudget the run used its budget of 10 widgets\n");
  EXPECT_EQ(vm.tokens_used(), 14u);
}

// An effect called as a map's member whose native raises `budget` (uncaught: the run
// stops at the call) resumes with a larger budget by making that call again.
TEST(NativeResult, BudgetStopAtAMemberCallResumesThere) {
  Module m = Compile(R"(
let m = {chat: llm.chat}
for i in range(3) {
  m.chat({})
  print("call", i)
}
)");
  struct Keeping : testing::MemoryJournal {
    Status AfterEffect(VM& vm, uint64_t, uint16_t, Value, bool) override {
      Save(vm, header.empty());  // the first: everything
      return Status::Ok();
    }
  } journal;
  TestHost host;
  NativesWith natives(Builtin::LLM_CHAT, ChargeSeven);
  {
    VM vm(&m, &host, natives.natives());
    vm.SetJournal(&journal);
    vm.SetBudget({.max_tokens = 10});
    ASSERT_EQ(vm.Run(), RunOutcome::kFailed);
    EXPECT_NE(vm.FormatUncaught().find("error: budget: the run used its budget of 10 widgets"), std::string::npos)
        << vm.FormatUncaught();
  }
  EXPECT_EQ(host.output, "call 0\ncall 1\n");
  VM resumed(&m, &host, natives.natives());
  ASSERT_TRUE(journal.Restore(resumed).ok());
  resumed.SetJournal(&journal);
  resumed.SetBudget({.max_tokens = 100});
  ASSERT_EQ(resumed.Run(), RunOutcome::kCompleted) << resumed.FormatUncaught();
  EXPECT_EQ(host.output, "call 0\ncall 1\ncall 2\n");
}

// retry obeys an error's data.retry_after_ms (stdlib's http puts a 429 or 503's
// Retry-After there: durable/retry_after, durable/constructs), up to max_delay.
TEST(Host, RetryWaitsWhatTheErrorAsks) {
  const char* kProgram = R"(
let n = 0
let r = retry (attempts: 3, backoff: 1ms%s) {
  n = n + 1
  if n == 1 { throw error("busy", "come back later", {retry_after_ms: 1234}) }
  n
}
print(r)
)";
  for (auto [options, wait] : {std::pair<std::string, int64_t>{"", 1234}, {", max_delay: 500ms", 500}}) {
    std::string source = kProgram;
    source.replace(source.find("%s"), 2, options);
    Module m = Compile(source);
    TestHost host;
    VM vm(&m, &host, stdlib::GetNatives());
    ASSERT_EQ(vm.Run(), RunOutcome::kCompleted) << vm.FormatUncaught();
    EXPECT_EQ(host.output, "2\n");
    EXPECT_EQ(host.waits, std::vector<int64_t>{wait}) << options;
  }
}

// A checkpoint from before the per-kind handler fields (run database version 2) is
// refused with the versions named, never misread.
TEST(Host, StateRecordOfVersionTwoIsRefused) {
  std::string record;
  runtime::EncodeStateRecordInto(3, 0, 0, "header", &record);
  ASSERT_EQ(static_cast<uint8_t>(record[0]), runtime::kRunDbRecordVersion);
  EXPECT_EQ(runtime::kRunDbRecordVersion, 5);
  record[0] = 2;
  runtime::StateRecord state;
  Status s = runtime::DecodeStateRecord(record, &state);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("format version 2, this flow reads version 5"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace flow
