#include "runtime/test_runner.h"

#include <fmt/format.h>

#include <chrono>
#include <deque>
#include <map>

#include "runtime/program_file.h"
#include "stdlib/stdlib.h"
#include "vm/error_report.h"
#include "vm/vm.h"

namespace flow::runtime {

namespace {

// Starts at a fixed time (2026-01-01T00:00:00Z), so that a test's clock reads the same on
// every machine, and moves only by what the test waits.
constexpr int64_t kTestEpochMs = 1767225600000;

class TestHost : public VmHost {
 public:
  void WriteOutput(std::string_view text) override { output_.append(text); }
  int64_t NowMs() override { return now_ms_; }
  void SleepMs(int64_t ms) override { now_ms_ += ms; }
  bool virtual_time() const override { return true; }
  bool ShouldSuspend(int64_t ms, int64_t* wake_ms) override {
    *wake_ms = now_ms_ + ms;
    return false;  // every wait just moves the clock on
  }
  Status SendSignal(const std::string& name, std::string json) override {
    mailbox_[name].push_back(std::move(json));
    return Status::Ok();
  }
  Status TakeSignal(const std::string& name, bool* found, std::string* json) override {
    auto it = mailbox_.find(name);
    *found = it != mailbox_.end() && !it->second.empty();
    if (*found) {
      *json = std::move(it->second.front());
      it->second.pop_front();
    }
    return Status::Ok();
  }
  bool AllowsMocks() const override { return true; }
  std::string RunId() override { return "test"; }
  int64_t RunStartedMs() override { return kTestEpochMs; }
  std::string& output() { return output_; }

 private:
  int64_t now_ms_ = kTestEpochMs;
  std::string output_;
  std::map<std::string, std::deque<std::string>> mailbox_;
};

TestResult RunOne(const std::string& path, const std::string& text, int index, const std::string& name,
                  const TestOptions& test_options) {
  TestResult result;
  result.name = name;
  Module module;
  std::vector<SourceFile> files;
  Diagnostics diags;
  CompileOptions options;
  options.run_test = index;
  if (!CompileFile(path, text, &module, &files, &diags, options)) {
    result.failure = diags.Render(files);  // the file changed since it was listed
    return result;
  }
  const auto start = std::chrono::steady_clock::now();
  TestHost host;
  VM vm(&module, &host, stdlib::GetNatives());
  vm.SetGlobal("args", vm.heap().NewMap());  // as `flow run` without --arg: `args.x ?? d` reads d
  Budget budget;
  budget.max_instructions = test_options.max_instructions;
  vm.SetBudget(budget);
  const RunOutcome outcome = vm.Run();
  result.elapsed_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
  result.output = std::move(host.output());
  switch (outcome) {
    case RunOutcome::kCompleted: result.passed = true; break;
    case RunOutcome::kFailed: result.failure = FormatErrorReport(vm.UncaughtReport()); break;
    case RunOutcome::kSuspended:
      result.failure = "it waits for a signal no one sent: send it first, with signal.send(NAME, value)\n";
      break;
    case RunOutcome::kAborted: result.failure = "aborted: " + vm.abort_status().message() + "\n"; break;
    case RunOutcome::kOutOfMemory: result.failure = "out of memory\n"; break;
  }
  return result;
}

}  // namespace

Status RunTestFile(const std::string& path, const TestOptions& test_options, TestFileReport* report) {
  report->file = path;
  std::string text, error;
  if (!ReadFile(path, &text, &error, kMaxProgramBytes)) return Status::InvalidArgument(error);
  Module module;
  std::vector<SourceFile> files;
  Diagnostics diags;
  std::vector<std::string> names;
  CompileOptions options;
  options.tests = &names;
  if (!CompileFile(path, text, &module, &files, &diags, options)) {
    report->compile_errors = diags.Render(files);
    return Status::Ok();
  }
  for (size_t i = 0; i < names.size(); ++i) report->tests.push_back(RunOne(path, text, static_cast<int>(i), names[i], test_options));
  return Status::Ok();
}

}  // namespace flow::runtime
