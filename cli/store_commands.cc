// flow store init (the store's schema, created or migrated: store/pg/schema.h; a folder is
// made) and flow migrate --from A --to B [RUN...] (runtime/image.h, MigrateRuns).
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "cli/options.h"
#include "cli/queue_commands.h"
#include "runtime/image.h"
#include "store/pg/connection.h"

namespace flow::cli {

namespace {

int StoreInitCommand(const std::string& location) {
  Result<store::Store> st = store::Store::Open(location, true);
  if (!st.ok()) return Fail(st.status(), "store init");
  fmt::print(stderr, "flow: store {} is ready\n",
             store::pg::IsPostgresAddress(location) ? store::pg::RedactedAddress(location) : location);
  return kExitOk;
}

// Two spellings of one folder (./.flow and .flow/, a link) are one store; two addresses
// are compared as given.
bool SameStore(const std::string& a, const std::string& b) {
  if (a == b) return true;
  if (store::pg::IsPostgresAddress(a) || store::pg::IsPostgresAddress(b)) return false;
  std::error_code ea, eb;
  const std::filesystem::path pa = std::filesystem::weakly_canonical(a, ea), pb = std::filesystem::weakly_canonical(b, eb);
  return !ea && !eb && pa == pb;
}

int MigrateCommand(const std::string& from, const std::string& to, const std::vector<std::string>& ids) {
  if (SameStore(from, to)) {
    fmt::print(stderr, "flow migrate: --from and --to name the same store\n");
    return kExitUsage;
  }
  int failed = 0, live = 0;
  if (ids.empty()) {  // the whole store: its schedules and queue caps too
    runtime::MigratedConfig config;
    if (Status s = runtime::MigrateSchedulesAndCaps(from, to, &config); !s.ok()) return Fail(s, "migrate");
    for (const auto& [queue, cap] : config.caps) fmt::print(stderr, "flow: queue {}: its cap ({}) copied\n", queue, cap);
    for (const std::string& name : config.schedules) fmt::print(stderr, "flow: schedule {} moved\n", name);
    for (const auto& [name, why] : config.failed)
      fmt::print(stderr, "flow: migrate: {}: {}\n", Printable(name), why.message());
    failed += static_cast<int>(config.failed.size());
  }
  std::vector<runtime::MigratedRun> moved;
  if (Status s = runtime::MigrateRuns(from, to, ids, &moved); !s.ok()) return Fail(s, "migrate");
  for (const runtime::MigratedRun& m : moved) {
    switch (m.outcome) {
      case runtime::MigratedRun::Outcome::kMoved: fmt::print("{}\n", m.id); break;
      case runtime::MigratedRun::Outcome::kLive:
        ++live;
        fmt::print(stderr, "flow: migrate: {}\n", m.why.message());
        break;
      case runtime::MigratedRun::Outcome::kFailed:
        ++failed;
        fmt::print(stderr, "flow: migrate: run {}: {}\n", m.id, m.why.message());
        break;
    }
  }
  const size_t runs_failed = std::count_if(moved.begin(), moved.end(), [](const runtime::MigratedRun& m) {
    return m.outcome == runtime::MigratedRun::Outcome::kFailed;
  });
  fmt::print(stderr, "flow: {} run(s) moved, {} live (left), {} failed\n", moved.size() - runs_failed - live, live,
             runs_failed);
  return failed ? kExitCorrupt : live ? kExitUsage : kExitOk;
}

}  // namespace

Dispatch AddStoreCommands(CLI::App& app, RunOptions& run) {
  auto* store_cmd = app.add_subcommand("store", "the store itself: flow store init");
  store_cmd->require_subcommand(1);
  auto* init_cmd = store_cmd->add_subcommand(
      "init", "make the store: a folder, or the schema of a PostgreSQL database (postgresql://...), created or "
              "migrated; a database written by a newer flow is refused");
  init_cmd->add_option("--store", run.store,
                       "the store (default ./.flow, or FLOW_STORE): a folder, or postgresql://USER@HOST:PORT/DB");
  auto from = std::make_shared<std::string>(), to = std::make_shared<std::string>();
  auto ids = std::make_shared<std::vector<std::string>>();
  auto* migrate_cmd = app.add_subcommand(
      "migrate", "move runs (suspended and crashed ones included) from one store to another, where each resumes as "
                 "it stood; prints the id of each run moved; live runs are left. Without RUN, the store's schedules "
                 "move too and its queue caps are copied");
  migrate_cmd->add_option("--from", *from, "the store the runs are in (a folder or postgresql://...)")->required();
  migrate_cmd->add_option("--to", *to, "the store they go to (made if it does not exist)")->required();
  migrate_cmd->add_option("RUN", *ids, "the runs to move (default: every run)")->check(RunIdValue());
  return [=, &run]() -> std::optional<int> {
    if (init_cmd->parsed()) return StoreInitCommand(run.store);
    if (migrate_cmd->parsed()) return MigrateCommand(*from, *to, *ids);
    return std::nullopt;
  };
}

}  // namespace flow::cli
