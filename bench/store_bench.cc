// A store of many suspended runs (issue 12, benchmark c), printed as a table:
//  - bytes on disk per suspended run (as `du` counts them) and files per run;
//  - `flow runs --status suspended` over all of them, whole process;
//  - a `flow worker --once` pass when 100 of them are due (a signal each), whole process:
//    the work should follow the due runs, not the store's size;
//  - starting a run in that store (`flow run` of a program that suspends at once), against
//    the same in an empty store and against the process start alone (`flow --version`).
// One real run is made by the flow binary (a program waiting for a signal, packed when it
// suspends); the others are copies of it under new ids, written without syncing (setup only)
// and without rows in the index of packed runs, which the first `flow runs` gives them.
// Usage: store_bench FLOW [--runs N] [--due N] [--keep]   (--keep: the store stays, for profiling)
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "store/keys.h"
#include "store/store.h"

namespace {

using namespace flow;
using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Runs a shell command: its wall time in ms; exits the bench if it fails (unless allowed).
double Timed(const std::string& command, bool must_succeed = true) {
  auto t = Clock::now();
  int rc = std::system(command.c_str());
  double ms = Ms(Clock::now() - t);
  if (must_succeed && rc != 0) {
    fmt::print(stderr, "store_bench: `{}` failed ({})\n", command, rc);
    std::exit(1);
  }
  return ms;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double MedianOf(int times, const std::string& command, bool must_succeed = true) {
  std::vector<double> ms;
  for (int i = 0; i < times; ++i) ms.push_back(Timed(command, must_succeed));
  return Median(ms);
}

void WriteText(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// Copies of run `tmpl` as bench-NNNNNN: its packed file, with the record's id changed.
void Clone(const store::Store& st, const std::string& tmpl, int n) {
  Result<store::Store::PackedRun> packed = st.ReadPacked(tmpl);
  if (!packed.ok()) {
    fmt::print(stderr, "store_bench: the template run is not packed: {}\n", packed.status().message());
    std::exit(1);
  }
  Result<store::RunRecord> record = store::DecodeRunRecord(packed->record, "the template");
  for (int i = 0; i < n; ++i) {
    store::RunRecord r = *record;
    r.id = fmt::format("bench-{:06}", i);
    store::Store::PackedRun copy = *packed;
    copy.record = store::EncodeRunRecord(r);
    const std::string folder = store::RunPath(st.dir(), r.id);
    ::mkdir(folder.c_str(), 0755);
    std::ofstream(folder + "/" + store::kLockFile);
    std::ofstream(folder + "/" + store::kPackedFile, std::ios::binary) << store::EncodePackedRun(copy);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: store_bench FLOW [--runs N] [--due N]\n");
    return 2;
  }
  const std::string flow = std::filesystem::absolute(argv[1]).string();
  int runs = 100000, due = 100;
  bool keep = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--keep") keep = true;
    else if (a == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
    else if (a == "--due" && i + 1 < argc) due = std::atoi(argv[++i]);
  }
  due = std::min(due, runs);
  char tmpl[] = "/tmp/flow-store-bench-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string store_dir = dir + "/store", empty_store = dir + "/empty";
  WriteText(dir + "/approval.flow", "let v = signal.wait(\"go\")\nprint(v)\n");
  const std::string q = " >/dev/null 2>&1";
  // flow run exits 75 when the run suspends.
  Timed(fmt::format("{} run --store {} --run-id template {}/approval.flow{}", flow, store_dir, dir, q), false);
  Result<store::Store> st = store::Store::Open(store_dir, false);
  if (!st.ok()) {
    fmt::print(stderr, "store_bench: {}\n", st.status().message());
    return 1;
  }
  auto t = Clock::now();
  Clone(*st, "template", runs - 1);
  double clone_ms = Ms(Clock::now() - t);

  const std::string runs_dir = store::RunsPath(store_dir);
  uint64_t kb = 0, files = 0;
  {
    FILE* p = ::popen(fmt::format("du -sk {}", runs_dir).c_str(), "r");
    if (p && std::fscanf(p, "%lu", &kb) != 1) kb = 0;
    if (p) ::pclose(p);
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(runs_dir, ec); !ec && it != std::filesystem::end(it);
         it.increment(ec))
      files += it->is_regular_file();
  }

  // The copies have no row in the index of packed runs (as a store written before it):
  // the first listing reads every folder, then gives the packed runs their rows.
  const std::string list = fmt::format("{} runs --store {} --status suspended >/dev/null", flow, store_dir);
  ::sync();  // the copies' writeback would otherwise slow the syncs measured below
  double first_list_ms = Timed(list);
  ::sync();
  double list_ms = MedianOf(5, list);
  double list_json_ms = MedianOf(3, fmt::format("{} runs --store {} --status suspended --json >/dev/null", flow, store_dir));

  // `due` runs get their signal (each flow signal is a process: timed apart).
  t = Clock::now();
  for (int i = 0; i < due; ++i)
    Timed(fmt::format("{} signal --store {} bench-{:06} go '\"ok\"'{}", flow, store_dir, i, q));
  double signal_ms = Ms(Clock::now() - t) / std::max(due, 1);
  double pass_ms = Timed(fmt::format("{} worker --once --store {}{}", flow, store_dir, q));
  int completed = 0;
  {
    FILE* p = ::popen(fmt::format("{} runs --store {} --status completed | tail -n +2 | wc -l", flow, store_dir).c_str(), "r");
    if (p && std::fscanf(p, "%d", &completed) != 1) completed = -1;
    if (p) ::pclose(p);
  }
  // A pass with nothing due: what the store's size alone costs a worker.
  double idle_pass_ms = MedianOf(3, fmt::format("{} worker --once --store {}{}", flow, store_dir, q));

  double version_ms = MedianOf(21, fmt::format("{} --version >/dev/null", flow));
  int k = 0;
  auto start = [&](const std::string& s) {
    return MedianOf(21, fmt::format("{} run --store {} --run-id start-{} {}/approval.flow{}", flow, s, k++, dir, q), false);
  };
  start(empty_store);  // creates the empty store
  double start_empty_ms = start(empty_store), start_big_ms = start(store_dir);

  fmt::print("store of {} suspended runs (signal.wait; one real run, the others copies of it), {} due\n", runs, due);
  fmt::print("  {:<52} {:>12}\n", "measure", "value");
  fmt::print("  {:<52} {:>12.0f}\n", "disk per suspended run, du (bytes)", kb * 1024.0 / runs);
  fmt::print("  {:<52} {:>12.2f}\n", "files per run (regular)", static_cast<double>(files) / runs);
  fmt::print("  {:<52} {:>12.1f}\n", "flow runs --status suspended, no rows yet (ms)", first_list_ms);
  fmt::print("  {:<52} {:>12.1f}\n", "flow runs --status suspended (ms, median of 5)", list_ms);
  fmt::print("  {:<52} {:>12.1f}\n", "flow runs --status suspended --json (ms, median of 3)", list_json_ms);
  fmt::print("  {:<52} {:>12.1f}\n", fmt::format("flow worker --once, {} due (ms)", due), pass_ms);
  fmt::print("  {:<52} {:>12}\n", "  runs completed by it", completed);
  fmt::print("  {:<52} {:>12.1f}\n", "flow worker --once, none due (ms, median of 3)", idle_pass_ms);
  fmt::print("  {:<52} {:>12.1f}\n", "flow signal, one (ms, mean)", signal_ms);
  fmt::print("  {:<52} {:>12.1f}\n", "flow --version: process start (ms, median of 21)", version_ms);
  fmt::print("  {:<52} {:>12.1f}\n", "flow run to its suspension, empty store (ms)", start_empty_ms);
  fmt::print("  {:<52} {:>12.1f}\n", "flow run to its suspension, this store (ms)", start_big_ms);
  fmt::print("  (setup: {} copies written in {:.0f} ms)\n", runs - 1, clone_ms);
  if (keep) {
    fmt::print("  (the store is kept: {})\n", store_dir);
    return 0;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
