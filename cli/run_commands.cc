// The commands on durable runs: run, resume, runs, inspect, history.
#include <fmt/compile.h>
#include <fmt/format.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/source_lines.h"
#include "cli/stop_signal.h"
#include "runtime/program_file.h"
#include "runtime/image.h"
#include "runtime/error_record.h"
#include "runtime/live.h"
#include "store/pg/connection.h"
#include "runtime/rerun.h"
#include "runtime/run_view.h"
#include "runtime/runtime.h"
#include "runtime/trace.h"
#include "stdlib/stdlib.h"
#include "store/keys.h"
#include "store/store.h"
#include "vm/value_ops.h"

namespace flow::cli {

namespace {


std::string FormatTime(int64_t ms) {
  if (ms <= 0) return "-";
  std::time_t t = ms / 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  // Compiled formats here and in `flow runs`' lines: a listing of 100,000 runs formats each.
  return fmt::format(FMT_COMPILE("{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z"), tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
}

// Opens an existing store for a read-only command.
Result<store::Store> OpenStore(const std::string& dir) { return store::Store::Open(dir, false); }

using runtime::EffectiveStatus;

int64_t WallMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}


// A durable run executed (or not) by run, resume, cancel or the worker: its messages on
// stderr, and the exit code.
int ReportRun(const Status& s, const runtime::RunResult& r) {
  if (r.error) fmt::print(stderr, "{}", FormatErrorWithSource(*r.error, r.source, r.source_file, r.imports));
  if (r.executed && r.outcome == RunOutcome::kOutOfMemory)
    fmt::print(stderr, "{} (resume it with flow resume {} --max-memory SIZE)\n", r.record.detail, r.run_id);
  if (!s.ok()) {
    if (!r.output_failed) return Fail(s, "");
    fmt::print(stderr, "flow: run {} stopped: {}; that print is not recorded as done (flow resume {} prints it again)\n",
               r.run_id, s.message(), r.run_id);
    return kExitOutputFailed;
  }
  const store::RunRecord& record = r.record;
  if (record.status == store::RunStatus::kSuspended) {
    fmt::print(stderr, "flow: run {} suspended ({}{}); continue it with flow resume {} or flow worker\n", record.id,
               record.detail,
               record.wake_ms ? fmt::format(", due in {} ms", std::max<int64_t>(0, record.wake_ms - WallMs())) : "",
               record.id);
    return kExitSuspended;
  }
  fmt::print(stderr, "flow: run {} {}\n", record.id, store::RunStatusName(record.status));
  return r.outcome == RunOutcome::kCompleted ? kExitOk : kExitScriptFailed;
}

// flow resume (and each resume of the worker): a run that cannot go on is refused.
int ReportResume(const Status& s, const runtime::RunResult& r) {
  if (s.ok() && r.deferred != runtime::RunResult::Deferred::kNo) return ReportDeferred(r);
  if (!s.ok() || !r.refused) return ReportRun(s, r);
  if (r.record.status == store::RunStatus::kCancelled)
    fmt::print(stderr, "flow: run {} was cancelled; it is never resumed\n", r.run_id);
  else if (r.record.status == store::RunStatus::kFailed)
    fmt::print(stderr, "flow: run {} has failed ({}); a failed run is not resumed: flow rerun {} [--code FILE] "
               "runs it again, its completed steps reused (docs/operating.md)\n", r.run_id, r.record.detail, r.run_id);
  else
    fmt::print(stderr, "flow: run {} has already {}; there is nothing to resume\n", r.run_id,
               store::RunStatusName(r.record.status));
  return kExitUsage;
}

// --ephemeral: no run id, no record; the output's failure is the only error.
int ReportEphemeral(const Status& s, const runtime::RunResult& r) {
  if (r.error) fmt::print(stderr, "{}", FormatErrorWithSource(*r.error, r.source, r.source_file, r.imports));
  if (!s.ok()) {
    fmt::print(stderr, "flow: {}\n", s.message());
    return kExitOutputFailed;
  }
  if (r.outcome == RunOutcome::kOutOfMemory) {
    fmt::print(stderr, "error: budget: the process ran out of memory\n");
    return kExitScriptFailed;
  }
  return r.outcome == RunOutcome::kFailed ? kExitScriptFailed : kExitOk;
}

// The program's output goes to stdout, written out at once; what the runtime reports as
// it works goes to stderr.
class ProcessListener : public runtime::RunListener {
 public:
  Status WriteOutput(std::string_view text) override {
    if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
      return Status::IOError(fmt::format("cannot write the program's output: {}", std::strerror(errno)));
    return Status::Ok();
  }
  void WriteLog(std::string_view line) override { std::fwrite(line.data(), 1, line.size(), stderr); }
  void Warning(std::string_view message) override { fmt::print(stderr, "flow: warning: {}\n", message); }
  void RunStarted(const std::string& id) override { fmt::print(stderr, "flow: run {}\n", id); }
  void RunResuming(const std::string& id, uint64_t checkpoint, const runtime::HistoryEntry& in_flight,
                   bool in_doubt) override {
    std::string note;
    if (in_flight.seq != 0 && in_doubt)
      note = fmt::format(" (effect {} `{}` was in flight inside a `once` step: the step raises in_doubt)", in_flight.seq,
                         in_flight.effect);
    else if (in_flight.seq != 0)
      note = fmt::format(" (effect {} `{}` was in flight: it runs again with idempotency key {})", in_flight.seq,
                         in_flight.effect, in_flight.idempotency_key);
    fmt::print(stderr, "flow: resuming run {} from checkpoint {}{}\n", id, checkpoint, note);
  }
  void RunForked(const std::string& from, uint64_t effects, const std::string& id) override {
    fmt::print(stderr, "flow: run {} made from run {} as it was after effect {}\n", id, from, effects);
  }
  void ProgramFileMoved(const store::RunRecord& r, runtime::ProgramFileState state, const std::string& file) override {
    PrintProgramFileMoved(r, state, file);
  }
  void RunCancelling(const std::string& id) override {
    fmt::print(stderr, "flow: cancelling run {}: it raises `cancelled` where it stopped, and its handlers run\n", id);
  }
  bool StopRequested() override { return StopAsked(); }
};

}  // namespace

namespace {

// The budgets of the command line, with --deadline and --max-memory parsed (CLI11 has
// checked them already).
bool ReadBudgets(const RunOptions& options, const char* command, runtime::BudgetOptions* out) {
  *out = options.budgets;
  std::string error;
  if (!options.max_memory.empty() && !ParseSize(options.max_memory, &out->max_memory, &error)) {
    fmt::print(stderr, "flow {}: --max-memory {}\n", command, error);
    return false;
  }
  if (options.deadline.empty() || ParseDuration(options.deadline, &out->deadline_ms, &error)) return true;
  fmt::print(stderr, "flow {}: --deadline {}\n", command, error);
  return false;
}

}  // namespace

// A store about to be created: its folder and any missing parents are made here (as
// mkdir -p), so a store path in a new place is never mistaken for a damaged store.
bool MakeStoreFolder(const std::string& dir) {
  if (store::pg::IsPostgresAddress(dir)) return true;  // a database: Store::Open makes its schema
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) return true;  // Store::Open checks what it is
  std::filesystem::create_directories(dir, ec);
  if (!ec) return true;
  fmt::print(stderr, "flow: cannot create the store folder {}: {}\n", dir, ec.message());
  return false;
}

