// StoreJournal: the durable side of every effect. Intent first (unsynced: a process crash
// keeps it, and the idempotency key comes from the effect's sequence number, not from the
// record); then the effect; output flushed; then one WriteBatch with the outcome, the VM
// header and the changed objects (synced in sync mode); then the checkpoint mark.
#include "runtime/journal.h"
#include "store/keys.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "vm/base/record.h"
#include "vm/value_ops.h"

namespace flow::runtime {

namespace {
int64_t MonotonicUs() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

// An effect's arguments or result as its history entry keeps them: whole, up to
// kHistoryValueCap bytes (then cut, ending in "...").
void KeepWhole(const std::string& json, std::string* out) {
  if (json.size() <= kHistoryValueCap) {
    out->assign(json);
    return;
  }
  out->assign(json, 0, kHistoryValueCap - 3);
  out->append("...");
}

// A test-only crash hook: FLOW_CRASH_AT=K:POINT kills the process with SIGKILL at POINT of
// the K-th effect, POINT being before-intent, after-intent, after-effect or after-checkpoint.

}  // namespace

void CrashPoint(uint64_t seq, std::string_view point) {
#ifndef FLOW_TEST_HOOKS
  (void)seq, (void)point;  // built without the hook (-DFLOW_TEST_HOOKS=OFF): FLOW_CRASH_AT is ignored
#else
  static const std::pair<uint64_t, std::string> spec = [] {
    const char* env = std::getenv("FLOW_CRASH_AT");
    std::string s = env ? env : "";
    size_t colon = s.find(':');
    if (colon == std::string::npos) return std::pair<uint64_t, std::string>{0, ""};
    return std::pair<uint64_t, std::string>{std::strtoull(s.substr(0, colon).c_str(), nullptr, 10),
                                            s.substr(colon + 1)};
  }();
  if (seq == spec.first && point == spec.second) {
    std::fflush(stdout);
    std::fflush(stderr);
    kill(getpid(), SIGKILL);
  }
#endif
}

StoreJournal::StoreJournal(store::RunDb* db, store::CheckpointMark* mark, RunHost* host, std::string run_id, bool sync,
                           uint64_t checkpoint)
    : db_(db),
      mark_(mark),
      host_(host),
      run_id_(std::move(run_id)),
      sync_(sync),
      checkpoint_(checkpoint),
      wall_minus_steady_us_(WallMs() * 1000 - MonotonicUs()),
      trace_(LiveTrace::FromEnvironment(run_id_, [host](std::string_view m) { host->Warn(m); })) {
  unsettled_bytes_ = db->replayed_log_bytes();
}

Status StoreJournal::BeforeEffect(VM& vm, uint64_t seq, uint16_t builtin, const Value* args, int argc) {
  CrashPoint(seq, "before-intent");
  if (entry_open_) waiting_[entry_.seq] = {entry_, started_us_};  // it waits while this one runs
  entry_open_ = true;
  entry_.seq = seq;
  entry_.state = HistoryEntry::State::kIntent;
  entry_.effect = GetBuiltinInfo(builtin).name;
  entry_.task = vm.task_path();
  // RUN/n (the top level's n-th effect), RUN/2.5/n (a task's), or RUN/KEY/n inside step
  // KEY (its n-th effect): stable across resumes, whatever the order tasks ran in.
  entry_.idempotency_key = !step_key_run_.empty() && vm.effect_in_step() ? step_key_run_ : run_id_;
  entry_.idempotency_key += '/';
  if (vm.effect_key().empty())  // not from a running VM's effect (tests)
    entry_.idempotency_key += std::to_string(seq);
  else
    entry_.idempotency_key += vm.effect_key();
  host_->set_key(entry_.idempotency_key);
  // The arguments as one JSON list: its hash is the digest, its head the preview.
  scratch_.assign("[");
  std::string error;
  for (int i = 0; i < argc; ++i) {
    if (i) scratch_.push_back(',');
    if (!EncodeJson(vm.heap(), args[i], true, &scratch_, &error)) scratch_ += "\"<unencodable>\"";
  }
  scratch_.push_back(']');
  // The arguments' strings are read now: one of the restored state found damaged stops the
  // run before the effect runs on it.
  if (!vm.heap().string_error().ok()) return vm.heap().string_error();
  entry_.args_digest = Checksum(scratch_);
  KeepWhole(scratch_, &entry_.args_preview);
  entry_.result_digest = 0;
  entry_.duration_us = 0;
  entry_.result_preview.clear();
  entry_.pre_state.clear();
  started_us_ = MonotonicUs();
  entry_.started_us = started_us_ + wall_minus_steady_us_;
  entry_.started_ms = now_ms_ = entry_.started_us / 1000;
  // The same effect in flight before the crash (the same key: its task and its count; the
  // tasks may have begun their effects in another order since, so not by number).
  in_flight_ = HistoryEntry{};
  if (auto it = resumed_in_flight_.find(entry_.idempotency_key);
      it != resumed_in_flight_.end() && it->second.effect == entry_.effect) {
    in_flight_ = std::move(it->second);
    resumed_in_flight_.erase(it);
  }
  if (in_flight_.seq != 0 && (entry_.effect == "sleep" || entry_.effect == "signal.wait")) {
    // The same wait, begun before the crash or the suspension: it keeps its original
    // start (a sleep's timer ends where it would have), and its duration counts from it.
    if (entry_.effect == "sleep") host_->SetWaitOrigin(in_flight_.started_ms);
    entry_.started_ms = in_flight_.started_ms;
    entry_.started_us = in_flight_.started_us;
    started_us_ = in_flight_.started_us - wall_minus_steady_us_;
  }
  // Only actions on the world need their intent on record: a read or an output in flight
  // at a crash simply runs again, and nothing is lost by not knowing it was started.
  if (GetBuiltinInfo(builtin).effect == EffectKind::kExternal) {
    store::Batch batch;
    // Made again under another number: its earlier intent is this one.
    if (in_flight_.seq != 0 && in_flight_.seq != seq) batch.Delete(HistoryKey(in_flight_.seq));
    batch.Put(HistoryKey(seq), EncodeHistoryEntry(entry_));
    if (Status s = db_->Write(batch, false); !s.ok()) return s;
  }
  CrashPoint(seq, "after-intent");
  return Status::Ok();
}

Status StoreJournal::AfterEffect(VM& vm, uint64_t seq, uint16_t builtin, Value outcome, bool raised) {
  // Output that could not be written stops the run here: the print stays undone.
  if (Status s = host_->Flush(); !s.ok()) return s;
  CrashPoint(seq, "after-effect");
  if (seq != entry_.seq || !entry_open_) {  // a task's wait that ended while others ran
    if (entry_open_) waiting_[entry_.seq] = {entry_, started_us_};
    if (auto it = waiting_.find(seq); it != waiting_.end()) {
      entry_ = it->second.entry;
      started_us_ = it->second.started_us;
      waiting_.erase(it);
    } else if (!ResumedWait(seq, builtin)) {  // no intent on record (an output, a read): a fresh entry
      entry_ = HistoryEntry{};
      entry_.seq = seq;
      entry_.effect = GetBuiltinInfo(builtin).name;
      started_us_ = MonotonicUs();
      entry_.started_us = started_us_ + wall_minus_steady_us_;
      entry_.started_ms = entry_.started_us / 1000;
    }
  }
  entry_open_ = false;
  entry_.duration_us = MonotonicUs() - started_us_;
  entry_.state = raised ? HistoryEntry::State::kRaised : HistoryEntry::State::kDone;
  entry_.pre_state.clear();  // needed only while the effect is in flight
  scratch_.clear();
  std::string error;
  if (!EncodeJson(vm.heap(), outcome, true, &scratch_, &error)) scratch_ = "\"<unencodable>\"";
  entry_.result_digest = Checksum(scratch_);
  if (raised && outcome.tag == Tag::kError) {
    const ErrorObj* e = vm.heap().Get<ErrorObj>(outcome.ref);
    entry_.result_preview = e->kind + ": " + e->message;
  } else {
    KeepWhole(scratch_, &entry_.result_preview);
  }
  batch_.Clear();
  std::string key = HistoryKey(seq);
  EncodeHistoryEntryInto(entry_, &record_buf_);
  batch_.Put(key, record_buf_);
  if (keep_last_batch_) last_batch_.assign(1, {key, record_buf_});
  if (Status s = WriteCheckpoint(vm, false, &batch_); !s.ok()) return s;
  if (trace_) trace_->Add(entry_);  // recorded: its span may go out
  CrashPoint(seq, "after-checkpoint");
  return Status::Ok();
}

// A wait that began before this process restored the run (its task's timer was in the
// checkpoint): its entry is the intent on record.
bool StoreJournal::ResumedWait(uint64_t seq, uint16_t builtin) {
  std::string raw;
  HistoryEntry e;
  if (!db_->Get(HistoryKey(seq), &raw).ok() || !DecodeHistoryEntry(raw, &e).ok() ||
      e.effect != GetBuiltinInfo(builtin).name)
    return false;
  entry_ = e;
  started_us_ = e.started_us - wall_minus_steady_us_;
  return true;
}

Status StoreJournal::Suspending(VM& vm) {
  batch_.Clear();
  if (Status s = host_->Flush(); !s.ok()) return s;
  return WriteCheckpoint(vm, false, &batch_);
}

// The intent again, now with the pre-state: written (unsynced, like the intent) before
// the effect changes anything, so a process crash after the change always finds it.
Status StoreJournal::RecordPreState(VM& vm, std::string_view pre_state) {
  entry_.pre_state.assign(pre_state);
  store::Batch batch;
  batch.Put(HistoryKey(entry_.seq), EncodeHistoryEntry(entry_));
  return db_->Write(batch, false);
}

const std::string* StoreJournal::ResumedPreState(VM& vm) {
  bool same = in_flight_.seq != 0 && in_flight_.effect == entry_.effect &&
              in_flight_.args_digest == entry_.args_digest;
  return same && !in_flight_.pre_state.empty() ? &in_flight_.pre_state : nullptr;
}

// Step events (store::StepEventKey): they sort among the effects they happened between.
// Value: a history entry whose effect is "step" or "step done", with the key as its
// idempotency key and the duration.
void StoreJournal::OnStep(VM& vm, const std::string& key, bool completed, int64_t duration_ms) {
  HistoryEntry e;
  e.seq = vm.effects_done();
  e.effect = completed ? "step done" : "step";
  e.task = vm.task_path();
  e.state = HistoryEntry::State::kDone;
  e.idempotency_key = key;
  e.args_preview = "[\"" + key + "\"]";
  // To the microsecond when this process saw it begin; else from the VM's duration (ms).
  const int64_t now_us = MonotonicUs() + wall_minus_steady_us_;
  std::string open_key = e.task + '\0' + key;
  if (host_->virtual_time()) {  // the VM's duration is on the run's clock: keep it
    e.started_us = completed ? now_us - duration_ms * 1000 : now_us;
  } else if (!completed) {
    open_steps_[open_key] = now_us;
    e.started_us = now_us;
  } else if (auto it = open_steps_.find(open_key); it != open_steps_.end()) {
    e.started_us = it->second;
    open_steps_.erase(it);
  } else {
    e.started_us = now_us - duration_ms * 1000;
  }
  e.started_ms = e.started_us / 1000;
  e.duration_us = !completed ? 0 : host_->virtual_time() ? duration_ms * 1000 : now_us - e.started_us;
  step_events_.emplace_back(store::StepEventKey(vm.effects_done(), step_event_count_++), EncodeHistoryEntry(e));
  if (trace_) trace_->Add(e);
}

void StoreJournal::RunStopped(const store::RunRecord& record) {
  if (trace_) trace_->RunStopped(record, db_);
}

void StoreJournal::OnStepReused(VM& vm, const std::string& key) {
  if (inherited_.erase(key) == 0) return;
  HistoryEntry e;
  e.effect = "step reused";
  e.idempotency_key = key;
  e.args_preview = "[\"" + key + "\"]";
  e.result_preview = "the value step \"" + key + "\" had in run " + origin_run_ + " (not run again)";
  e.started_ms = WallMs();
  AddEvent(vm, std::move(e));
}

void StoreJournal::AddEvent(VM& vm, HistoryEntry e) {
  e.seq = vm.effects_done();
  e.task = vm.task_path();
  e.state = HistoryEntry::State::kDone;
  step_events_.emplace_back(store::StepEventKey(vm.effects_done(), step_event_count_++), EncodeHistoryEntry(e));
}

Status StoreJournal::ContinueStepEvents(uint64_t effects_done) {
  std::string prefix = store::StepEventKey(effects_done, 0);
  prefix.resize(prefix.size() - 4);  // without n
  return db_->Scan(prefix, [&](std::string_view key, std::string_view) {
    uint32_t n = 0;
    for (size_t i = key.size() - 4; i < key.size(); ++i) n = n << 8 | static_cast<uint8_t>(key[i]);
    step_event_count_ = std::max(step_event_count_, n + 1);
    return true;
  });
}

Status StoreJournal::Flush() {
  if (step_events_.empty()) return Status::Ok();
  batch_.Clear();
  for (const auto& [k, v] : step_events_) batch_.Put(k, v);
  step_events_.clear();
  return db_->Write(batch_, sync_);
}

Status StoreJournal::Sync() {
  if (sync_) return Status::Ok();  // each checkpoint was synced
  store::Batch empty;
  return db_->Write(empty, true);  // syncs the log, and what it holds
}

Status StoreJournal::Settle() {
  if (unsettled_bytes_ < kSettleBytes) return Status::Ok();
  unsettled_bytes_ = 0;
  return db_->MoveLogToTable();
}

Status StoreJournal::OnceStepStarted(VM& vm) {
  // Durable before the body runs, whatever the durability mode: resuming from here (or
  // from any checkpoint inside the step) raises `in_doubt` instead of running it again.
  batch_.Clear();
  bool sync = sync_;
  sync_ = true;
  Status s = WriteCheckpoint(vm, false, &batch_);
  sync_ = sync;
  return s;
}

namespace {

// A checkpoint's changes as versions of one batch (docs/checkpoint.md, "Kept
// checkpoints"): each record sealed where the VM encoded it, a freed object or chunk as a
// tombstone (an empty value); the base keys written listed in `change_list`.
class BatchDelta : public CheckpointDelta {
 public:
  BatchDelta(store::Batch* batch, uint32_t checkpoint, std::string* change_list,
             std::vector<std::pair<std::string, std::string>>* copy, std::function<void()> spill)
      : batch_(batch), checkpoint_(checkpoint), change_list_(change_list), copy_(copy), spill_(std::move(spill)) {}
  void Freed(uint32_t id) override { Write(ObjectKey(id), ""); }
  void DroppedChunks(uint32_t id, uint32_t from, uint32_t to) override {
    for (uint32_t c = from; c < to; ++c) Write(store::ListChunkKey(id, c), "");
  }
  void Put(uint32_t id, uint32_t chunk, std::string* record) override {
    FinishRecordAt(kRunDbRecordVersion, record->data(), record->size());
    Write(chunk == kObject ? ObjectKey(id) : store::ListChunkKey(id, chunk), *record);
  }

