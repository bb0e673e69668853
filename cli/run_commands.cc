// The commands on durable runs: run, resume, runs, inspect, history.
#include <fmt/format.h>

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "runtime/program_file.h"
#include "runtime/image.h"
#include "runtime/runtime.h"
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
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
}

// Opens an existing store for a read-only command.
Result<store::Store> OpenStore(const std::string& dir) { return store::Store::Open(dir, false); }

// A record says "running", but no process holds its lock: the process died.
store::RunStatus EffectiveStatus(const store::Store& st, const store::RunRecord& r, int64_t* live_pid) {
  *live_pid = 0;
  if (r.status != store::RunStatus::kRunning) return r.status;
  return st.IsRunLive(r.id, live_pid) ? store::RunStatus::kRunning : store::RunStatus::kCrashed;
}

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

// A store about to be created: its folder and any missing parents are made here (as
// mkdir -p), so a store path in a new place is never mistaken for a damaged store.
bool MakeStoreFolder(const std::string& dir) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) return true;  // Store::Open checks what it is
  std::filesystem::create_directories(dir, ec);
  if (!ec) return true;
  fmt::print(stderr, "flow: cannot create the store folder {}: {}\n", dir, ec.message());
  return false;
}

}  // namespace

int RunCommand(const RunOptions& options) {
  runtime::StartOptions start;
  start.file = options.file;
  for (const std::string& kv : options.args) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      fmt::print(stderr, "flow run: --arg takes NAME=VALUE, got `{}`\n", kv);
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
  if (!ReadBudgets(options, "run", &start.budgets)) return kExitUsage;
  if (!options.ephemeral && !MakeStoreFolder(options.store)) return kExitUsage;
  return runtime::StartRun(start);
}

int ResumeCommand(const std::string& store, const std::string& run_id, const RunOptions& options) {
  runtime::BudgetOptions budgets;
  if (!ReadBudgets(options, "resume", &budgets)) return kExitUsage;
  return runtime::ResumeRun(store, run_id, budgets);
}

int RunsCommand(const std::string& store_dir, const std::string& status_filter, bool json) {
  store::RunStatus wanted{};
  if (!status_filter.empty() && !store::ParseRunStatus(status_filter, &wanted)) {
    fmt::print(stderr, "flow runs: unknown status `{}` (running, suspended, completed, failed, crashed)\n", status_filter);
    return kExitUsage;
  }
  Result<store::Store> st = OpenStore(store_dir);
  if (!st.ok()) {
    if (st.status().IsNotFound()) {  // no store yet: no runs
      fmt::print("{}", json ? "[]\n" : "");
      return kExitOk;
    }
    return runtime::Fail(st.status(), "");
  }
  int code = kExitOk;
  std::vector<store::RunRecord> runs = st->ListRuns([&](const std::string& id, const Status& s) {
    fmt::print(stderr, "flow: run {}: {}\n", Printable(id), Printable(s.message()));
    code = kExitCorrupt;
  });
  nlohmann::json out = nlohmann::json::array();
  if (!json) fmt::print("{:<30} {:<10} {:>7} {:<21} {}\n", "ID", "STATUS", "EFFECTS", "UPDATED", "PROGRAM");
  for (const auto& r : runs) {
    int64_t pid;
    store::RunStatus status = EffectiveStatus(*st, r, &pid);
    if (!status_filter.empty() && status != wanted) continue;
    if (json) {
      out.push_back({{"id", r.id},
                     {"program", r.program},
                     {"status", store::RunStatusName(status)},
                     {"effects", r.effects},
                     {"created_ms", r.created_ms},
                     {"updated_ms", r.updated_ms},
                     {"pid", pid ? pid : r.pid},
                     {"detail", r.detail}});
    } else {
      fmt::print("{:<30} {:<10} {:>7} {:<21} {}\n", Printable(r.id), store::RunStatusName(status), r.effects,
                 FormatTime(r.updated_ms), Printable(r.program));
    }
  }
  if (json) fmt::print("{}\n", out.dump(2));
  return code;
}

