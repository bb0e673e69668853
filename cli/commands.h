// One function per `flow` command; each returns the process exit code.
#pragma once
#include <string>
#include <vector>

#include "runtime/runtime.h"

namespace flow::cli {

struct RunOptions {
  std::string file;
  std::vector<std::string> args;  // "k=v"
  std::string store;
  std::string run_id;
  bool virtual_time = false;
  bool ephemeral = false;
  bool detach = false;
  std::string durability = "sync";
  runtime::BudgetOptions budgets;  // its deadline_ms comes from `deadline`
  std::string deadline;            // a duration: 500ms, 30s, 10m, 2h, 1d (or plain ms)
  std::string max_memory;          // a size: 512M, 2G (its budgets.max_memory)
};

// Parses a duration as Flow writes them; false if it is not one.
bool ParseDuration(const std::string& text, int64_t* ms);
// Parses a size with its unit (K, M, G: powers of 1024, optionally written KiB or KB); false if it is not one.
bool ParseSize(const std::string& text, uint64_t* bytes);

// Durable runs (run_commands.cc).
int RunCommand(const RunOptions& options);
int ResumeCommand(const std::string& store, const std::string& run_id, const RunOptions& options);
int RunsCommand(const std::string& store, const std::string& status, bool json);
int InspectCommand(const std::string& store, const std::string& run_id);
int HistoryCommand(const std::string& store, const std::string& run_id, bool json);
int TraceCommand(const std::string& store, const std::string& run_id);
int ExportCommand(const std::string& store, const std::string& run_id, const std::string& out);
int ImportCommand(const std::string& store, const std::string& file);
int CompileCommand(const std::string& file, std::string out);
int CheckCommand(const std::string& file);
int DisasmCommand(const std::string& file);

}  // namespace flow::cli