int PrepareStart(const RunOptions& options, const char* command, runtime::StartOptions* out, Module* module) {
  runtime::StartOptions& start = *out;
  start.file = options.file;
  for (const std::string& kv : options.args) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      fmt::print(stderr, "flow {}: --arg takes NAME=VALUE, got `{}`\n", command, kv);
      return kExitUsage;
    }
    start.args.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  start.store_dir = options.store;
  start.run_id = options.run_id;
  start.sync = options.durability != "async";
  start.virtual_time = options.virtual_time;
  start.ephemeral = options.ephemeral;
  start.detach = options.detach;
  std::string keep_error;
  if (!options.keep_checkpoints.empty() &&
      !ParseKeepCheckpoints(options.keep_checkpoints, &start.keep_checkpoints, &keep_error)) {
    fmt::print(stderr, "flow {}: {}\n", command, keep_error);
    return kExitUsage;
  }
  if (!ReadBudgets(options, command, &start.budgets)) return kExitUsage;
  if (!options.ephemeral && !MakeStoreFolder(options.store)) return kExitUsage;
  // Compile (or load) first: a program with errors creates no run.
  std::string cache_dir = options.no_cache ? "" : options.cache_dir;
  runtime::ProgramCache cache(cache_dir, cache_dir.empty() ? "" : runtime::CompilerIdentity());
  return LoadProgramOrSay(options.file, module, &cache, &start.source);
}

