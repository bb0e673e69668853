// Durability benchmarks (issue 3), printed as tables:
//  (a) one effectful step (a trivial effect plus its checkpoint), sync and async, against a
//      raw LevelDB WriteBatch of the same bytes measured in the same run;
//  (b) bytes written and time per checkpoint as the untouched heap grows, one variable
//      changed per step;
//  (c) durable steps per second for one run of 2,000 sequential effects;
//  (d) from opening a run to its first resumed effect, for 1 KB and 10 MB of state, when the
//      process died right after the checkpoint (the state still in LevelDB's log) and when
//      the run suspended (its state moved to a table): in this process, and as a whole
//      `flow resume` process (started until its first effect, where FLOW_CRASH_AT stops it);
//  (e) a run of 1,000,000 effects (async): per-step cost and resume time after 1k, 10k,
//      100k and 1M effects, which should stay flat.
// Usage: durable_bench [--quick] [--only d|e|f|g] [--flow PATH]
//  --flow: the flow binary for (d)'s whole-process column (default: ../flow beside this
//  binary); it needs the test hooks (flow --version says so), or the column says n/a.
#include <fmt/format.h>
#include <leveldb/db.h>
#include <leveldb/write_batch.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <vector>

#include "cli/process_heap.h"
#include "compiler/compiler.h"
#include "runtime/journal.h"
#include "runtime/runtime.h"
#include "stdlib/stdlib.h"
#include "store/keys.h"
#include "store/store.h"

