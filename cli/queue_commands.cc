// flow submit FILE [--queue Q] ...; flow queue set Q --concurrency N | --unlimited; flow
// queue list (runtime/queue.h).
#include "cli/queue_commands.h"

#include <fmt/format.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "cli/options.h"
#include "runtime/queue.h"
#include "store/keys.h"
#include "store/queues.h"

namespace flow::cli {

namespace {


struct QueueArgs {
  std::string queue = store::kDefaultQueue;
  uint64_t concurrency = 0;
  bool unlimited = false;
  bool json = false;
};

int SubmitCommand(const RunOptions& options, const std::string& queue) {
  runtime::StartOptions start;
  Module module;
  if (int code = PrepareStart(options, "submit", &start, &module); code != kExitOk) return code;
  store::RunRecord record;
  Status s = runtime::SubmitRun(start, module, queue, &record);
  if (!s.ok()) return Fail(s, "submit");
  fmt::print(stderr, "flow: run {} queued in {}\n", record.id, queue);
  fmt::print("{}\n", record.id);
  return kExitOk;
}

int QueueSetCommand(const std::string& store_dir, const std::string& queue, const QueueArgs& args) {
  if (args.unlimited == (args.concurrency != 0)) {
    fmt::print(stderr, "flow queue set: give one of --concurrency N and --unlimited\n");
    return kExitUsage;
  }
  if (!store::IsValidQueueName(queue)) {
    fmt::print(stderr, "flow queue set: `{}` is not a queue name (1 to 64 letters, digits, . _ -)\n", queue);
    return kExitUsage;
  }
  if (args.concurrency > UINT32_MAX - 1) {
    fmt::print(stderr, "flow queue set: --concurrency is at most {}\n", UINT32_MAX - 1);
    return kExitUsage;
  }
  Result<store::Store> st = store::Store::Open(store_dir, true);
  if (!st.ok()) return Fail(st.status(), "");
  if (Status s = st->WriteQueueCap(queue, static_cast<uint32_t>(args.concurrency)); !s.ok())
    return Fail(s, "queue " + queue);
  if (args.unlimited) fmt::print(stderr, "flow: queue {}: no cap\n", queue);
  else fmt::print(stderr, "flow: queue {}: at most {} run(s) at once\n", queue, args.concurrency);
  return kExitOk;
}

int QueueListCommand(const std::string& store_dir, bool json) {
  Result<store::Store> st = store::Store::Open(store_dir, false);
  std::vector<runtime::QueueInfo> queues;
  if (!st.ok() && !st.status().IsNotFound()) return Fail(st.status(), "");
  if (st.ok()) {
    if (Status s = runtime::ListQueues(*st, &queues); !s.ok()) return Fail(s, "");
  }
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& q : queues)
      out.push_back({{"name", q.name}, {"concurrency", q.cap}, {"executing", q.executing}, {"queued", q.queued}});
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }
  fmt::print("{:<24} {:>11} {:>9} {:>7}\n", "QUEUE", "CONCURRENCY", "EXECUTING", "QUEUED");
  for (const auto& q : queues)
    fmt::print("{:<24} {:>11} {:>9} {:>7}\n", q.name, q.cap ? std::to_string(q.cap) : "unlimited", q.executing, q.queued);
  return kExitOk;
}

}  // namespace

int ReportDeferred(const runtime::RunResult& r) {
  const char* verb = r.record.status == store::RunStatus::kQueued ? "started" : "resumed";
  if (r.deferred == runtime::RunResult::Deferred::kWaitingForRun)
    fmt::print(stderr, "flow: run {} not {}: it waits for run {} (the previous run of its schedule) to end\n",
               r.run_id, verb, r.record.after_run);
  else
    fmt::print(stderr, "flow: run {} not {}: queue {} is full (flow queue list); a worker starts it when a slot frees\n",
               r.run_id, verb, r.record.queue);
  return kExitDeferred;
}

Dispatch AddQueueCommands(CLI::App& app, RunOptions& run, const std::function<void(CLI::App*)>& add_budgets) {
  auto args = std::make_shared<QueueArgs>();
  auto queue_name = std::make_shared<std::string>();
  CLI::App* submit = app.add_subcommand(
      "submit", "create a run of FILE, queued: print its id and return at once; a worker (or flow resume ID) starts it");
  submit->add_option("FILE", run.file, "a .flow script or a .flowc bytecode file")->required();
  submit->add_option("--arg", run.args, "a program argument NAME=VALUE, read as args.NAME")->take_all();
  submit->add_option("--store", run.store, "the store folder (default ./.flow, or FLOW_STORE); made if it does not exist");
  submit->add_option("--run-id", run.run_id, "the id of the new run (default: a fresh sortable id)")->check(RunIdValue());
  submit->add_option("--queue", args->queue, "the queue whose cap it runs under (default: default)");
  submit->add_flag("--virtual-time", run.virtual_time, "skip time: durable waits fire at once");
  submit->add_option("--durability", run.durability, "sync (default) or async")->check(CLI::IsMember({"sync", "async"}));
  submit->add_option("--keep-checkpoints", run.keep_checkpoints, "as flow run's")->check(KeepCheckpointsValue());
  add_budgets(submit);  // --deadline counts from the submission
  // The memory budget is the executing process's, not kept with a run: flow resume takes it.
  submit->remove_option(submit->get_option("--max-memory"));
  submit->add_flag("--no-cache", run.no_cache, "compile FILE afresh: skip the compiled-program cache");

  CLI::App* queue = app.add_subcommand("queue", "caps on how many runs of a queue execute at once, across every worker");
  queue->require_subcommand(1);
  CLI::App* set = queue->add_subcommand("set", "set (or remove) the cap of queue Q");
  set->add_option("Q", *queue_name, "the queue")->required();
  set->add_option("--concurrency", args->concurrency, "at most N runs of Q execute at once (a suspended run holds no slot)")
      ->check(CountValue());
  set->add_flag("--unlimited", args->unlimited, "remove the cap");
  set->add_option("--store", run.store, kStoreHelp);
  CLI::App* list = queue->add_subcommand("list", "each queue: its cap, runs executing now, runs queued");
  list->add_flag("--json", args->json, "a JSON array of objects, for machines");
  list->add_option("--store", run.store, kStoreHelp);

  return [=, &run]() -> std::optional<int> {
    if (submit->parsed()) return SubmitCommand(run, args->queue);
    if (set->parsed()) return QueueSetCommand(run.store, *queue_name, *args);
    if (list->parsed()) return QueueListCommand(run.store, args->json);
    return std::nullopt;
  };
}

}  // namespace flow::cli