int RunCommand(const RunOptions& options) {
  runtime::StartOptions start;
  Module module;
  if (int code = PrepareStart(options, "run", &start, &module); code != kExitOk) return code;
  if (!options.ephemeral) StopOnSigterm();
  ProcessListener listener;
  runtime::RunResult result;
  Status s = runtime::StartRun(start, module, &listener, &result);
  return options.ephemeral ? ReportEphemeral(s, result) : ReportRun(s, result);
}

std::unique_ptr<runtime::RunListener> NewProcessListener() { return std::make_unique<ProcessListener>(); }

int ReportRunResult(const Status& s, const runtime::RunResult& r) { return ReportRun(s, r); }

int ResumeCommand(const std::string& store, const std::string& run_id, const RunOptions& options) {
  runtime::BudgetOptions budgets;
  if (!ReadBudgets(options, "resume", &budgets)) return kExitUsage;
  StopOnSigterm();
  ProcessListener listener;
  runtime::RunResult result;
  Status s = runtime::ResumeRun(store, run_id, budgets, &listener, &result);
  return ReportResume(s, result);
}

int ForkCommand(const std::string& store, const std::string& run_id, std::optional<uint64_t> at_effect,
                const std::vector<std::string>& sets, const RunOptions& options) {
  runtime::ForkOptions fork;
  fork.store_dir = store;
  fork.from = run_id;
  fork.at_effect = at_effect;
  fork.run_id = options.run_id;
  for (const std::string& kv : sets) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      fmt::print(stderr, "flow fork: --set takes NAME=JSON, got `{}`\n", kv);
      return kExitUsage;
    }
    fork.sets.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  if (!ReadBudgets(options, "fork", &fork.budgets)) return kExitUsage;
  ProcessListener listener;
  runtime::RunResult result;
  Status s = runtime::ForkRun(fork, &listener, &result);
  if (!s.ok() && result.record.id.empty()) return Fail(s, "fork");
  return ReportResume(s, result);
}

int RunsCommand(const std::string& store_dir, const std::string& status_filter, bool json) {
  store::RunStatus wanted{};
  if (!status_filter.empty() && !store::ParseRunStatus(status_filter, &wanted)) {
    fmt::print(stderr, "flow runs: unknown status `{}` (queued, running, suspended, completed, failed, crashed, cancelled, poisoned)\n", status_filter);
    return kExitUsage;
  }
  Result<store::Store> st = OpenStore(store_dir);
  if (!st.ok()) {
    if (st.status().IsNotFound()) {  // no store yet: no runs
      fmt::print("{}", json ? "[]\n" : "");
      return kExitOk;
    }
    return Fail(st.status(), "");
  }
  int code = kExitOk;
  Status index_status;
  nlohmann::json out = nlohmann::json::array();
  if (!json) fmt::print("{:<30} {:<10} {:>7} {:>8} {:<21} {}\n", "ID", "STATUS", "EFFECTS", "SIZE", "UPDATED", "PROGRAM");
  std::vector<std::string> without_row;
  // One run at a time, printed as it comes: 100,000 records are never all in memory.
  auto print_run = [&](const store::ListedRun& entry) {
    const store::RunRecord& r = entry.record;
    if (entry.packed_without_row) without_row.push_back(r.id);
    int64_t pid;
    store::RunStatus status = EffectiveStatus(*st, entry, &pid);
    if (!status_filter.empty() && status != wanted) return;
    const uint64_t disk_bytes = entry.indexed ? entry.disk_bytes : st->RunDiskBytes(r.id);
    uint64_t effects = r.effects;  // a live run says how far it is (its record says where it started)
    if (runtime::LiveProgress live;
        status == store::RunStatus::kRunning && runtime::ReadRunProgress(*st, r.id, pid, &live).ok())
      effects = live.effects;
    if (json) {
      out.push_back({{"id", r.id},
                     {"program", r.program},
                     {"status", store::RunStatusName(status)},
                     {"effects", effects},
                     {"created_ms", r.created_ms},
                     {"updated_ms", r.updated_ms},
                     {"pid", pid ? pid : r.pid},
                     {"size_bytes", disk_bytes},
                     {"code_hash", r.code_hash},
                     {"detail", r.detail}});
      if (!r.queue.empty()) out.back()["queue"] = r.queue;
      runtime::OriginRecord o;
      if (entry.indexed ? !entry.origin.empty() && runtime::DecodeOriginRecord(entry.origin, r.id, &o).ok()
                        : runtime::ReadOriginRecord(*st, r.id, &o).ok()) {
        out.back()["origin"] = {{"kind", o.kind}, {"run", o.origin_run}};
        if (o.kind == "fork") out.back()["origin"]["effect"] = o.origin_effect;
      }
    } else {
      fmt::print(FMT_COMPILE("{:<30} {:<10} {:>7} {:>8} {:<21} {}\n"), Printable(r.id), store::RunStatusName(status),
                 effects, HumanBytes(disk_bytes), FormatTime(r.updated_ms), Printable(r.program));
    }
  };
  st->ForEachRun(
      print_run,
      [&](const std::string& id, const Status& s) {
        fmt::print(stderr, "flow: run {}: {}\n", Printable(id), Printable(s.message()));
        code = kExitCorrupt;
      },
      &index_status);
  if (!index_status.ok())
    fmt::print(stderr, "flow: warning: {}; runs were read from their folders\n", Printable(index_status.message()));
  if (json) fmt::print("{}\n", out.dump(2));
  // Packed runs read from their folders (a store from before the index, rows lost) get a
  // row, so that the next listing reads them from the index; a failure only costs that.
  if (!without_row.empty()) (void)st->IndexPackedRuns(without_row);
  return code;
}

