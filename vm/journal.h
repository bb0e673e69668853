// The VM's side of durability: it reports every effectful builtin call to an EffectJournal
// before and after it runs. The journal (runtime/) records the intent, then the result and
// a checkpoint of the VM in one atomic write. The VM knows nothing of the store.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "vm/base/status.h"
#include "vm/value.h"

namespace flow {

class VM;

class EffectJournal {
 public:
  virtual ~EffectJournal() = default;
  // The effect numbered `seq` (1-based, in order of execution) is about to run builtin
  // `builtin` with these arguments. A non-ok Status stops the run before the effect.
  virtual Status BeforeEffect(VM& vm, uint64_t seq, uint16_t builtin, const Value* args, int argc) = 0;
  // It returned `outcome` (raised == false) or raised the error `outcome`; the VM is at
  // the next instruction boundary, its state ready to be checkpointed.
  virtual Status AfterEffect(VM& vm, uint64_t seq, uint16_t builtin, Value outcome, bool raised) = 0;
  // Local effects (files) have no idempotency key, so they make themselves exactly once
  // with a pre-state: before changing the world, the running effect records what it is
  // about to change (opaque bytes it defines) with its intent. A non-ok Status: do not
  // change anything.
  virtual Status RecordPreState(VM& vm, std::string_view pre_state) { return Status::Ok(); }
  // The pre-state the running effect recorded before the run stopped, if this effect was
  // then in flight (the same effect, the same arguments); else null. The effect restores
  // it before doing its work again.
  virtual const std::string* ResumedPreState(VM& vm) { return nullptr; }
  // A `once` step is about to run its body: its start must be durable first, so that a
  // crash inside it is known on resume (in doubt) rather than run again.
  virtual Status OnceStepStarted(VM& vm) { return Status::Ok(); }
  // Every task waits on a long timer: the run suspends. Checkpoint its state, each task
  // with its effect in flight (the timers are part of it), so a resumed run keeps them.
  virtual Status Suspending(VM& vm) { return Status::Ok(); }
  // A step began or completed (with its duration on the run's clock), for the history.
  virtual void OnStep(VM& vm, const std::string& key, bool completed, int64_t duration_ms) {}
  // A step was entered whose value the run already had: it returns it without running.
  virtual void OnStepReused(VM& vm, const std::string& key) {}
};

}  // namespace flow
