// Queued runs and queue caps (runtime/queue.h).
#include "runtime/queue.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "runtime/program_file.h"
#include "vm/base/saturate.h"

namespace flow::runtime {

Status CreateQueuedRun(store::Store& st, store::RunRecord record, bool generated_id) {
  const std::string id = record.id;
  if (!store::IsValidRunId(id))
    return Status::InvalidArgument(
        fmt::format("`{}` is not a valid run id (1 to 64 letters, digits, . _ -; not starting with - or .)", id));
  record.status = store::RunStatus::kQueued;
  record.pid = 0;
  record.effects = 0;
  // A folder without a record is a start that died before writing it: take it over (as StartRun).
  Status created = st.CreateRunDir(id, generated_id);
  if (!created.ok() && (created.code() != Status::Code::kInvalidArgument || st.RunExists(id))) return created;
  Result<std::unique_ptr<store::RunLock>> lock = st.LockRun(id);
  if (!lock.ok()) return lock.status();
  if (!created.ok()) {
    if (st.RunExists(id)) return created;  // another submit won the race
    if (Status s = st.ClearRunDir(id); !s.ok()) return s;
  }
  if (Status s = st.WriteRun(record); !s.ok()) return s;
  return st.NoteWake(record.id, 0);  // a worker looks at it now
}

Status SubmitRun(const StartOptions& options, const Module& program, const std::string& queue, store::RunRecord* record) {
  if (!store::IsValidQueueName(queue))
    return Status::InvalidArgument(
        fmt::format("`{}` is not a queue name (1 to 64 letters, digits, . _ -; not starting with - or .)", queue));
  Result<store::Store> st = store::Store::Open(options.store_dir, true);
  if (!st.ok()) return InContext(st.status(), "store " + store::PrintableLocation(options.store_dir));
  // Shared until the record names the code: gc removes no code a run is being created on.
  Result<std::unique_ptr<store::CodeLock>> code_lock = st->LockCode(false);
  if (!code_lock.ok()) return code_lock.status();
  Result<std::string> hash = st->PutCode(SerializeModule(program));
  if (!hash.ok()) return hash.status();
  if (options.source) {
    if (Status s = st->PutSource(*hash, *options.source); !s.ok()) return s;
  }
  store::RunRecord& r = *record;
  r = store::RunRecord{};
  r.id = options.run_id.empty() ? store::NewRunId() : options.run_id;
  r.program = AbsolutePath(options.file);
  r.code_hash = *hash;
  r.args = options.args;
  r.durability = options.sync ? "sync" : "async";
  r.virtual_time = options.virtual_time;
  r.keep_checkpoints = options.keep_checkpoints;
  r.max_effects = options.budgets.max_effects;
  r.max_instructions = options.budgets.max_instructions;
  r.max_tokens = options.budgets.max_tokens;
  if (options.budgets.deadline_ms) r.deadline_ms = AddSaturated(WallMs(), options.budgets.deadline_ms);
  r.created_ms = r.updated_ms = WallMs();
  r.queue = queue;
  r.detail = "queued in " + queue;
  return CreateQueuedRun(*st, r, options.run_id.empty());
}

std::vector<store::RunRecord> QueuedRunsOf(const std::vector<store::RunRecord>& runs) {
  std::vector<store::RunRecord> queued;
  for (const store::RunRecord& r : runs)
    if (r.status == store::RunStatus::kQueued) queued.push_back(r);
  // ListRuns sorts by id; submission order is by creation time (ids given by --run-id sort anyhow).
  std::stable_sort(queued.begin(), queued.end(),
                   [](const store::RunRecord& a, const store::RunRecord& b) { return a.created_ms < b.created_ms; });
  return queued;
}

bool RunHasEnded(const store::RunRecord& r) {
  return r.status == store::RunStatus::kCompleted || r.status == store::RunStatus::kFailed ||
         r.status == store::RunStatus::kCancelled;
}

namespace {

// Does queued run `r` wait for its schedule's previous run, which has not ended? A run
// gone (deleted) or unreadable holds nothing up.
bool WaitsForRun(const store::Store& st, const store::RunRecord& r) {
  if (r.status != store::RunStatus::kQueued || r.after_run.empty()) return false;
  Result<store::RunRecord> before = st.ReadRun(r.after_run);
  return before.ok() && !RunHasEnded(*before);
}

}  // namespace

bool QueuedRunReady(const store::Store& st, const store::RunRecord& listed) {
  // As it is now: another process may have started it since it was listed (live), or run it.
  Result<store::RunRecord> now = st.ReadRun(listed.id);
  int64_t pid = 0;
  if (!now.ok() || now->status != store::RunStatus::kQueued || st.IsRunLive(listed.id, &pid)) return false;
  const store::RunRecord& r = *now;
  if (WaitsForRun(st, r)) return false;
  if (r.queue.empty()) return true;
  Result<uint32_t> cap = st.ReadQueueCap(r.queue);
  if (!cap.ok()) return true;  // ResumeRun says what is wrong
  return *cap == 0 || st.CountHeldQueueSlots(r.queue, *cap) < *cap;
}

Status TakeRunSlot(store::Store& st, const store::RunRecord& r, std::unique_ptr<store::QueueSlot>* slot,
                   RunResult* result) {
  slot->reset();
  if (WaitsForRun(st, r)) {
    result->deferred = RunResult::Deferred::kWaitingForRun;
    return Status::Ok();
  }
  if (r.queue.empty()) return Status::Ok();
  Result<uint32_t> cap = st.ReadQueueCap(r.queue);
  if (!cap.ok()) return InContext(cap.status(), "queue " + r.queue);
  if (*cap == 0) return Status::Ok();
  if (Status s = st.TryTakeQueueSlot(r.queue, *cap, slot); !s.ok()) return InContext(s, "queue " + r.queue);
  if (!*slot) result->deferred = RunResult::Deferred::kQueueFull;
  return Status::Ok();
}

Status StartQueuedRun(store::Store& st, const std::string& id, RunListener* listener, RunResult* result) {
  Result<store::RunRecord> now = st.ReadRun(id);  // as it is now that we hold it
  if (!now.ok()) return now.status();
  result->record = *now;
  if (now->status != store::RunStatus::kQueued) {
    result->refused = true;
    return Status::Ok();
  }
  const std::string context = "run " + id;
  std::string bytes;
  if (Status s = st.GetCode(now->code_hash, &bytes); !s.ok()) return InContext(s, context);
  Result<Module> program = DeserializeModule(bytes);
  if (!program.ok()) return Status::Corruption(context + ": its stored bytecode: " + program.status().message());
  StartOptions options;
  options.file = now->program;
  options.args = now->args;
  options.store_dir = st.dir();
  options.run_id = id;
  options.sync = now->durability != "async";
  options.virtual_time = now->virtual_time;
  options.keep_checkpoints = now->keep_checkpoints;
  if (std::string text; st.GetSource(now->code_hash, &text).ok()) options.source = std::move(text);
  result->source = options.source;
  result->source_file = program->source_name;
  result->imports = program->imports;
  // What a start that died before its record said running left (its first checkpoint).
  if (Status s = st.ClearRunDir(id); !s.ok()) return InContext(s, context);
  store::RunRecord record = *now;
  record.status = store::RunStatus::kRunning;
  record.pid = getpid();
  record.updated_ms = WallMs();
  record.detail.clear();
  return BeginRun(&st, std::move(record), *program, options, nullptr, listener, result);
}

Status CancelQueuedRun(store::Store& st, const store::RunRecord& queued, RunResult* result) {
  store::RunRecord record = queued;
  record.status = store::RunStatus::kCancelled;
  record.detail = "cancelled before it started";
  record.updated_ms = WallMs();
  result->record = record;
  return st.WriteRun(record);
}

Status ListQueues(const store::Store& st, std::vector<QueueInfo>* out) {
  std::map<std::string, QueueInfo> queues;
  std::vector<std::string> capped;
  if (Status s = st.ListCappedQueues(&capped); !s.ok()) return s;
  for (const std::string& name : capped) {
    Result<uint32_t> cap = st.ReadQueueCap(name);
    if (!cap.ok()) return InContext(cap.status(), "queue " + name);
    queues[name].cap = *cap;
  }
  for (const store::RunRecord& r : st.ListRuns([](const std::string&, const Status&) {})) {
    if (r.queue.empty()) continue;
    int64_t pid = 0;
    if (r.status == store::RunStatus::kQueued) ++queues[r.queue].queued;
    else if (r.status == store::RunStatus::kRunning && st.IsRunLive(r.id, &pid)) ++queues[r.queue].executing;
  }
  out->clear();
  for (auto& [name, info] : queues) {
    info.name = name;
    out->push_back(info);
  }
  return Status::Ok();
}

}  // namespace flow::runtime