int InspectCommand(const std::string& store_dir, const std::string& run_id, std::optional<uint64_t> at_effect) {
  Result<store::Store> st = OpenStore(store_dir);
  if (!st.ok()) return Fail(st.status(), "");
  if (!store::IsValidRunId(run_id)) {
    fmt::print(stderr, "flow: `{}` is not a run id\n", run_id);
    return kExitUsage;
  }
  if (!st->RunExists(run_id)) return Fail(st->ReadRun(run_id).status(), "");
  runtime::LoadedRun run;
  // --at: the kept checkpoint right after effect N (docs/checkpoint.md, "Kept checkpoints").
  if (Status s = runtime::OpenRunForReading(*st, run_id, &run, at_effect); !s.ok()) {
    if (at_effect && s.IsNotFound())
      return Fail(Status::InvalidArgument(fmt::format("no effect {}: {}", *at_effect, s.message())), "run " + run_id);
    return Fail(s, "run " + run_id);
  }
  if (at_effect && run.vm->effects_done() != *at_effect)
    fmt::print(stderr, "flow: the checkpoints after effect {} are no longer kept; showing the next one kept\n", *at_effect);
  int64_t pid;
  fmt::print("run {}\n  program {}\n  status {}\n  checkpoint {} at {}, after {} effects{}\n", run_id,
             Printable(run.record.program), store::RunStatusName(EffectiveStatus(*st, run.record, &pid)), run.checkpoint,
             FormatTime(run.checkpoint_ms), run.vm->effects_done(), at_effect ? " (a past state)" : "");
  fmt::print("  code {} ({})\n", run.record.code_hash, run.source ? "its source stored with it" : "no source stored");
  if (runtime::OriginRecord o; runtime::ReadOriginRecord(*st, run_id, &o).ok())
    fmt::print("  {}\n", o.kind == "fork" ? fmt::format("fork of run {} after its effect {}", Printable(o.origin_run), o.origin_effect)
                                          : fmt::format("{} of run {} ({} completed step(s) reused)", o.kind,
                                                        Printable(o.origin_run), o.reused.size()));
  // Set aside by a worker: how its process died, and the end of its stderr.
  if (std::string why; !at_effect && st->IsPoisoned(run_id, &why))
    fmt::print("  poisoned by a worker (flow resume {} tries it again): {}\n", run_id,
               Printable(why.substr(0, why.find('\n'))));
  if (std::string why; !at_effect && st->IsPoisoned(run_id, &why) && why.find('\n') != std::string::npos) {
    fmt::print("  its last stderr:\n");
    std::string_view rest = std::string_view(why).substr(why.find('\n') + 1);
    for (size_t nl; !rest.empty(); rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1)) {
      nl = rest.find('\n');
      fmt::print("    {}\n", Printable(rest.substr(0, nl)));
    }
  }
  // A run that ended by an uncaught error: the error, where it was raised (its last
  // checkpoint, below, is after its last effect, before the error).
  if (std::string raw; !at_effect && run.db->Get(store::kErrorKey, &raw).ok()) {
    ErrorReport error;
    if (runtime::DecodeErrorRecord(raw, &error).ok())
      fmt::print("ended by this error (the state below is the last checkpoint, after effect {}, before it):\n{}",
                 run.vm->effects_done(), Printable(FormatErrorReport(error)));
  }
  auto show = [&](Value v) {
    std::string text, error;
    if (!EncodeJson(run.vm->heap(), v, true, &text, &error)) text = "<" + error + ">";
    return Printable(text.size() > 120 ? text.substr(0, 117) + "..." : text);
  };
  fmt::print("frames (innermost first):\n");
  for (const auto& f : run.vm->InspectFrames()) {
    fmt::print("  {} at pc {} ({}:{})\n", Printable(f.function), f.pc, Printable(f.file), f.line);
    if (f.file == run.module->source_name)
      fmt::print("{}", run.source ? QuoteSourceLine(run.source, f.line, "  ") : fmt::format("        {}\n", kNoStoredSource));
    for (const auto& [name, value] : f.locals) fmt::print("    {} = {}\n", Printable(name), show(value));
  }
  fmt::print("globals:\n");
  for (const auto& [name, value] : run.vm->InspectGlobals()) fmt::print("  {} = {}\n", Printable(name), show(value));
  std::vector<VM::TaskView> tasks = run.vm->InspectTasks();
  auto describe = [](const VM::TaskView& t) {
    std::string what = t.waits_for.empty() ? "" : " on " + Printable(t.waits_for);
    if (t.state == "failed") what = ", not awaited: " + Printable(t.waits_for);
    if (t.wake_ms) what += " until " + FormatTime(t.wake_ms);
    return t.state + what;
  };
  if (!tasks.empty() && tasks[0].path.empty()) {  // the top level's frames are above
    if (tasks.size() > 1) fmt::print("top level: {}\n", describe(tasks[0]));
    tasks.erase(tasks.begin());
  }
  if (!tasks.empty()) fmt::print("tasks (by spawn position; frames innermost first):\n");
  for (const auto& t : tasks) {
    fmt::print("  task {}: {}\n", Printable(t.path), describe(t));
    for (const auto& f : t.frames) {
      fmt::print("    {} at pc {} ({}:{})\n", Printable(f.function), f.pc, Printable(f.file), f.line);
      if (f.file == run.module->source_name) fmt::print("{}", QuoteSourceLine(run.source, f.line, "    "));
      for (const auto& [name, value] : f.locals) fmt::print("      {} = {}\n", Printable(name), show(value));
    }
  }
  return kExitOk;
}

