// Test helper: compile and run a Flow program in memory, capturing what it prints.
#pragma once
#include <gtest/gtest.h>

#include <string>

#include "compiler/compiler.h"
#include "stdlib/stdlib.h"
#include "vm/vm.h"

namespace flow::testing {

class CaptureHost : public VmHost {
 public:
  void WriteOutput(std::string_view text) override { output.append(text); }
  int64_t NowMs() override { return now_ms; }
  std::string output;
  int64_t now_ms = 1'700'000'000'000;
};

struct ProgramRun {
  bool compiled = false;
  std::string diagnostics;  // rendered compile errors
  RunOutcome outcome = RunOutcome::kFailed;
  std::string output;
  std::string error;  // the uncaught error, rendered
  size_t live_objects = 0;
};

// Compiles a program that must not compile: its diagnostics, rendered (file "t.flow").
inline std::string CompileErrors(const std::string& source) {
  Module module;
  Diagnostics diags;
  EXPECT_FALSE(CompileSource("t.flow", source, &module, &diags));
  return diags.Render("t.flow", source);
}

// Compiles a program that must compile (a failure is the test's, with the diagnostics).
inline Module Compile(const std::string& source) {
  Module module;
  Diagnostics diags;
  EXPECT_TRUE(CompileSource("test.flow", source, &module, &diags)) << diags.Render("test.flow", source);
  return module;
}

inline ProgramRun RunProgram(const std::string& source) {
  ProgramRun r;
  Module module;
  Diagnostics diags;
  if (!CompileSource("test.flow", source, &module, &diags)) {
    r.diagnostics = diags.Render("test.flow", source);
    return r;
  }
  r.compiled = true;
  CaptureHost host;
  VM vm(&module, &host, stdlib::GetNatives());
  r.outcome = vm.Run();
  r.output = host.output;
  if (r.outcome == RunOutcome::kFailed) r.error = vm.FormatUncaught();
  r.live_objects = vm.heap().live_objects();
  return r;
}

}  // namespace flow::testing