namespace {

using namespace flow;
using Clock = std::chrono::steady_clock;

double Us(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

class BenchHost : public runtime::RunHost {
 public:
  void WriteOutput(std::string_view) override {}
  int64_t NowMs() override { return 1; }
  Status Flush() override { return Status::Ok(); }
  void set_key(const std::string&) override {}
  int64_t virtual_now_ms() const override { return 0; }
};

// Wraps the real journal to time each step and count what each checkpoint wrote.
class TimingJournal : public EffectJournal {
 public:
  explicit TimingJournal(runtime::StoreJournal* inner) : inner_(inner) {}
  Status BeforeEffect(VM& vm, uint64_t seq, uint16_t b, const Value* args, int argc) override {
    if (!first_effect_at) first_effect_at = Clock::now();
    began_at.push_back(Clock::now());
    if (seq == stop_before) return Status::IOError("stop");
    return inner_->BeforeEffect(vm, seq, b, args, argc);
  }
  Status AfterEffect(VM& vm, uint64_t seq, uint16_t b, Value outcome, bool raised) override {
    Status s = inner_->AfterEffect(vm, seq, b, outcome, raised);
    done_at.push_back(Clock::now());
    bytes.push_back(inner_->last_checkpoint_bytes());
    batches.push_back(inner_->last_batch());
    return s;
  }
  runtime::StoreJournal* inner_;
  uint64_t stop_before = 0;
  std::optional<Clock::time_point> first_effect_at;
  std::vector<Clock::time_point> began_at;  // each effect's start (the stopping one's too)
  std::vector<Clock::time_point> done_at;
  std::vector<size_t> bytes;
  std::vector<std::vector<std::pair<std::string, std::string>>> batches;
};

std::string TempDir() {
  char tmpl[] = "/tmp/flow-bench-XXXXXX";
  return mkdtemp(tmpl);
}

Module Compile(const std::string& source) {
  Module m;
  Diagnostics d;
  if (!CompileSource("bench.flow", source, &m, &d)) {
    fmt::print(stderr, "{}", d.Render("bench.flow", source));
    std::exit(1);
  }
  return m;
}

struct RunResult {
  std::vector<double> step_us;  // time between consecutive checkpoints
  std::vector<size_t> bytes;
  std::vector<std::vector<std::pair<std::string, std::string>>> batches;
  std::vector<std::vector<std::pair<size_t, size_t>>> shapes;
  std::string store_dir;
};

// Runs `source` durably in a fresh store (stopping before effect `stop_before`, if set).
// `settle`: after it stops, the run's log goes to a table, as when it suspends.
RunResult RunDurably(const std::string& source, bool sync, uint64_t stop_before = 0, const std::string& id = "bench",
                     bool settle = false, uint32_t keep = store::kKeepDefault) {
  Module m = Compile(source);
  RunResult r;
  r.store_dir = TempDir();
  auto st = store::Store::Open(r.store_dir, true);
  st->CreateRunDir(id);
  store::RunRecord rec;
  rec.id = id;
  rec.program = "bench.flow";
  rec.code_hash = *st->PutCode(SerializeModule(m));
  rec.durability = sync ? "sync" : "async";
  st->WriteRun(rec);
  auto db = store::RunDb::Open(flow::store::RunFilePath(st->dir(), id, flow::store::kDbDir), {.create = true});
  auto mark = st->OpenMark(id);
  BenchHost host;
  VM vm(&m, &host, stdlib::GetNatives());
  runtime::StoreJournal journal(db->get(), mark->get(), &host, id, sync, 0);
  journal.set_keep_last_batch(true);
  journal.set_keep(keep, 0);
  TimingJournal timing(&journal);
  timing.stop_before = stop_before;
  vm.SetJournal(&timing);
  vm.PrepareToRun();
  store::Batch first;
  journal.WriteCheckpoint(vm, true, &first);
  vm.Run();
  if (settle) journal.Settle();
  for (size_t i = 1; i < timing.done_at.size(); ++i) r.step_us.push_back(Us(timing.done_at[i] - timing.done_at[i - 1]));
  r.bytes = timing.bytes;
  r.batches = timing.batches;
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}
double Mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / v.size();
}

// Raw LevelDB writes of the very batches the checkpoints wrote (the same keys and bytes),
// into a fresh database: the median microseconds per write.
double RawWriteUs(const std::vector<std::vector<std::pair<std::string, std::string>>>& batches, bool sync) {
  std::string dir = TempDir();
  leveldb::DB* db;
  leveldb::Options o;
  o.create_if_missing = true;
  leveldb::DB::Open(o, dir + "/db", &db);
  leveldb::WriteOptions wo;
  wo.sync = sync;
  std::vector<double> times;
  for (const auto& puts : batches) {
    leveldb::WriteBatch b;
    for (const auto& [key, value] : puts) b.Put(key, value);
    auto t0 = Clock::now();
    db->Write(wo, &b);
    times.push_back(Us(Clock::now() - t0));
  }
  delete db;
  std::filesystem::remove_all(dir);
  return Median(times);
}

std::string Ballast(size_t bytes) {
  // Distinct 1 KiB strings held in a global list, never touched again.
  return fmt::format(R"(
let chunk = "x"
for i in range(10) {{ chunk = chunk + chunk }}
let ballast = []
for i in range({}) {{ ballast.push(chunk + str(i)) }}
)",
                     std::max<size_t>(1, bytes / 1024));
}

struct Resumed {
  double resume_ms = 0;        // opening the run to its first resumed effect
  double last_ms = 0;          // opening the run to the start of the effect it stopped before
  std::vector<double> step_us;  // between consecutive checkpoints after that
};

// Resumes run `id` of the store, runs it until before effect `stop_before`, and times it.
Resumed ResumeRun(const std::string& store_dir, const std::string& id, bool sync, uint64_t stop_before) {
  Resumed out;
  auto t0 = Clock::now();
  auto st = store::Store::Open(store_dir, false);
  auto lock = st->LockRun(id);
  BenchHost host;
  runtime::LoadedRun run;
  Status s = runtime::LoadRun(*st, id, &host, &run);
  if (!s.ok()) {
    fmt::print(stderr, "resume failed: {}\n", s.message());
    std::exit(1);
  }
  auto mark = st->OpenMark(id);
  runtime::StoreJournal journal(run.db.get(), mark->get(), &host, id, sync, run.checkpoint);
  TimingJournal timing(&journal);
  timing.stop_before = stop_before;
  run.vm->SetJournal(&timing);
  run.vm->Run();
  out.resume_ms = Us(*timing.first_effect_at - t0) / 1000.0;
  out.last_ms = Us(timing.began_at.back() - t0) / 1000.0;
  for (size_t i = 1; i < timing.done_at.size(); ++i) out.step_us.push_back(Us(timing.done_at[i] - timing.done_at[i - 1]));
  return out;
}