// A run's history: its effects, with its step events among them. Not ok (the message
// names what failed) if it cannot be read; prints nothing.
Status ReadHistory(const std::string& store_dir, const std::string& run_id, std::vector<runtime::HistoryEntry>* out) {
  Result<store::Store> st = OpenStore(store_dir);
  if (!st.ok()) return st.status();
  if (!store::IsValidRunId(run_id)) return Status::InvalidArgument(fmt::format("`{}` is not a run id", run_id));
  Result<store::RunRecord> record = st->ReadRun(run_id);
  if (!record.ok()) return record.status();
  runtime::LoadedRun run;  // checked as for resume: a rolled-back database is refused
  auto in_run = [&](const Status& s) {  // the same kind of failure, named for the run
    std::string m = "run " + run_id + ": " + s.message();
    return s.IsCorruption() ? Status::Corruption(m) : s.code() == Status::Code::kIOError ? Status::IOError(m)
           : s.code() == Status::Code::kNotSupported ? Status::NotSupported(m) : Status::InvalidArgument(m);
  };
  if (Status s = runtime::OpenRunForReading(*st, run_id, &run); !s.ok()) return in_run(s);
  Status s = runtime::ReadHistoryEntries(*run.db, out);
  return s.ok() ? s : in_run(s);
}

