// StoreJournal: the durable side of every effect. Intent first (unsynced: a process crash
// keeps it, and the idempotency key comes from the effect's sequence number, not from the
// record); then the effect; output flushed; then one WriteBatch with the outcome, the VM
// header and the changed objects (synced in sync mode); then the checkpoint mark.
#include "runtime/journal.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "vm/base/record.h"
#include "vm/value_ops.h"

namespace flow::runtime {

namespace {

int64_t WallMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}
int64_t MonotonicUs() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

// A test-only crash hook: FLOW_CRASH_AT=K:POINT kills the process with SIGKILL at POINT of
// the K-th effect, POINT being before-intent, after-intent, after-effect or after-checkpoint.

std::string Preview(const Heap& heap, Value v) {
  std::string text, error;
  if (!EncodeJson(heap, v, true, &text, &error)) text = "<" + error + ">";
  if (text.size() > 200) text = text.substr(0, 197) + "...";
  return text;
}

uint64_t Digest(const Heap& heap, const Value* values, int n) {
  std::string text, error;
  for (int i = 0; i < n; ++i) {
    if (!EncodeJson(heap, values[i], true, &text, &error)) text += "<unencodable>";
    text.push_back('\n');
  }
  return Checksum(text);
}

}  // namespace

void CrashPoint(uint64_t seq, std::string_view point) {
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
}

StoreJournal::StoreJournal(store::RunDb* db, store::CheckpointMark* mark, RunHost* host, std::string run_id, bool sync,
                           uint64_t checkpoint)
    : db_(db), mark_(mark), host_(host), run_id_(std::move(run_id)), sync_(sync), checkpoint_(checkpoint) {}

Status StoreJournal::BeforeEffect(VM& vm, uint64_t seq, uint16_t builtin, const Value* args, int argc) {
  CrashPoint(seq, "before-intent");
  entry_ = HistoryEntry{};
  entry_.seq = seq;
  entry_.effect = std::string(GetBuiltinInfo(builtin).name);
  entry_.idempotency_key = fmt::format("{}/{}", run_id_, seq);
  host_->set_key(entry_.idempotency_key);
  entry_.args_digest = Digest(vm.heap(), args, argc);
  // Preview the arguments as a JSON list without allocating on the VM's heap.
  std::string preview = "[";
  for (int i = 0; i < argc; ++i) preview += (i ? "," : "") + Preview(vm.heap(), args[i]);
  entry_.args_preview = preview.size() > 200 ? preview.substr(0, 197) + "..." : preview + "]";
  entry_.started_ms = WallMs();
  started_us_ = MonotonicUs();
  store::Batch batch;
  batch.Put(HistoryKey(seq), EncodeHistoryEntry(entry_));
  if (Status s = db_->Write(batch, false); !s.ok()) return s;
  CrashPoint(seq, "after-intent");
  return Status::Ok();
}

Status StoreJournal::AfterEffect(VM& vm, uint64_t seq, uint16_t builtin, Value outcome, bool raised) {
  host_->Flush();
  CrashPoint(seq, "after-effect");
  entry_.duration_us = MonotonicUs() - started_us_;
  entry_.state = raised ? HistoryEntry::State::kRaised : HistoryEntry::State::kDone;
  entry_.result_digest = Digest(vm.heap(), &outcome, 1);
  if (raised && outcome.tag == Tag::kError) {
    const ErrorObj* e = vm.heap().Get<ErrorObj>(outcome.ref);
    entry_.result_preview = e->kind + ": " + e->message;
  } else {
    entry_.result_preview = Preview(vm.heap(), outcome);
  }
  store::Batch batch;
  batch.Put(HistoryKey(seq), EncodeHistoryEntry(entry_));
  if (Status s = WriteCheckpoint(vm, false, &batch); !s.ok()) return s;
  CrashPoint(seq, "after-checkpoint");
  return Status::Ok();
}

Status StoreJournal::WriteCheckpoint(VM& vm, bool full, store::Batch* batch) {
  CheckpointDelta delta;
  vm.EncodeCheckpoint(full, &delta);
  for (uint32_t id : delta.freed) batch->Delete(ObjectKey(id));
  for (const auto& [id, bytes] : delta.objects) batch->Put(ObjectKey(id), SealRecord(kRunDbRecordVersion, bytes));
  StateRecord state{++checkpoint_, WallMs(), host_->virtual_now_ms(), std::move(delta.header)};
  batch->Put(kStateKey, EncodeStateRecord(state));
  last_checkpoint_bytes_ = batch->bytes();
  if (Status s = db_->Write(*batch, sync_); !s.ok()) return s;
  return mark_->Write(checkpoint_);
}

}  // namespace flow::runtime
