// flow delete and flow gc (docs/operating.md, "Retention").
#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "cli/commands.h"
#include "cli/options.h"
#include "store/store.h"

namespace flow::cli {

std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{}B", bytes);
  const char* units = "KMGTP";
  double v = static_cast<double>(bytes) / 1024;
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  return fmt::format("{:.1f}{}", v, units[u]);
}

namespace {

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string HumanDuration(int64_t ms) {
  const int64_t s = ms / 1000;
  if (s >= 86400) return fmt::format("{}d", s / 86400);
  if (s >= 3600) return fmt::format("{}h", s / 3600);
  if (s >= 60) return fmt::format("{}m", s / 60);
  return fmt::format("{}s", s);
}

}  // namespace

int DeleteCommand(const std::string& store_dir, const std::string& run_id) {
  Result<store::Store> st = store::Store::Open(store_dir, false);
  if (!st.ok()) return Fail(st.status(), "");
  uint64_t freed = 0;
  if (Status s = st->DeleteRun(run_id, &freed); !s.ok()) return Fail(s, "delete");
  fmt::print(stderr, "flow: deleted run {} ({} freed)\n", run_id, HumanBytes(freed));
  return kExitOk;
}

int GcCommand(const std::string& store_dir, const std::string& older_than, const std::vector<std::string>& statuses,
              bool dry_run) {
  int64_t age_ms = 0;
  std::string error;
  if (!ParseDuration(older_than, &age_ms, &error)) {
    fmt::print(stderr, "flow gc: --older-than {}\n", error);
    return kExitUsage;
  }
  // Without --status: the runs that have ended. A suspended run may wait for weeks on
  // purpose (an approval), and a crashed one is resumable: they go only when named.
  std::vector<store::RunStatus> wanted;
  for (const std::string& name : statuses) {
    store::RunStatus s;
    if (!store::ParseRunStatus(name, &s)) {
      fmt::print(stderr, "flow gc: unknown status `{}` (running, suspended, completed, failed, crashed, cancelled)\n", name);
      return kExitUsage;
    }
    wanted.push_back(s);
  }
  if (wanted.empty()) wanted = {store::RunStatus::kCompleted, store::RunStatus::kFailed, store::RunStatus::kCancelled};
  Result<store::Store> st = store::Store::Open(store_dir, false);
  if (!st.ok()) {
    if (st.status().IsNotFound()) return kExitOk;  // no store: nothing to collect
    return Fail(st.status(), "");
  }
  const int64_t cutoff = NowMs() - age_ms;
  uint64_t total = 0, count = 0;
  std::vector<std::string> going;
  const char* verb = dry_run ? "would remove" : "removed";
  for (const store::RunRecord& r : st->ListRuns([&](const std::string& id, const Status& s) {
         fmt::print(stderr, "flow gc: run {}: {} (kept)\n", Printable(id), Printable(s.message()));
       })) {
    int64_t pid = 0;
    if (st->IsRunLive(r.id, &pid)) continue;  // never a live run
    // A record saying running whose process died is crashed.
    store::RunStatus status = r.status == store::RunStatus::kRunning ? store::RunStatus::kCrashed : r.status;
    if (r.updated_ms > cutoff || std::find(wanted.begin(), wanted.end(), status) == wanted.end()) continue;
    uint64_t freed = st->RunDiskBytes(r.id);
    if (!dry_run) {
      if (Status s = st->DeleteRun(r.id, &freed); !s.ok()) {
        fmt::print(stderr, "flow gc: run {}: {} (kept)\n", r.id, s.message());
        continue;
      }
    }
    fmt::print("{} run {} ({}, {}, updated {} ago)\n", verb, r.id, store::RunStatusName(status), HumanBytes(freed),
               HumanDuration(NowMs() - r.updated_ms));
    total += freed;
    ++count;
    going.push_back(r.id);
  }
  std::vector<std::string> code_removed;
  uint64_t code_freed = 0;
  if (Status s = st->CollectCode(dry_run, going, &code_removed, &code_freed); !s.ok()) return Fail(s, "gc");
  for (const std::string& hash : code_removed) fmt::print("{} code {}\n", verb, hash);
  fmt::print("{} {} run(s) and {} code version(s): {} freed{}\n", verb, count, code_removed.size(),
             HumanBytes(total + code_freed), dry_run ? " (dry run: nothing removed)" : "");
  return kExitOk;
}

}  // namespace flow::cli