int InspectCommand(const std::string& store_dir, const std::string& run_id) {
  Result<store::Store> st = OpenStore(store_dir);
  if (!st.ok()) return runtime::Fail(st.status(), "");
  if (!store::IsValidRunId(run_id)) {
    fmt::print(stderr, "flow: `{}` is not a run id\n", run_id);
    return kExitUsage;
  }
  Result<std::unique_ptr<store::RunLock>> lock = st->LockRun(run_id);
  if (!lock.ok()) {
    if (!st->RunExists(run_id)) return runtime::Fail(st->ReadRun(run_id).status(), "");
    return runtime::Fail(lock.status(), "inspect");
  }
  runtime::LoadedRun run;
  if (Status s = runtime::OpenRunToRead(*st, run_id, &run); !s.ok()) return runtime::Fail(s, "run " + run_id);
  int64_t pid;
  fmt::print("run {}\n  program {}\n  status {}\n  checkpoint {} at {}, after {} effects\n", run_id, Printable(run.record.program),
             store::RunStatusName(EffectiveStatus(*st, run.record, &pid)), run.checkpoint,
             FormatTime(run.checkpoint_ms), run.vm->effects_done());
  auto show = [&](Value v) {
    std::string text, error;
    if (!EncodeJson(run.vm->heap(), v, true, &text, &error)) text = "<" + error + ">";
    return Printable(text.size() > 120 ? text.substr(0, 117) + "..." : text);
  };
  fmt::print("frames (innermost first):\n");
  for (const auto& f : run.vm->InspectFrames()) {
    fmt::print("  {} at pc {} ({}:{})\n", Printable(f.function), f.pc, Printable(run.module->source_name), f.line);
    for (const auto& [name, value] : f.locals) fmt::print("    {} = {}\n", Printable(name), show(value));
  }
  fmt::print("globals:\n");
  for (const auto& [name, value] : run.vm->InspectGlobals()) fmt::print("  {} = {}\n", Printable(name), show(value));
  return kExitOk;
}

namespace {

// A run's history: its effects, with its step events among them. Exit code, or kExitOk.
int LoadHistory(const std::string& store_dir, const std::string& run_id, std::vector<runtime::HistoryEntry>* out) {
  Result<store::Store> st = OpenStore(store_dir);
  if (!st.ok()) return runtime::Fail(st.status(), "");
  if (!store::IsValidRunId(run_id)) {
    fmt::print(stderr, "flow: `{}` is not a run id\n", run_id);
    return kExitUsage;
  }
  Result<store::RunRecord> record = st->ReadRun(run_id);
  if (!record.ok()) return runtime::Fail(record.status(), "");
  Result<std::unique_ptr<store::RunLock>> lock = st->LockRun(run_id);
  if (!lock.ok()) return runtime::Fail(lock.status(), "history");
  runtime::LoadedRun run;  // checked as for resume: a rolled-back database is refused
  if (Status s = runtime::OpenRunToRead(*st, run_id, &run); !s.ok()) return runtime::Fail(s, "run " + run_id);
  auto scan = [&](const char* prefix, std::vector<runtime::HistoryEntry>* into) -> int {
    Status bad;
    Status s = run.db->Scan(prefix, [&](std::string_view, std::string_view value) {
      runtime::HistoryEntry e;
      bad = runtime::DecodeHistoryEntry(value, &e);
      if (!bad.ok()) return false;
      into->push_back(std::move(e));
      return true;
    });
    if (!bad.ok()) return runtime::Fail(Status::Corruption(bad.message()), "run " + run_id);
    if (!s.ok()) return runtime::Fail(s, "run " + run_id);
    return kExitOk;
  };
  std::vector<runtime::HistoryEntry> entries, steps;
  if (int code = scan(store::kHistoryPrefix, &entries); code != kExitOk) return code;
  if (int code = scan(store::kStepEventPrefix, &steps); code != kExitOk) return code;
  // Step events sit between the effects they happened after.
  size_t si = 0;
  for (auto& e : entries) {
    while (si < steps.size() && steps[si].seq < e.seq) out->push_back(std::move(steps[si++]));
    out->push_back(std::move(e));
  }
  while (si < steps.size()) out->push_back(std::move(steps[si++]));
  return kExitOk;
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
                     {"args_digest", fmt::format("{:016x}", e.args_digest)},
                     {"result_digest", fmt::format("{:016x}", e.result_digest)},
                     {"started_ms", e.started_ms},
                     {"duration_us", e.duration_us},
                     {"args", e.args_preview},
                     {"result", e.result_preview}});
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }
  fmt::print("{:>5}  {:<12} {:<9} {:<21} {:>10}  {:<16} {:<16} {}\n", "SEQ", "EFFECT", "STATE", "STARTED", "DURATION",
             "ARGS DIGEST", "RESULT DIGEST", "ARGS -> RESULT");
  for (const auto& e : entries) {
    fmt::print("{:>5}  {:<12} {:<9} {:<21} {:>8}us  {:016x} {:016x} {} -> {}\n", e.seq, Printable(e.effect),
               kStates[static_cast<int>(e.state)], FormatTime(e.started_ms), e.duration_us, e.args_digest,
               e.result_digest, Printable(e.args_preview), Printable(e.result_preview));
  }
  return kExitOk;
}