// The flow binary for whole-process figures, if it has the test hooks (FLOW_CRASH_AT).
std::string flow_binary;

// Milliseconds from starting `flow resume ID` on `store_dir` until its first effect, where
// FLOW_CRASH_AT=K:before-intent kills it (K: that effect's number); -1 if it did not stop so.
double WholeProcessResumeMs(const std::string& store_dir, const std::string& id, uint64_t effect) {
  std::string crash = fmt::format("FLOW_CRASH_AT={}:before-intent", effect);
  std::vector<std::string> env_strings = {crash};
  for (char** e = environ; *e; ++e)
    if (std::string_view(*e).substr(0, 14) != "FLOW_CRASH_AT=") env_strings.push_back(*e);
  std::vector<char*> env;
  for (auto& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);
  std::vector<std::string> args = {flow_binary, "resume", "--store", store_dir, id};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  auto t0 = Clock::now();
  pid_t pid;
  int rc = posix_spawn(&pid, flow_binary.c_str(), &actions, nullptr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  double ms = Us(Clock::now() - t0) / 1000.0;
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? ms : -1;
}

void ResumeTable(bool quick) {
  fmt::print("(d) from opening a run to its first resumed effect, and to the effect after a loop that reads\n"
             "    every string of its state: in this process, and as a whole `flow resume`\n");
  fmt::print("{:>8} {:>10} {:>13} {:>10} {:>13} {:>14} {:>17} {:>14} {:>17}\n", "", "crashed", "crashed,", "susp.",
             "susp.,", "flow resume,", "flow resume,", "flow resume,", "flow resume,");
  fmt::print("{:>8} {:>10} {:>13} {:>10} {:>13} {:>14} {:>17} {:>14} {:>17}\n", "state", "(ms)", "read all", "(ms)",
             "read all", "crashed", "crashed, read all", "susp.", "susp., read all");
  std::vector<std::pair<const char*, size_t>> sizes = {{"1 KB", 1 << 10}, {"10 MB", 10 << 20}};
  for (auto [label, size] : sizes) {
    // Stopped before effect 2; effect 3 comes after reading every string of the ballast.
    std::string program = Ballast(size) +
                          "time.now()\ntime.now()\nlet n = 0\nfor s in ballast { n = n + len(s) }\ntime.now()\n";
    double ms[2], all_ms[2], process_ms[2], process_all_ms[2];
    for (bool settle : {false, true}) {
      std::vector<double> times, all_times, process_times, process_all_times;
      for (int i = 0; i < (quick ? 1 : 5); ++i) {
        RunResult r = RunDurably(program, true, 2, "resume", settle);  // stops before its 2nd effect
        if (!flow_binary.empty()) {
          for (uint64_t effect : {2, 3}) {
            std::string copy = TempDir();
            std::filesystem::copy(r.store_dir, copy, std::filesystem::copy_options::recursive);
            ::sync();  // the copy's writeback is not the resume's
            (effect == 2 ? process_times : process_all_times).push_back(WholeProcessResumeMs(copy, "resume", effect));
            std::filesystem::remove_all(copy);
          }
        }
        Resumed resumed = ResumeRun(r.store_dir, "resume", true, 3);
        times.push_back(resumed.resume_ms);
        all_times.push_back(resumed.last_ms);
        std::filesystem::remove_all(r.store_dir);
      }
      ms[settle] = Median(times);
      all_ms[settle] = Median(all_times);
      auto median_or_none = [](const std::vector<double>& v) {
        bool failed = std::find(v.begin(), v.end(), -1.0) != v.end();
        return v.empty() || failed ? -1 : Median(v);
      };
      process_ms[settle] = median_or_none(process_times);
      process_all_ms[settle] = median_or_none(process_all_times);
    }
    auto whole = [](double v) { return v < 0 ? std::string("n/a") : fmt::format("{:.2f}", v); };
    fmt::print("{:>8} {:>10.2f} {:>13.2f} {:>10.2f} {:>13.2f} {:>14} {:>17} {:>14} {:>17}\n", label, ms[0], all_ms[0],
               ms[1], all_ms[1], whole(process_ms[0]), whole(process_all_ms[0]), whole(process_ms[1]),
               whole(process_all_ms[1]));
  }
  fmt::print("median of {} resumes; target: <= 20 ms for 10 MB to the first effect. Strings are read when first used\n"
             "(read all: the cost of that when a run then reads its whole state). The whole process includes starting\n"
             "it (about 5 ms for `flow --version` here); n/a: no flow binary with test hooks (--flow)\n\n",
             quick ? 1 : 5);
}

// One run of 1,000,000 effects, stopped and resumed at each mark: the cost per step over the
// effects before the mark, and the time to resume there.
void FlatnessTable(bool quick) {
  const std::vector<uint64_t> marks = quick ? std::vector<uint64_t>{1000, 10000, 100000}
                                            : std::vector<uint64_t>{1000, 10000, 100000, 1000000};
  std::string program = fmt::format("let n = 0\nfor i in range({}) {{\n  n = n + 1\n  time.now()\n}}\n", marks.back() + 100);
  fmt::print("(e) one run of {} effects (async), stopped and resumed at each mark\n", marks.back());
  fmt::print("{:>10} {:>24} {:>14} {:>14}\n", "effects", "us/step (since last mark)", "p99 us/step", "resume ms");
  RunResult first = RunDurably(program, false, marks[0] + 1, "flat");
  std::vector<double> steps = first.step_us;
  for (size_t k = 0; k < marks.size(); ++k) {
    uint64_t next = k + 1 < marks.size() ? marks[k + 1] + 1 : marks[k] + 3;
    Resumed r = ResumeRun(first.store_dir, "flat", false, next);
    std::vector<double> sorted = steps;
    std::sort(sorted.begin(), sorted.end());
    double p99 = sorted.empty() ? 0 : sorted[sorted.size() * 99 / 100];
    fmt::print("{:>10} {:>24.2f} {:>14.2f} {:>14.2f}\n", marks[k], Mean(steps), p99, r.resume_ms);
    steps = r.step_us;
  }
  std::filesystem::remove_all(first.store_dir);
  fmt::print("target: flat (per step and resume do not grow with the effects done)\n");
}

// Issue 10 (c): what a checkpoint writes as live tasks grow, one task waking per step.
void TasksTable(bool quick) {
  fmt::print("(f) bytes per checkpoint as live tasks grow, one task waking per step (sync)\n");
  fmt::print("{:>8} {:>16} {:>16} {:>12}\n", "tasks", "median bytes", "largest bytes", "us/step");
  std::vector<int> counts = quick ? std::vector<int>{1, 100, 1000} : std::vector<int>{1, 10, 100, 1000};
  for (int n : counts) {
    RunResult r = RunDurably(fmt::format("for i in range({}) {{\n  spawn {{\n    for k in range(3) {{\n"
                                         "      sleep(1000 + i * 7 + k * 100000)\n    }}\n  }}\n}}\nsleep(1000000)\n",
                                         n),
                             true);
    // The first checkpoints write the tasks as they are spawned; then one task wakes per step.
    std::vector<size_t> later(r.bytes.begin() + std::min<size_t>(r.bytes.size(), n + 2), r.bytes.end());
    std::vector<double> later_us(r.step_us.begin() + std::min<size_t>(r.step_us.size(), n + 2), r.step_us.end());
    std::vector<double> as_double(later.begin(), later.end());
    fmt::print("{:>8} {:>16.0f} {:>16} {:>12.1f}\n", n, Median(as_double), *std::max_element(later.begin(), later.end()),
               Median(later_us));
    std::filesystem::remove_all(r.store_dir);
  }
  fmt::print("target: flat, <= 4096 bytes per checkpoint with 1,000 live tasks\n\n");
}

}  // namespace