 private:
  void Write(const std::string& base, std::string_view value) {
    std::string key = store::VersionedKey(base, checkpoint_);
    if (checkpoint_ == store::kOnlyVersion && value.empty()) {
      batch_->Delete(key);  // the only version: nothing to keep of a freed object
      return;
    }
    batch_->Put(key, value);
    PutFixed8(change_list_, value.empty() ? 1 : 0);  // a tombstone?
    PutBytes(change_list_, base);
    if (copy_) copy_->emplace_back(std::move(key), value);
    if (spill_ && batch_->bytes() >= StoreJournal::kSplitBytes) spill_();
  }
  store::Batch* batch_;
  uint32_t checkpoint_;
  std::string* change_list_;
  std::vector<std::pair<std::string, std::string>>* copy_;  // the bench's copy of the batch, or null
  std::function<void()> spill_;  // writes what the batch holds so far (null: one batch)
};

}  // namespace

// With only the last checkpoint kept, every key has one version, kOnlyVersion, rewritten
// in place: no change lists, no reads, no deletes of older versions.
uint32_t StoreJournal::VersionFor(uint32_t checkpoint) const { return keep_ == 1 ? store::kOnlyVersion : checkpoint; }

uint32_t StoreJournal::KeepLast() const {
  if (keep_ == store::kKeepAllCheckpoints) return 0;
  if (keep_ == store::kKeepDefault) return bytes_kept_ < store::kKeepAllUpToBytes ? 0 : store::kKeepAfterCap;
  return keep_;
}

// Forgets the checkpoints that fall out of the kept window once `checkpoint` is written:
// for each checkpoint x up to the oldest kept one, every version older than x of a key x
// wrote is deleted (no kept checkpoint reads it any more), and a tombstone x wrote with them.
Status StoreJournal::Prune(uint32_t checkpoint, store::Batch* batch) {
  if (keep_ == 1 || keep_ == store::kKeepAllCheckpoints) return Status::Ok();  // in place (VersionFor); never
  const uint32_t last = KeepLast();
  if (last == 1) return PruneOne(checkpoint, change_list_, batch);  // only this one is kept
  // A run that may prune (the default may, past its cap) lists what each checkpoint wrote.
  batch->Put(store::ChangeListKey(checkpoint), SealRecord(kRunDbRecordVersion, change_list_));
  if (last == 0 || checkpoint < last) return Status::Ok();
  const uint32_t oldest_kept = checkpoint - last + 1;
  if (!pruned_known_) {  // after a resume: the oldest change list left says how far
    pruned_through_ = oldest_kept - 1;
    Status s = db_->Scan(store::kChangeListPrefix, [&](std::string_view k, std::string_view) {
      pruned_through_ = store::CheckpointOfChangeListKey(k) - 1;
      return false;
    });
    if (!s.ok()) return s;
    pruned_known_ = true;
  }
  // At most kPruneStep checkpoints a write: when the default's cap is first passed, the
  // checkpoints kept until then go over the next writes, not in one long one.
  constexpr uint64_t kPruneStep = 64;
  const uint64_t until = std::min<uint64_t>(oldest_kept, pruned_through_ + kPruneStep);
  for (uint64_t x = pruned_through_ + 1; x <= until; ++x) {
    // The change list before x is of a checkpoint no longer kept, itself pruned.
    if (x > 1) batch->Delete(store::ChangeListKey(static_cast<uint32_t>(x - 1)));
    std::string raw;
    Status s = db_->Get(store::ChangeListKey(static_cast<uint32_t>(x)), &raw);
    if (s.IsNotFound()) continue;  // never written (a checkpoint of a `last` stretch)
    std::string_view list;
    if (s.ok()) s = OpenRecord(raw, kRunDbRecordVersion, fmt::format("the change list of checkpoint {}", x), &list);
    if (!s.ok()) return s;
    if (s = PruneOne(static_cast<uint32_t>(x), list, batch); !s.ok()) return s;
  }
  pruned_through_ = std::max(pruned_through_, until);
  return Status::Ok();
}

Status StoreJournal::PruneOne(uint32_t x, std::string_view change_list, store::Batch* batch) {
  auto drop_older = [&](std::string_view base) {
    return db_->ScanVersionsBefore(base, x, [&](std::string_view key, std::string_view) {
      batch->Delete(key);
      return true;
    });
  };
  if (Status s = drop_older(kStateKey); !s.ok()) return s;
  Reader r(change_list);
  while (!r.at_end() && !r.failed()) {
    const bool tombstone = r.U8() == 1;
    std::string_view base = r.Bytes();
    if (Status s = drop_older(base); !s.ok()) return s;
    // A tombstone with nothing older is the same as no key at all.
    if (tombstone) batch->Delete(store::VersionedKey(base, x));
  }
  return r.failed() ? Status::Corruption("a change list of the run database is malformed") : Status::Ok();
}

Status StoreJournal::WriteCheckpoint(VM& vm, bool full, store::Batch* batch) {
  if (!vm.heap().string_error().ok()) return vm.heap().string_error();  // never a state built on it
  if (checkpoint_ + 1 >= store::kOnlyVersion) return Status::InvalidArgument("the run has written 2^32 checkpoints");
  const uint32_t checkpoint = static_cast<uint32_t>(checkpoint_ + 1);
  change_list_.clear();
  // A big checkpoint (a heap built up between two effects) goes in batches of about
  // kSplitBytes, heap records first and everything else (the history entry, the state
  // record) in the last, so that replaying the log after a crash does not assemble and
  // copy one batch of megabytes (docs/checkpoint.md, "Resume cost"). Records carry the new
  // version, so none overwrites what the previous checkpoint reads; the key `p` says which
  // version is unfinished until the last batch deletes it with the state record, and a
  // writable open drops the records of one a crash cut short. Runs that keep one version
  // rewrite their keys in place: one batch.
  const uint32_t version = VersionFor(checkpoint);
  size_t spilled_bytes = 0;
  Status spill_error;
  std::function<void()> spill;
  if (version != store::kOnlyVersion)
    spill = [&] {
      if (!spill_error.ok()) return records_.Clear();  // the checkpoint fails: write nothing more
      if (spilled_bytes == 0) {
        std::string v;
        for (int i = 3; i >= 0; --i) v.push_back(static_cast<char>(version >> (8 * i)));
        records_.Put(store::kUnfinishedCheckpointKey, v);
      }
      spilled_bytes += records_.bytes();
      // Synced as the last batch is: LevelDB may start a new log between the batches, and
      // syncing the new one does not sync the old.
      if (Status s = db_->Write(records_, sync_); !s.ok() && spill_error.ok()) spill_error = s;
      records_.Clear();
      CrashPoint(vm.effects_done(), "mid-checkpoint");
    };
  records_.Clear();
  BatchDelta delta(&records_, version, &change_list_, keep_last_batch_ ? &last_batch_ : nullptr, std::move(spill));
  vm.EncodeCheckpoint(full, &header_, &delta);
  if (!spill_error.ok()) return spill_error;
  // A full checkpoint reads every string first: one found damaged there is not written
  // (batches already written stay unfinished, and are dropped at the next open).
  if (!vm.heap().string_error().ok()) return vm.heap().string_error();
  batch->Append(records_);
  if (spilled_bytes > 0) batch->Delete(store::kUnfinishedCheckpointKey);
  // The time of the effect's start stands for the checkpoint's (one clock read per effect).
  host_->AddToCheckpoint(batch);
  for (const auto& [k, v] : step_events_) batch->Put(k, v);
  step_events_.clear();
  EncodeStateRecordInto(++checkpoint_, full ? WallMs() : now_ms_, host_->virtual_now_ms(), header_, &record_buf_);
  std::string state_key = store::VersionedKey(kStateKey, VersionFor(checkpoint));
  batch->Put(state_key, record_buf_);
  if (keep_last_batch_) last_batch_.emplace_back(std::move(state_key), record_buf_);
  if (Status s = Prune(checkpoint, batch); !s.ok()) return s;
  last_checkpoint_bytes_ = spilled_bytes + batch->bytes();
  unsettled_bytes_ += last_checkpoint_bytes_;
  bytes_kept_ += last_checkpoint_bytes_;
  if (Status s = db_->Write(*batch, sync_); !s.ok()) return s;
  live_effects_.store(vm.effects_done(), std::memory_order_relaxed);
  live_checkpoint_.store(checkpoint_, std::memory_order_relaxed);
  // The mark guards acknowledged (synced) checkpoints; async runs do not bind to it.
  return sync_ ? mark_->Write(checkpoint_) : Status::Ok();
}

}  // namespace flow::runtime