int ExportCommand(const std::string& store_dir, const std::string& run_id, const std::string& out) {
  Result<store::Store> st = OpenStore(store_dir);
  if (!st.ok()) return runtime::Fail(st.status(), "");
  if (!store::IsValidRunId(run_id)) {
    fmt::print(stderr, "flow: `{}` is not a run id\n", run_id);
    return kExitUsage;
  }
  if (out.empty() && isatty(STDOUT_FILENO)) {
    fmt::print(stderr, "flow export: the image is binary; redirect it to a file (flow export RUN > run.fvm) or use -o\n");
    return kExitUsage;
  }
  std::string image;
  if (Status s = runtime::ExportRun(*st, run_id, &image); !s.ok()) return runtime::Fail(s, "run " + run_id);
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
  if (!st.ok()) return runtime::Fail(st.status(), "");
  Result<std::string> id = runtime::ImportRun(*st, image);
  if (!id.ok()) return runtime::Fail(id.status(), file);
  fmt::print(stderr, "flow: imported run {} (flow resume {})\n", *id, *id);
  fmt::print("{}\n", *id);
  return kExitOk;
}

// Chrome trace JSON (chrome://tracing, Perfetto): one complete event per effect and per
// step, on the run's timeline.
int TraceCommand(const std::string& store_dir, const std::string& run_id) {
  std::vector<runtime::HistoryEntry> entries;
  if (int code = LoadHistory(store_dir, run_id, &entries); code != kExitOk) return code;
  nlohmann::json events = nlohmann::json::array();
  for (const auto& e : entries) {
    if (e.effect == "step") continue;  // its end carries the duration
    bool step = e.effect == "step done";
    events.push_back({{"name", step ? "step " + e.idempotency_key : e.effect},
                      {"cat", step ? "step" : "effect"},
                      {"ph", "X"},
                      {"ts", e.started_ms * 1000},
                      {"dur", std::max<int64_t>(e.duration_us, 1)},
                      {"pid", 1},
                      {"tid", step ? 1 : 2},
                      {"args", {{"seq", e.seq}, {"args", e.args_preview}, {"result", e.result_preview},
                                {"idempotency_key", e.idempotency_key}}}});
  }
  nlohmann::json trace = {{"traceEvents", events}, {"displayTimeUnit", "ms"}, {"otherData", {{"run", run_id}}}};
  fmt::print("{}\n", trace.dump());
  return kExitOk;
}

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
  return runtime::SignalRun(store_dir, run_id, name, json);
}

int WorkerCommand(const std::string& store_dir, bool once) {
  if (!MakeStoreFolder(store_dir)) return kExitUsage;
  return runtime::Worker(store_dir, once);
}

}  // namespace flow::cli