// (g) What keeping every checkpoint costs: the bytes each checkpoint writes with all kept
// (the default) against only the last kept, on the same programs.
void KeptTable(bool quick) {
  const int steps = quick ? 300 : 2000;
  struct Program {
    const char* name;
    std::string source;
  };
  std::vector<Program> programs = {
      {"counter", fmt::format("let n = 0\nfor i in range({}) {{\n  n = n + 1\n  time.now()\n}}\n", steps)},
      {"list push", fmt::format("let xs = []\nfor i in range({}) {{\n  xs.push([i, \"item\"])\n  time.now()\n}}\n", steps)},
      {"map update", fmt::format("let m = {{}}\nfor i in range({}) {{\n  m[str(i % 50)] = {{n: i}}\n  time.now()\n}}\n", steps)},
      {"garbage", fmt::format("let keep = []\nfor i in range({}) {{\n  keep = [[i], [i + 1], {{k: i}}]\n  time.now()\n}}\n", steps)},
  };
  fmt::print("(g) bytes per checkpoint (median, and total over the run): the default (every checkpoint kept, with\n"
             "    the change lists that let it prune past its cap) vs only the last kept (sync)\n");
  fmt::print("{:<11} {:>12} {:>12} {:>14} {:>14} {:>7}\n", "program", "all: median", "last: median", "all: total KB",
             "last: total KB", "ratio");
  for (const auto& p : programs) {
    size_t median[2], total[2];
    for (int i = 0; i < 2; ++i) {
      RunResult r = RunDurably(p.source, true, 0, "bench", false, i == 0 ? store::kKeepDefault : 1);
      std::vector<size_t> bytes(r.bytes.begin() + 1, r.bytes.end());  // after the first, whole checkpoint
      std::sort(bytes.begin(), bytes.end());
      median[i] = bytes[bytes.size() / 2];
      total[i] = 0;
      for (size_t b : bytes) total[i] += b;
      std::filesystem::remove_all(r.store_dir);
    }
    fmt::print("{:<11} {:>12} {:>12} {:>14.1f} {:>14.1f} {:>7.2f}\n", p.name, median[0], median[1], total[0] / 1024.0,
               total[1] / 1024.0, static_cast<double>(total[0]) / total[1]);
  }
  fmt::print("target: all kept <= 1.2x of latest-only (issue 11)\n\n");
}

