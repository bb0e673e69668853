// The `flow` command: argument parsing (CLI11, Debian's libcli11-dev: subcommands, --help
// and validation without hand-written parsing) and dispatch to cli/commands.cc.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/process_heap.h"
#include "cli/queue_commands.h"
#include "cli/ui/server.h"
#include "runtime/runtime.h"
#include "store/keys.h"
#include "runtime/program_file.h"
#include "runtime/test_runner.h"

static constexpr const char* kNewStoreHelp =
    "the store: a folder (default ./.flow, or FLOW_STORE; made, with any missing parents, if it does not exist) or "
    "postgresql://USER@HOST:PORT/DB (its schema made if it has none)";

// `code`, unless the output could not be written (a full disk, a closed pipe): that is a
// failure, not a success with a short listing or a cut help text.
static int OutputWritten(int code) {
  bool flushed = std::fflush(stdout) == 0;
  int error = errno;
  if ((!flushed || std::ferror(stdout)) && code == flow::kExitOk) {
    fmt::print(stderr, "flow: cannot write the output{}\n", flushed ? "" : std::string(": ") + std::strerror(error));
    return flow::kExitOutputFailed;
  }
  return code;
}

int main(int argc, char** argv) {
  flow::cli::SetUpProcessHeap();
  using namespace flow::cli;
  using flow::kExitOk;
  using flow::kExitUsage;
  CLI::App app{"flow: durable workflows, compiled to bytecode and checkpointed after every effect"};
#ifdef FLOW_TEST_HOOKS
  app.set_version_flag("--version", std::string("flow ") + FLOW_VERSION + " (test hooks: FLOW_CRASH_AT honoured)");
#else
  app.set_version_flag("--version", std::string("flow ") + FLOW_VERSION);
#endif
  app.require_subcommand(1);

  RunOptions run;
  const char* env_store = std::getenv("FLOW_STORE");
  run.store = env_store && *env_store ? env_store : flow::store::kDefaultStoreDir;
  run.cache_dir = flow::runtime::ProgramCacheDir(std::getenv("FLOW_CACHE_DIR"), std::getenv("XDG_CACHE_HOME"),
                                                 std::getenv("HOME"));
  auto* run_cmd = app.add_subcommand("run", "compile FILE if needed, run it, print its output");
  run_cmd->add_option("FILE", run.file, "a .flow script or a .flowc bytecode file")->required();
  run_cmd->add_option("--arg", run.args, "a program argument NAME=VALUE, read as args.NAME")->take_all();
  run_cmd->add_option("--store", run.store, kNewStoreHelp);
  run_cmd->add_option("--run-id", run.run_id, "the id of the new run (default: a fresh sortable id)")->check(RunIdValue());
  run_cmd->add_flag("--virtual-time", run.virtual_time, "skip time: durable waits fire at once");
  run_cmd->add_option("--durability", run.durability, "sync (default) or async")
      ->check(CLI::IsMember({"sync", "async"}));
  run_cmd->add_option("--keep-checkpoints", run.keep_checkpoints,
                      "which past checkpoints the run keeps for inspect --at and fork: all, last, or the last N "
                      "(default: all until they take 256 MiB, then the last 1000)")
      ->check(KeepCheckpointsValue());
  auto add_budgets = [&run](CLI::App* cmd) {
    cmd->add_option("--max-effects", run.budgets.max_effects, "raise kind budget once the run has done this many effects")
        ->check(CountValue());
    cmd->add_option("--max-instructions", run.budgets.max_instructions, "raise kind budget after this many VM instructions")
        ->check(CountValue());
    cmd->add_option("--deadline", run.deadline, "raise kind budget once this long has passed (a unit is needed: 30s, 10m, 2h)")
        ->check(PositiveDurationValue());
    cmd->add_option("--max-tokens", run.budgets.max_tokens, "raise kind budget once llm.chat has used this many tokens")
        ->check(CountValue());
    cmd->add_option("--max-memory", run.max_memory,
                    "raise kind budget once the run's heap passes this size (512M, 2G; default half the "
                    "machine's memory, at most 4G)")
        ->check(SizeValue());
  };
  add_budgets(run_cmd);
  run_cmd->add_flag("--detach", run.detach, "suspend at every wait (exit 75): flow resume or flow worker continues it");
  run_cmd->add_flag("--ephemeral", run.ephemeral,
                    "record nothing: no store, no checkpoints, no resume (quick scripts, benchmarks)");
  run_cmd->add_flag("--no-cache", run.no_cache,
                    "compile FILE afresh and keep nothing: skip the compiled-program cache ($FLOW_CACHE_DIR, "
                    "else $XDG_CACHE_HOME/flow or ~/.cache/flow; FLOW_CACHE_DIR= turns it off)");

  std::string file, out;
  auto* compile_cmd = app.add_subcommand("compile", "compile FILE to bytecode");
  compile_cmd->add_option("FILE", file, "a .flow script")->required();
  compile_cmd->add_option("-o,--output", out, "the bytecode file to write (default FILE with .flowc); a regular file, not FILE itself");

  auto* check_cmd = app.add_subcommand("check", "report the errors and warnings in FILE (and the files it imports), run nothing");
  check_cmd->add_option("FILE", file, "a .flow script")->required();
  bool check_json = false;
  check_cmd->add_flag("--json", check_json,
                      "one JSON object a line per error or warning: file, line, column, severity, message");

  std::vector<std::string> test_files;
  auto* lsp_cmd = app.add_subcommand("lsp", "a language server for editors, on stdin and stdout: diagnostics, go to "
                                            "definition, hover, completion (docs/editors.md)");
  auto* test_cmd = app.add_subcommand("test", "run the test \"name\" { } blocks of each FILE (FILE_test.flow by custom), "
                                               "on a virtual clock, with signal.send; nothing is stored");
  test_cmd->add_option("FILE", test_files, "test files")->required();
  uint64_t test_instructions = flow::runtime::kDefaultTestInstructions;
  test_cmd->add_option("--max-instructions", test_instructions,
                       "fail a test (kind budget) past this many VM instructions, so that an endless loop cannot hang the suite")
      ->default_val(flow::runtime::kDefaultTestInstructions)
      ->check(CountValue());

  auto* disasm_cmd = app.add_subcommand("disasm", "print FILE's bytecode in human-readable form");
  disasm_cmd->add_option("FILE", file, "a .flow script or a .flowc bytecode file")->required();

  std::string run_id, status;
  // A command on one run: its RUN argument and the --store option.
  auto add_run_command = [&](const char* name, const char* description) {
    CLI::App* cmd = app.add_subcommand(name, description);
    cmd->add_option("RUN", run_id, "the run id")->required()->check(RunIdValue());
    cmd->add_option("--store", run.store, kStoreHelp);
    return cmd;
  };
  bool json = false;
  auto* resume_cmd = add_run_command("resume", "continue a crashed or suspended run from its last checkpoint");
  add_budgets(resume_cmd);

  auto* fork_cmd = add_run_command("fork", "a new run from a past checkpoint of RUN, optionally with variables changed; it runs at once");
  std::optional<uint64_t> fork_at;
  std::vector<std::string> fork_sets;
  fork_cmd->add_option("--at", fork_at, "the state right after effect N (default: its last checkpoint)")
      ->check(EffectNumberValue());
  fork_cmd->add_option("--run-id", run.run_id, "the id of the new run (default: a fresh sortable id)")->check(RunIdValue());
  fork_cmd->add_option("--set", fork_sets, "NAME=JSON: a variable of the top level (a local of its innermost frame "
                                           "that has it, else a global) set to that value")->take_all();
  add_budgets(fork_cmd);

  auto* runs_cmd = app.add_subcommand("runs", "list the runs of the store: id, status, effects, size on disk, program");
  runs_cmd->add_option("--status", status, "only runs in this status (queued, running, suspended, completed, failed, crashed, cancelled)");
  runs_cmd->add_flag("--json", json, "a JSON array of objects, for machines");
  runs_cmd->add_option("--store", run.store, kStoreHelp);

  auto* inspect_cmd =
      add_run_command("inspect", "frames, locals, pc and source line at the last checkpoint; every task and what it waits for");
  std::optional<uint64_t> at_effect;
  inspect_cmd->add_option("--at", at_effect, "the state right after effect N instead (N from flow history; 0: before the first)")
      ->check(EffectNumberValue());

  auto* history_cmd = add_run_command("history", "the audit trail: each effect, its arguments, result, time");
  history_cmd->add_flag("--json", json, "a JSON array of objects, for machines");

  bool follow = false;
  auto* logs_cmd = add_run_command("logs", "the run's log lines (log.info, log.warn, log.error): time, level, task, message, fields");
  logs_cmd->add_flag("--json", json, "one JSON object a line: time, time_ms, level, msg, fields, seq, task");
  logs_cmd->add_flag("-f,--follow", follow, "keep printing new lines until the run stops running");

  std::string trace_format = "chrome";
  auto* trace_cmd = add_run_command("trace", "the run as a trace: Chrome's JSON (chrome://tracing, Perfetto), a track per task; or "
                                             "OTLP/JSON. (FLOW_OTLP_ENDPOINT=http://host:4318 makes run, resume and worker "
                                             "send spans live to an OTLP/HTTP collector)");
  trace_cmd->add_option("--format", trace_format, "chrome (default) or otlp (an OpenTelemetry ExportTraceServiceRequest)")
      ->check(CLI::IsMember({"chrome", "otlp"}));

  std::string image_out;
  auto* export_cmd = add_run_command("export", "write a run as a portable image (flow export RUN > run.fvm)");
  export_cmd->add_option("-o,--output", image_out, "write the image to this file (a regular file) instead of stdout");

  std::string image_file;
  auto* import_cmd = app.add_subcommand("import", "add the run of an image to the store; prints its id");
  import_cmd->add_option("FILE", image_file, "a run image written by flow export")->required();
  import_cmd->add_option("--store", run.store, kNewStoreHelp);

  std::string signal_name, signal_json;
  auto* signal_cmd = add_run_command("signal", "send a signal (and a JSON value) to a run: delivered if it waits for it, else queued in its mailbox");
  signal_cmd->add_option("NAME", signal_name, "the signal name, as in signal.wait(NAME)")->required();
  signal_cmd->add_option("JSON", signal_json,
                         "the value signal.wait returns (default null); - reads it from stdin, @FILE from FILE");

  auto* cancel_cmd = add_run_command("cancel", "cancel a run: it raises `cancelled` where it is (or waits), its handlers run, it ends cancelled");

  std::string code_file, new_run_id;
  auto* rerun_cmd = add_run_command(
      "rerun", "a new run of RUN's program (or of --code FILE) with its arguments: every step RUN completed returns its value without running");
  rerun_cmd->add_option("--code", code_file, "run this program (compiled fresh) instead of RUN's stored code: the fix goes live");
  rerun_cmd->add_option("--run-id", new_run_id, "the id of the new run (default: a fresh sortable id)")->check(RunIdValue());

  auto* delete_cmd = add_run_command("delete", "remove a run that is not live from the store (its record, database, mailbox)");

  std::string older_than;
  std::vector<std::string> gc_statuses;
  bool dry_run = false;
  auto* gc_cmd = app.add_subcommand("gc", "remove runs not live, not updated for D, and code no run uses; prints what and the bytes freed");
  gc_cmd->add_option("--older-than", older_than, "only runs not updated for this long (7d, 12h, 30m)")->required()->check(DurationValue());
  gc_cmd->add_option("--status", gc_statuses, "only runs in this status; repeatable (default: completed, failed, cancelled)")->take_all();
  gc_cmd->add_flag("--dry-run", dry_run, "say what would be removed; remove nothing");
  gc_cmd->add_option("--store", run.store, kStoreHelp);

  WorkerCommandOptions worker;
  auto* worker_cmd = app.add_subcommand(
      "worker", "execute runs whose timers are due, whose signals came, whose process died, queued runs within their "
                "queues' caps, due schedules; each run in a child process "
                "(docs/operating.md, \"Workers\"); SIGTERM drains: running runs stop at their next checkpoint");
  worker_cmd->add_option("--concurrency", worker.concurrency, "runs executing at once (default 4)")->check(CLI::Range(1, 4096));
  worker_cmd->add_flag("--once", worker.once, "start the runs due now, wait for them, exit (1 if a run's process crashed)");
  worker_cmd->add_flag("--json", worker.json, "one JSON object per change on stdout (runs' output goes to stderr)");
  worker_cmd->add_option("--max-crashes", worker.max_crashes, "crashes in a row before a run is set aside as poisoned (default 3)")
      ->check(CLI::Range(1, 1000));
  worker_cmd->add_option("--store", run.store, kNewStoreHelp);

  Dispatch queue_commands = AddQueueCommands(app, run, add_budgets);  // submit, queue
  Dispatch schedule_commands = AddScheduleCommands(app, run);
  Dispatch store_commands = AddStoreCommands(app, run);

  flow::ui::UiOptions ui;
  auto* ui_cmd = app.add_subcommand("ui", "serve a web dashboard of the store's runs (docs/ui.md)");
  ui_cmd->add_option("--port", ui.port, "the port (default 8090; 0: any free port, printed)");
  ui_cmd->add_option("--bind", ui.bind, "the address to listen on (default 127.0.0.1; any other needs a token)");
  ui_cmd->add_option("--token", ui.token, "the token every request must carry (default FLOW_UI_TOKEN)");
  ui_cmd->add_option("--store", run.store, kStoreHelp);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);  // --help and --version too: their text must reach stdout
    return OutputWritten(code == 0 ? kExitOk : kExitUsage);
  }
  auto dispatch = [&]() -> int {
    if (run_cmd->parsed()) return RunCommand(run);
    if (std::optional<int> code = queue_commands()) return *code;
    if (std::optional<int> code = schedule_commands()) return *code;
    if (std::optional<int> code = store_commands()) return *code;
    if (compile_cmd->parsed()) return CompileCommand(file, out);
    if (check_cmd->parsed()) return CheckCommand(file, check_json);
    if (lsp_cmd->parsed()) return LspCommand();
    if (test_cmd->parsed()) return TestCommand(test_files, test_instructions);
    if (disasm_cmd->parsed()) return DisasmCommand(file);
    if (resume_cmd->parsed()) return ResumeCommand(run.store, run_id, run);
    if (runs_cmd->parsed()) return RunsCommand(run.store, status, json);
    if (fork_cmd->parsed()) return ForkCommand(run.store, run_id, fork_at, fork_sets, run);
    if (inspect_cmd->parsed()) return InspectCommand(run.store, run_id, at_effect);
    if (history_cmd->parsed()) return HistoryCommand(run.store, run_id, json);
    if (signal_cmd->parsed()) return SignalCommand(run.store, run_id, signal_name, signal_json);
    if (cancel_cmd->parsed()) return CancelCommand(run.store, run_id);
    if (worker_cmd->parsed()) {
      worker.store = run.store;
      return WorkerCommand(worker);
    }
    if (trace_cmd->parsed()) return TraceCommand(run.store, run_id, trace_format);
    if (logs_cmd->parsed()) return LogsCommand(run.store, run_id, json, follow);
    if (rerun_cmd->parsed()) return RerunCommand(run.store, run_id, code_file, new_run_id);
    if (delete_cmd->parsed()) return DeleteCommand(run.store, run_id);
    if (gc_cmd->parsed()) return GcCommand(run.store, older_than, gc_statuses, dry_run);
    if (export_cmd->parsed()) return ExportCommand(run.store, run_id, image_out);
    if (import_cmd->parsed()) return ImportCommand(run.store, image_file);
    if (ui_cmd->parsed()) {
      ui.store = run.store;
      return flow::ui::UiCommand(ui);
    }
    return kExitUsage;
  };
  int code = OutputWritten(dispatch());
  // Every command has closed its store and the output is flushed: end here, without
  // running the destructors of the parser's static tables and of the command line.
#ifdef FLOW_SANITIZED
  return code;  // LeakSanitizer checks at a normal exit
#else
  std::_Exit(code);
#endif
}