int LoadHistory(const std::string& store_dir, const std::string& run_id, std::vector<runtime::HistoryEntry>* out) {
  Status s = ReadHistory(store_dir, run_id, out);
  return s.ok() ? kExitOk : Fail(s, "");
}

namespace {

// The head of an effect's arguments or result, for a table row.
std::string Preview(const std::string& json) {
  return json.size() <= 200 ? json : json.substr(0, 197) + "...";
}

}  // namespace

int HistoryCommand(const std::string& store_dir, const std::string& run_id, bool json) {
  std::vector<runtime::HistoryEntry> entries;
  if (int code = LoadHistory(store_dir, run_id, &entries); code != kExitOk) return code;
  static const char* kStates[] = {"?", "in-flight", "done", "raised", "in_doubt"};
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : entries)
      out.push_back({{"seq", e.seq},
                     {"effect", e.effect},
                     {"state", kStates[static_cast<int>(e.state)]},
                     {"idempotency_key", e.idempotency_key},
                     {"task", e.task},
                     {"args_digest", fmt::format("{:016x}", e.args_digest)},
                     {"result_digest", fmt::format("{:016x}", e.result_digest)},
                     {"started_ms", e.started_ms},
                     {"started_us", e.started_us},
                     {"duration_us", e.duration_us},
                     {"args", e.args_preview},
                     {"result", e.result_preview}});
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }
  fmt::print("{:>5}  {:<6} {:<12} {:<9} {:<21} {:>10}  {:<16} {:<16} {}\n", "SEQ", "TASK", "EFFECT", "STATE", "STARTED",
             "DURATION", "ARGS DIGEST", "RESULT DIGEST", "ARGS -> RESULT");
  for (const auto& e : entries) {
    fmt::print("{:>5}  {:<6} {:<12} {:<9} {:<21} {:>8}us  {:016x} {:016x} {} -> {}\n", e.seq,
               e.task.empty() ? "-" : Printable(e.task), Printable(e.effect),
               kStates[static_cast<int>(e.state)], FormatTime(e.started_ms), e.duration_us, e.args_digest,
               e.result_digest, Printable(Preview(e.args_preview)), Printable(Preview(e.result_preview)));
  }
  if (Result<store::Store> st = OpenStore(store_dir); st.ok()) {
    if (runtime::OriginRecord o; runtime::ReadOriginRecord(*st, run_id, &o).ok() && o.kind == "fork")
      fmt::print("(run {} was made from run {} after its effect {} by flow fork: effects 1-{} are that run's)\n", run_id,
                 Printable(o.origin_run), o.origin_effect, o.origin_effect);
  }
  fmt::print("(the state right after effect N: flow inspect {} --at N)\n", run_id);
  return kExitOk;
}

int ExportCommand(const std::string& store_dir, const std::string& run_id, const std::string& out) {
  Result<store::Store> st = OpenStore(store_dir);
  if (!st.ok()) return Fail(st.status(), "");
  if (!store::IsValidRunId(run_id)) {
    fmt::print(stderr, "flow: `{}` is not a run id\n", run_id);
    return kExitUsage;
  }
  if (out.empty() && isatty(STDOUT_FILENO)) {
    fmt::print(stderr, "flow export: the image is binary; redirect it to a file (flow export RUN > run.fvm) or use -o\n");
    return kExitUsage;
  }
  std::string image;
  if (Status s = runtime::ExportRun(*st, run_id, &image); !s.ok()) return Fail(s, "run " + run_id);
  if (out.empty()) {
    std::fwrite(image.data(), 1, image.size(), stdout);  // main reports a failed write
    return kExitOk;
  }
  return WriteOutputFile("export", out, image, "");
}

int ImportCommand(const std::string& store_dir, const std::string& file) {
  std::string image, error;
  if (!runtime::ReadFile(file, &image, &error)) {
    fmt::print(stderr, "flow: {}\n", error);
    return kExitUsage;
  }
  if (!MakeStoreFolder(store_dir)) return kExitUsage;
  Result<store::Store> st = store::Store::Open(store_dir, true);
  if (!st.ok()) return Fail(st.status(), "");
  Result<std::string> id = runtime::ImportRun(*st, image);
  if (!id.ok()) return Fail(id.status(), file);
  fmt::print(stderr, "flow: imported run {} (flow resume {})\n", *id, *id);
  fmt::print("{}\n", *id);
  return kExitOk;
}

