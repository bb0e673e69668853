// flow test: runs the `test "name" { }` blocks of a file, each in a VM of its own, on a
// virtual clock, with a mailbox that signal.send fills, so that a workflow that waits for
// hours or for a person runs in milliseconds. Nothing is stored: no run, no checkpoint.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "vm/base/status.h"

namespace flow::runtime {

struct TestResult {
  std::string name;
  bool passed = false;
  std::string failure;  // why it failed: the uncaught error and its trace, or the suspension
  std::string output;   // what it printed (the file's top-level code's too)
  int64_t elapsed_us = 0;
};

struct TestFileReport {
  std::string file;
  std::string compile_errors;  // rendered: when set, no test ran
  std::vector<TestResult> tests;
};

// What bounds each test: a loop that never ends fails its test instead of hanging the
// suite (time is virtual, so only work done can bound it).
inline constexpr uint64_t kDefaultTestInstructions = 1'000'000'000;
struct TestOptions {
  uint64_t max_instructions = kDefaultTestInstructions;  // per test: past it, `budget` is raised
};

// Compiles `path` once to learn its tests, then once per test with that test called at the
// end of the file's top-level code, and runs it. Not ok only when the file cannot be read
// (compile errors are in the report).
Status RunTestFile(const std::string& path, const TestOptions& options, TestFileReport* report);

}  // namespace flow::runtime
