// One function per `flow` command; each returns the process exit code.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/exit_codes.h"
#include "runtime/program_cache.h"
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
  std::string cache_dir;  // the compiled-program cache ("" = none): FLOW_CACHE_DIR, XDG_CACHE_HOME/flow, ~/.cache/flow
  bool no_cache = false;
  std::string durability = "sync";
  std::string keep_checkpoints;    // all | last | N ("" = the default)
  runtime::BudgetOptions budgets;  // its deadline_ms comes from `deadline`
  std::string deadline;            // a duration with its unit: 500ms, 30s, 10m, 2h, 1d
  std::string max_memory;          // a size: 512M, 2G (its budgets.max_memory)
};

// `text` safe for a terminal: control characters (C0, DEL, C1) as \xNN or \u{NN}, so a name
// from an imported image cannot move the cursor, recolour or break a table.
std::string Printable(std::string_view text);

// Prints `flow: CONTEXT: message` and returns the exit code for the Status: 3 for damage,
// an unreadable store or a newer format; 2 for the caller's mistakes (an unknown or
// finished run, a taken id, a bad argument).
int Fail(const Status& s, const std::string& context);

// Loads a program (runtime::LoadProgram), printing why it cannot: kExitOk, kExitUsage
// (unreadable, compile errors) or kExitCorrupt (damaged bytecode). `source`: as LoadProgram's.
int LoadProgramOrSay(const std::string& path, Module* module, const runtime::ProgramCache* cache = nullptr,
                     std::optional<std::string>* source = nullptr);

// Writes `bytes` to the file `out` (a temporary file renamed over it). Refuses (exit 2) a
// target that is not a regular file (device, symbolic link, folder) or is `input` itself.
int WriteOutputFile(const std::string& command, const std::string& out, std::string_view bytes, const std::string& input);

// The listener and the report of flow run, for other commands that execute runs (run_commands.cc).
std::unique_ptr<runtime::RunListener> NewProcessListener();
int ReportRunResult(const Status& s, const runtime::RunResult& r);
// The notice of a resume whose program file changed or is gone (rerun_command.cc).
void PrintProgramFileMoved(const store::RunRecord& r, runtime::ProgramFileState state, const std::string& file);
// `bytes` in human units: 512B, 4.0K, 12.3M, 1.2G (retention_commands.cc).
std::string HumanBytes(uint64_t bytes);
// flow rerun RUN [--code FILE] [--run-id NEW] (rerun_command.cc).
int RerunCommand(const std::string& store, const std::string& run_id, const std::string& code_file,
                 const std::string& new_run_id);
// flow delete RUN; flow gc --older-than D [--status S]... [--dry-run] (retention_commands.cc).
int DeleteCommand(const std::string& store, const std::string& run_id);
int GcCommand(const std::string& store, const std::string& older_than, const std::vector<std::string>& statuses,
              bool dry_run);

// Durable runs (run_commands.cc).
int RunCommand(const RunOptions& options);
// The StartOptions of flow run (and submit, schedule add) from the command line, its
// program loaded: kExitOk, or the exit code of what was wrong (said on stderr).
int PrepareStart(const RunOptions& options, const char* command, runtime::StartOptions* start, Module* module);
// A resume that did not start the run (runtime::RunResult::deferred): says why; kExitDeferred (queue_commands.cc).
int ReportDeferred(const runtime::RunResult& r);
// A worker's line for a schedule's tick (schedule_commands.cc).
void PrintScheduleFiring(const runtime::ScheduleFiring& f);
int ResumeCommand(const std::string& store, const std::string& run_id, const RunOptions& options);
int ForkCommand(const std::string& store, const std::string& run_id, std::optional<uint64_t> at_effect,
                const std::vector<std::string>& sets, const RunOptions& options);
int RunsCommand(const std::string& store, const std::string& status, bool json);
int InspectCommand(const std::string& store_dir, const std::string& run_id, std::optional<uint64_t> at_effect);
int HistoryCommand(const std::string& store, const std::string& run_id, bool json);
// A run's history (its effects with its step events among them), read as flow history
// reads it: not ok, with a message, if it cannot be; LoadHistory says why (exit code).
Status ReadHistory(const std::string& store, const std::string& run_id, std::vector<runtime::HistoryEntry>* out);
int LoadHistory(const std::string& store, const std::string& run_id, std::vector<runtime::HistoryEntry>* out);
// `flow logs RUN`: the run's log lines from its history; `follow`: until it stops running.
int LogsCommand(const std::string& store, const std::string& run_id, bool json, bool follow);
// `flow trace RUN --format chrome|otlp` (cli/trace_command.cc).
int TraceCommand(const std::string& store, const std::string& run_id, const std::string& format);
int ExportCommand(const std::string& store, const std::string& run_id, const std::string& out);
int ImportCommand(const std::string& store, const std::string& file);
// `flow signal RUN NAME [JSON | - | @FILE]`: the value checked as signal.wait will read it.
int SignalCommand(const std::string& store, const std::string& run_id, const std::string& name, const std::string& value);
int CancelCommand(const std::string& store, const std::string& run_id);
struct WorkerCommandOptions {
  std::string store;
  int concurrency = 4;
  bool once = false;
  bool json = false;
  int max_crashes = 3;
};
int WorkerCommand(const WorkerCommandOptions& options);
// A store about to be created: its folder and any missing parents (mkdir -p); false, said.
bool MakeStoreFolder(const std::string& dir);
int CompileCommand(const std::string& file, std::string out);
// flow check FILE [--json]: the compiler's errors and warnings; exit 2 if there are errors.
int CheckCommand(const std::string& file, bool json);
// flow lsp: a language server on stdin/stdout (docs/editors.md).
int LspCommand();
// flow test FILE...: each file's tests, then "N passed, M failed"; exit 1 if one failed,
// 2 if a file does not compile.
int TestCommand(const std::vector<std::string>& files, uint64_t max_instructions);
int DisasmCommand(const std::string& file);

}  // namespace flow::cli