namespace {

// What `flow signal` tells: delivered only to a run that waits for this signal; otherwise
// queued in the run's mailbox, and what the run waits for instead.
std::string DescribeSignalSent(const runtime::SignalSent& sent, const std::string& name) {
  const store::RunRecord& r = sent.record;
  if (r.status == store::RunStatus::kSuspended && r.waiting_signal == name) {
    if (sent.earlier > r.signals_received)
      return fmt::format("signal {} queued in the mailbox of run {} behind {} earlier {} signal(s) not yet received",
                         name, r.id, sent.earlier - r.signals_received, name);
    return fmt::format("signal {} delivered to run {}, which waits for it (flow worker or flow resume {} continues it)",
                       name, r.id, r.id);
  }
  std::string queued = fmt::format("signal {} queued in the mailbox of run {}, which ", name, r.id);
  std::string later = fmt::format("; a signal.wait(\"{}\") will take it", name);
  if (r.status == store::RunStatus::kSuspended && !r.waiting_signal.empty())
    return queued + fmt::format("waits for signal {}", r.waiting_signal) + later;
  if (r.status == store::RunStatus::kSuspended && r.virtual_time) return queued + "waits on a timer" + later;
  if (r.status == store::RunStatus::kSuspended)
    return queued + fmt::format("waits on a timer (due in {} s)", std::max<int64_t>(0, (r.wake_ms - WallMs() + 999) / 1000)) +
           later;
  if (r.status == store::RunStatus::kRunning && sent.live)
    return queued + fmt::format("is running (pid {}), not suspended in a wait", sent.live_pid) + later;
  return queued + fmt::format("is {} (flow resume {} continues it)", store::RunStatusName(
      r.status == store::RunStatus::kRunning ? store::RunStatus::kCrashed : r.status), r.id) + later;
}

}  // namespace

int SignalCommand(const std::string& store_dir, const std::string& run_id, const std::string& name,
                  const std::string& value) {
  // A value too big for one argument comes from stdin (-) or a file (@FILE), read up to a
  // cap: a signal is a message, not a data transfer, and /dev/zero must not eat the memory.
  constexpr size_t kMaxSignalBytes = 64 << 20;
  std::string json = value, error;
  if (value == "-" || (!value.empty() && value[0] == '@')) {
    const std::string path = value == "-" ? "/dev/stdin" : value.substr(1);
    if (!runtime::ReadFile(path, &json, &error, kMaxSignalBytes)) {
      fmt::print(stderr, "flow signal: {}\n", value == "-" ? "the value on stdin: " + error : error);
      return kExitUsage;
    }
  }
  // Refused here if signal.wait could not read it: a bad value must not fail the run.
  if (!value.empty() && !stdlib::CheckJson(json, &error)) {
    fmt::print(stderr, "flow signal: the value is not JSON that signal.wait can read: {}\n", error);
    return kExitUsage;
  }
  if (name.empty()) {
    fmt::print(stderr, "flow signal: the signal needs a name\n");
    return kExitUsage;
  }
  runtime::SignalSent sent;
  if (Status s = runtime::SignalRun(store_dir, run_id, name, json, &sent); !s.ok()) return Fail(s, "");
  if (sent.refused) {
    fmt::print(stderr, "flow: run {} has {}; it receives no more signals\n", run_id,
               store::RunStatusName(sent.record.status));
    return kExitUsage;
  }
  fmt::print(stderr, "flow: {}\n", DescribeSignalSent(sent, name));
  return kExitOk;
}

int CancelCommand(const std::string& store_dir, const std::string& run_id) {
  ProcessListener listener;
  runtime::RunResult result;
  Status s = runtime::CancelRun(store_dir, run_id, &listener, &result);
  if (s.ok() && result.refused) {
    fmt::print(stderr, "flow: run {} has {}; there is nothing to cancel\n", run_id,
               store::RunStatusName(result.record.status));
    return kExitUsage;
  }
  if (s.ok() && result.cancel_pending) {
    fmt::print(stderr, "flow: run {} is live; it raises `cancelled` at its next effect or wait\n", run_id);
    return kExitOk;
  }
  int code = ReportRun(s, result);
  // Its handlers suspended it (75), failed it (1), or the store is damaged (3).
  return s.ok() && result.executed && result.record.status == store::RunStatus::kCancelled ? kExitOk : code;
}


}  // namespace flow::cli
