// flow fork: a new run made from a kept checkpoint of another (time travel), optionally
// with variables changed, on the same bytecode; it then continues as a run of its own.
#include <fmt/format.h>
#include <unistd.h>

#include "runtime/journal.h"
#include "runtime/rerun.h"
#include "runtime/runtime.h"
#include "stdlib/stdlib.h"
#include "vm/base/coding.h"

namespace flow::runtime {

namespace {

// The host of the fork's first checkpoint: the VM is restored, changed and written, never
// run, so it needs only the source's clock (its state record keeps the run's clock).
class ForkHost : public RunHost {
 public:
  explicit ForkHost(int64_t virtual_now_ms) : virtual_now_ms_(virtual_now_ms) {}
  void WriteOutput(std::string_view) override {}
  int64_t NowMs() override { return 0; }
  bool EnvironmentValue(const std::string&, std::string* value) override {
    value->clear();  // a secret is stored by name and read again when the fork runs
    return true;
  }
  Status Flush() override { return Status::Ok(); }
  void set_key(const std::string&) override {}
  int64_t virtual_now_ms() const override { return virtual_now_ms_; }

 private:
  int64_t virtual_now_ms_;
};

// The history of `from` up to effect `effects` (its entries, and the step events before
// that effect's checkpoint), for the fork's own history: what was done before it was made.
Status CopyHistory(store::RunDb& from, uint64_t effects, store::Batch* batch) {
  Status s = from.Scan(store::kHistoryPrefix, [&](std::string_view key, std::string_view value) {
    HistoryEntry e;
    if (!DecodeHistoryEntry(value, &e).ok() || e.seq > effects) return true;  // damaged ones stay behind
    batch->Put(key, value);
    return true;
  });
  if (!s.ok()) return s;
  return from.Scan(store::kStepEventPrefix, [&](std::string_view key, std::string_view value) {
    Reader r(key.substr(1));
    uint64_t done = 0;
    for (int i = 0; i < 8; ++i) done = done << 8 | r.U8();
    // Events between effects N and N+1 carry N and came after the checkpoint of effect N.
    if (done < effects) batch->Put(key, value);
    return true;
  });
}

}  // namespace

Status ForkRun(const ForkOptions& options, RunListener* listener, RunResult* result) {
  *result = RunResult{};
  Result<store::Store> st = store::Store::Open(options.store_dir, false);
  if (!st.ok()) return st.status();
  if (!store::IsValidRunId(options.from)) return Status::InvalidArgument(fmt::format("`{}` is not a run id", options.from));
  const std::string id = options.run_id.empty() ? store::NewRunId() : options.run_id;
  result->run_id = id;
  if (!store::IsValidRunId(id))
    return Status::InvalidArgument(
        fmt::format("`{}` is not a valid run id (1 to 64 letters, digits, . _ -; not starting with - or .)", id));
  Result<store::RunRecord> source_record = st->ReadRun(options.from);
  if (!source_record.ok()) return source_record.status();
  Result<std::unique_ptr<store::RunLock>> source_lock = st->LockRun(options.from);
  if (!source_lock.ok()) return source_lock.status();

  // The source as of the checkpoint right after effect N (or its last).
  LoadedRun source;
  if (Status s = OpenRunToRead(*st, options.from, &source, options.at_effect); !s.ok()) {
    if (options.at_effect && s.IsNotFound())
      return Status::InvalidArgument(fmt::format("run {} has no effect {}: {}", options.from, *options.at_effect, s.message()));
    return s;
  }
  const uint64_t effects = source.vm->effects_done();
  if (options.at_effect && effects != *options.at_effect)
    return Status::InvalidArgument(fmt::format(
        "run {} no longer keeps its checkpoint after effect {} (its --keep-checkpoints); the next kept is after "
        "effect {}",
        options.from, *options.at_effect, effects));
  VM& vm = *source.vm;
  for (const auto& [name, json] : options.sets) {
    Value v;
    if (!stdlib::ParseJson(vm, json, &v))
      return Status::InvalidArgument(fmt::format("--set {}: `{}` is not valid JSON", name, json));
    if (vm.AssignVariable(name, v).empty())
      return Status::InvalidArgument(fmt::format("--set {}: the run has no variable `{}` there (flow inspect {} --at {} "
                                                 "shows its globals and locals)",
                                                 name, name, options.from, effects));
  }
  store::Batch history;
  if (Status s = CopyHistory(*source.db, effects, &history); !s.ok()) return s;

  // The new run, as a start makes one: folder, database with its first (whole) checkpoint
  // and the history it inherits, mark, then the record.
  if (Status s = st->CreateRunDir(id, options.run_id.empty()); !s.ok()) return s;
  Result<std::unique_ptr<store::RunLock>> lock = st->LockRun(id);
  if (!lock.ok()) return lock.status();
  store::RunRecord record = source.record;
  record.id = id;
  record.status = store::RunStatus::kRunning;
  record.created_ms = record.updated_ms = WallMs();
  record.effects = effects;
  record.pid = getpid();
  record.detail.clear();
  record.error_kind.clear();
  record.wake_ms = 0;
  record.waiting_signal.clear();
  record.signals_received = 0;
  const std::string context = "run " + id;
  {
    Result<std::unique_ptr<store::RunDb>> db = st->OpenRunDb(id, true);
    if (!db.ok()) return InContext(db.status(), context);
    Result<std::unique_ptr<store::CheckpointMark>> mark = st->OpenMark(id);
    if (!mark.ok()) return InContext(mark.status(), context);
    if (Status s = (*db)->Write(history, false); !s.ok()) return InContext(s, context);
    ForkHost host(source.virtual_now_ms);
    StoreJournal journal(db->get(), mark->get(), &host, id, true, 0);
    journal.set_keep(record.keep_checkpoints, 0);
    if (Status s = journal.ContinueStepEvents(effects); !s.ok()) return InContext(s, context);
    HistoryEntry made;  // after the history it inherits: where it came from
    made.effect = "fork";
    made.idempotency_key = options.from;
    made.args_preview = fmt::format("[\"{}\",{}]", options.from, effects);
    made.result_preview = fmt::format("made from run {} as it was after effect {}", options.from, effects);
    made.started_ms = WallMs();
    journal.AddEvent(vm, std::move(made));
    store::Batch first;
    if (Status s = journal.WriteCheckpoint(vm, true, &first); !s.ok()) return InContext(s, context);
    if (Status s = (*mark)->Sync(); !s.ok()) return InContext(s, context);
  }
  OriginRecord origin;
  origin.kind = "fork";
  origin.origin_run = options.from;
  origin.step_key_run = id;  // a fork takes keys of its own
  origin.origin_effect = effects;
  if (Status s = WriteOriginRecord(*st, id, origin); !s.ok()) return InContext(s, context);
  if (Status s = st->WriteRun(record); !s.ok()) return s;
  listener->RunForked(options.from, effects, id);
  // It goes on as any run whose process stopped after a checkpoint does.
  source = LoadedRun();
  source_lock->reset();
  lock->reset();
  return ResumeRun(options.store_dir, id, options.budgets, listener, result);
}

}  // namespace flow::runtime
