#include "runtime/shared_limits.h"

#include <chrono>
#include <thread>

#include "runtime/runtime.h"
#include "store/keys.h"
#include "vm/limit.h"

namespace flow::runtime {

namespace {

// Reads, changes and writes back the state of limit `name` under its lock.
Status UpdateLimit(store::Store& st, const std::string& name, const std::function<void(LimitState*)>& change) {
  Status decode_error;
  Status s = st.UpdateShared(store::LimitName(name), [&](std::string* bytes) {
    LimitState state;
    if (!bytes->empty() && !state.Decode(*bytes)) {
      decode_error = Status::Corruption("the state of limit " + name + " is malformed");
      return;
    }
    change(&state);
    *bytes = state.Encode();
  });
  return s.ok() ? decode_error : s;
}

// A holder or waiter of another run frees its place once that run can no longer go on:
// it completed, failed (other than a budget stop, which may be resumed), was cancelled,
// or was deleted. A crashed or suspended run keeps it: resumed, it goes on from there.
LimitState::World WorldOf(store::Store& st, const std::string& self) {
  LimitState::World world;
  world.ended = [&st, &self](const std::string& run) {
    if (run == self) return false;
    Result<store::RunRecord> r = st.ReadRun(run);
    if (!r.ok()) return r.status().IsNotFound();  // damaged: kept, rather than guessed free
    return !CanResume(*r);
  };
  // Trying now: it tried lately, and its run is executing (never ask the lock of our own
  // run: closing a descriptor of its lock file would drop the lock this process holds).
  world.present = [&st, &self](const LimitState::Entry& e) {
    if (WallMs() - e.seen_ms > LimitState::kPresentMs) return false;
    int64_t pid = 0;
    return e.run == self || st.IsRunLive(e.run, &pid);
  };
  return world;
}

}  // namespace

Status EnterSharedLimit(const LimitCaller& caller, const std::string& name, const VmHost::LimitPolicy& policy,
                        const std::string& task, uint32_t depth, bool* admitted, int64_t* retry_at_ms) {
  LimitState::Decision d;
  const LimitState::World world = WorldOf(*caller.store, caller.run_id);
  Status s = UpdateLimit(*caller.store, name, [&](LimitState* state) {
    d = state->Enter({caller.run_id, task, depth}, caller.now_ms, WallMs(), policy, world);
  });
  if (!s.ok()) return s;
  *admitted = d.verdict == LimitState::Verdict::kAdmitted;
  *retry_at_ms = LimitState::RetryAt(d, caller.now_ms);
  // Under --virtual-time the run's clock jumps to the next try at once: behind another
  // process, which runs on real time, the try waits for real, as a poll would.
  if (!*admitted && caller.virtual_time && d.verdict != LimitState::Verdict::kRate && d.blocker != caller.run_id)
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(*retry_at_ms - caller.now_ms, 200)));
  return Status::Ok();
}

Status LeaveSharedLimit(const LimitCaller& caller, const std::string& name, const std::string& task, uint32_t depth) {
  return UpdateLimit(*caller.store, name, [&](LimitState* state) { state->Leave({caller.run_id, task, depth}); });
}

}  // namespace flow::runtime
