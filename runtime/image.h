// Portable run images: a suspended or crashed run as one file, to resume in another store
// on another machine (`flow export RUN > run.fvm`, `flow import run.fvm`).
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/store.h"

namespace flow::runtime {

// The image of run `id` (which must not be live).
Status ExportRun(store::Store& st, const std::string& id, std::string* image);
// The same for a run whose lock the caller holds (flow migrate, which holds it until the
// run is gone from its store).
Status ExportHeldRun(store::Store& st, const std::string& id, std::string* image);
// Adds the run of `image` to the store (its id must be free there); returns the id.
Result<std::string> ImportRun(store::Store& st, std::string_view image);

// flow migrate: moves runs from one store to another (a folder to PostgreSQL, or back),
// each as its image, suspended and crashed ones included, so that each resumes there where
// it stood. A run is set aside in its store first (poisoned, naming where it goes), then
// copied, then removed: a migrate cut short leaves it set aside, never resumable in both,
// and the next migrate finishes it. Live runs are passed over.
struct MigratedRun {
  std::string id;
  enum class Outcome { kMoved, kLive, kFailed } outcome = Outcome::kMoved;
  Status why;  // kLive, kFailed
};
Status MigrateRuns(const std::string& from, const std::string& to, const std::vector<std::string>& ids,
                   std::vector<MigratedRun>* out);
// flow migrate without runs named, before the runs: each queue cap is copied; each
// schedule moves (its code with it), so that one store only fires it. A schedule whose
// name `to` holds for another, or a cap or schedule that cannot be read, is not moved
// (*failed names it and why); the others are.
struct MigratedConfig {
  std::vector<std::pair<std::string, uint32_t>> caps;    // copied: queue, cap
  std::vector<std::string> schedules;                    // moved
  std::vector<std::pair<std::string, Status>> failed;    // "queue Q" or "schedule S", why
};
Status MigrateSchedulesAndCaps(const std::string& from, const std::string& to, MigratedConfig* out);

}  // namespace flow::runtime