// The flow binary beside this one (build/bench/durable_bench -> build/flow), if it has the
// test hooks.
std::string FindFlow(const char* argv0, const std::string& given) {
  std::filesystem::path flow =
      given.empty() ? std::filesystem::path(argv0).parent_path() / ".." / "flow" : std::filesystem::path(given);
  std::error_code ec;
  if (!std::filesystem::exists(flow, ec)) return "";
  std::string cmd = fmt::format("'{}' --version 2>/dev/null", flow.string());
  std::string out;
  if (FILE* f = popen(cmd.c_str(), "r")) {
    char buf[512];
    while (size_t n = fread(buf, 1, sizeof buf, f)) out.append(buf, n);
    pclose(f);
  }
  return out.find("FLOW_CRASH_AT honoured") != std::string::npos ? flow.string() : "";
}

int main(int argc, char** argv) {
  flow::cli::SetUpProcessHeap();  // as the flow binary's heap
  bool quick = false;
  std::string only, flow_path;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") quick = true;
    if (a == "--only" && i + 1 < argc) only = argv[++i];
    if (a == "--flow" && i + 1 < argc) flow_path = argv[++i];
  }
  flow_binary = FindFlow(argv[0], flow_path);
  if (only == "d") return ResumeTable(quick), 0;
  if (only == "e") return FlatnessTable(quick), 0;
  if (only == "f") return TasksTable(quick), 0;
  if (only == "g") return KeptTable(quick), 0;
  if (argc > 1 && std::string(argv[1]) == "--profile-async") {  // for perf: many async steps
    RunDurably("for i in range(200000) { time.now() }", false);
    return 0;
  }
  const int steps = quick ? 300 : 2000;
  const std::string loop = fmt::format("let n = 0\nfor i in range({}) {{\n  n = n + 1\n  time.now()\n}}\n", steps);

  fmt::print("(a) one effectful step (time.now + checkpoint) vs a raw LevelDB WriteBatch of the same bytes\n");
  fmt::print("    (raw: the very batches the checkpoints wrote, replayed into a fresh database)\n");
  fmt::print("{:<6} {:>14} {:>16} {:>14} {:>7}\n", "mode", "flow step us", "bytes/checkpoint", "raw write us", "ratio");
  double steps_per_s[2];
  for (bool sync : {true, false}) {
    RunResult r = RunDurably(loop, sync);
    double step = Median(r.step_us);
    size_t bytes = r.bytes[r.bytes.size() / 2];
    double raw = RawWriteUs(r.batches, sync);
    fmt::print("{:<6} {:>14.1f} {:>16} {:>14.1f} {:>7.2f}\n", sync ? "sync" : "async", step, bytes, raw, step / raw);
    steps_per_s[sync ? 0 : 1] = 1e6 / Mean(r.step_us);
    std::filesystem::remove_all(r.store_dir);
  }
  fmt::print("target: ratio <= 1.5\n\n");

  fmt::print("(b) per checkpoint as the untouched heap grows, one variable changed per step (sync)\n");
  fmt::print("{:>10} {:>18} {:>16}\n", "heap", "bytes/checkpoint", "us/step");
  std::vector<std::pair<const char*, size_t>> sizes = {
      {"1 KB", 1 << 10}, {"100 KB", 100 << 10}, {"1 MB", 1 << 20}, {"10 MB", 10 << 20}, {"50 MB", 50 << 20}};
  if (quick) sizes.resize(3);
  for (auto [label, size] : sizes) {
    RunResult r = RunDurably(Ballast(size) + "let n = 0\nfor i in range(200) {\n  n = n + 1\n  time.now()\n}\n", true);
    std::vector<double> later(r.step_us.begin() + 5, r.step_us.end());
    std::vector<size_t> later_bytes(r.bytes.begin() + 5, r.bytes.end());
    size_t max_bytes = *std::max_element(later_bytes.begin(), later_bytes.end());
    fmt::print("{:>10} {:>18} {:>16.1f}\n", label, max_bytes, Median(later));
    std::filesystem::remove_all(r.store_dir);
  }
  fmt::print("target: flat, <= 4096 bytes per step (the largest checkpoint after the heap was built)\n\n");

  fmt::print("(c) durable steps per second, one run of {} sequential effects\n", steps);
  fmt::print("{:<6} {:>12}\n", "mode", "steps/s");
  fmt::print("{:<6} {:>12.0f}\n{:<6} {:>12.0f}\n", "sync", steps_per_s[0], "async", steps_per_s[1]);
  fmt::print("target: >= 2,000/s sync (DBOS on PostgreSQL: about 530/s here), >= 100,000/s async\n\n");

  ResumeTable(quick);
  FlatnessTable(quick);
  TasksTable(quick);
  KeptTable(quick);
  return 0;
}
