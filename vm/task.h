// One thread of execution of a run: its value stack, frames, handlers and what it waits
// for. The VM (the run-wide half: globals, heap, constants, steps, budgets, journal) holds
// its tasks beside it, as Lua keeps a lua_State per coroutine beside one global_State.
// The running task's record lives in the VM itself (VM::task_), so the dispatch loop
// reaches its fields as it reached the VM's own; the others' are in their TaskObj on the
// heap (vm/heap.h), and a switch moves records (vectors move, not values).
#pragma once
#include <cstdint>

#include <string>
#include <vector>

#include "vm/value.h"

namespace flow {

struct Frame {
  uint32_t function;  // index into Module::functions
  uint32_t closure;   // heap id of the ClosureObj, or kNoClosure for the top level
  uint32_t pc;        // saved when the frame is not running
  uint32_t base;      // stack index of slot 0 (the callee)
};
inline constexpr uint32_t kNoClosure = UINT32_MAX;
inline constexpr uint32_t kNoTask = UINT32_MAX;  // no task (a TaskObj's heap id otherwise)

// An open try, retry, timeout, step, breaker or limit, innermost last. Plain data, like everything
// the VM holds: it is part of every checkpoint. Each kind has fields of its own, each with
// one meaning; a kind leaves the others' at zero, and a checkpoint writes only its own
// (docs/checkpoint.md, "VM header"). The kinds' values are on disk: do not change them.
enum class HandlerKind : uint8_t { kTry = 0, kRetry = 1, kTimeout = 2, kStep = 3, kBreaker = 4, kLimit = 5 };
struct Handler {
  HandlerKind kind = HandlerKind::kTry;
  uint32_t frame_depth = 0;   // index of the frame that opened it
  uint32_t stack_height = 0;  // try: what an error cuts the stack to; retry: the body's start
                              // height; timeout, step, breaker, limit: the height with its operand
                              // (duration, key, name and options)
  // try
  uint32_t catch_pc = 0;  // where an error it takes goes on
  // retry
  uint32_t body_pc = 0;   // the body's start, where each attempt begins
  uint32_t attempts = 0;  // attempts begun (1 while the first runs)
  // The enclosing step's effects_done when the retry began. Each attempt counts its effects
  // from there again, so a retried call carries the same idempotency key as before.
  uint32_t step_effects_at_open = 0;
  uint32_t step_spawned_at_open = 0;  // likewise its tasks spawned: a retried spawn keeps its path
  // timeout
  int64_t deadline_ms = 0;  // absolute, on the run's clock
  // step
  uint32_t begin_pc = 0;      // its STEP_BEGIN (whose operand says `once`)
  uint32_t effects_done = 0;  // the next effect inside it is number effects_done + 1 (its key)
  uint32_t spawned = 0;       // tasks spawned inside it: the next is KEY:spawned+1 (its path)
  int64_t started_ms = 0;     // when it began, on the run's clock: its duration is in the history
  // The earliest deadline of the timeouts open at this handler's level (its own
  // included): derived when it is pushed (and on restore), never checkpointed, so that
  // opening and closing a handler is O(1) however deep they nest.
  int64_t deadline_in_force = INT64_MAX;
  // The index of the innermost step at this handler's level (itself, if a step), or -1:
  // derived in the same way, so that finding the step an effect or a retry belongs to is
  // O(1) however deep retries and timeouts nest (recursion through `retry` was quadratic).
  int32_t step_in_force = -1;

  static Handler Try(uint32_t depth, uint32_t height, uint32_t catch_pc) {
    Handler h{HandlerKind::kTry, depth, height};
    h.catch_pc = catch_pc;
    return h;
  }
  static Handler Retry(uint32_t depth, uint32_t height, uint32_t body_pc, uint32_t step_effects_at_open,
                       uint32_t step_spawned_at_open) {
    Handler h{HandlerKind::kRetry, depth, height};
    h.body_pc = body_pc;
    h.attempts = 1;
    h.step_effects_at_open = step_effects_at_open;
    h.step_spawned_at_open = step_spawned_at_open;
    return h;
  }
  static Handler Timeout(uint32_t depth, uint32_t height, int64_t deadline_ms) {
    Handler h{HandlerKind::kTimeout, depth, height};
    h.deadline_ms = deadline_ms;
    return h;
  }
  static Handler Step(uint32_t depth, uint32_t height, uint32_t begin_pc, int64_t started_ms) {
    Handler h{HandlerKind::kStep, depth, height};
    h.begin_pc = begin_pc;
    h.started_ms = started_ms;
    return h;
  }
  static Handler Breaker(uint32_t depth, uint32_t height) { return {HandlerKind::kBreaker, depth, height}; }
  static Handler Limit(uint32_t depth, uint32_t height) { return {HandlerKind::kLimit, depth, height}; }
};

// Why a run suspended: what it waits for, and until when.
struct Suspension {
  int64_t wake_ms = 0;     // the timer's or the wait's timeout end (run's clock); 0: none
  std::string signal;      // the signal waited for, or ""
  bool stopped = false;    // the host asked the run to stop (a worker draining): due at once
};

// An effect of a task that is in flight while other tasks run: a sleep, whose end is a
// timer of the scheduler. Checkpointed with the task, so a resumed run keeps the timer.
struct InFlightEffect {
  uint64_t seq = 0;           // its number in the run's history; 0: none
  uint16_t builtin = 0;
  static constexpr uint32_t kNoResult = UINT32_MAX;
  uint32_t result_slot = 0;   // the stack index its result goes to (kNoResult: a retry's wait)
  uint32_t call_pc = 0;       // where it was called
  int32_t step = -1;          // the handler index of the step whose effect it is, or -1
  int64_t wake_ms = 0;        // when it ends, on the run's clock
  bool cut_by_deadline = false;  // it ends at a timeout's deadline: it raises then
  // What ends it. A timer is checkpointed with the task; an operation of a Completions
  // source (an http transfer, an exec child) or a signal wait cannot outlive the process:
  // a checkpoint shows the task at the call, which a resumed run makes again, with the
  // same idempotency key.
  enum class Kind : uint8_t { kTimer, kOperation, kSignal };
  Kind kind = Kind::kTimer;
  uint64_t operation = 0;  // kOperation: the VM's id of it
  bool made_again() const { return kind != Kind::kTimer; }
};

struct Task {
  // The value stack, grown on demand (VM::GrowStack) up to VM::kStackCapacity: an idle task
  // holds a few KiB, not the 16 MiB a deep one may reach. Growing moves it: raw pointers
  // into it are re-derived after any call that may grow it (a Flow function's frame push).
  std::vector<Value> stack;
  uint32_t sp = 0;  // next free stack index
  std::vector<Frame> frames;
  std::vector<Handler> handlers;
  std::vector<uint32_t> open_upvalues;  // ids, sorted by slot
  Value pending_error = Value::Null();
  // The scope of the effect being run inside a step ("KEY/n"), or "".
  std::string effect_scope;
  bool effect_in_step = false;  // effect_scope names a step ("KEY/n"), not the task
  // An effect raised: checkpoint once the error has landed.
  bool effect_raised = false;
  uint16_t raised_builtin = 0;
  uint64_t raised_seq = 0;
  // Where that effect was called, with the handlers as they were: if no handler takes its
  // error, the checkpoint is that state, so a resumed run (after a budget stop) calls again.
  uint32_t raised_call_pc = 0;
  std::vector<Handler> raised_handlers;
  // Timeouts cut only the waits of the task they are in: the deadline derives from its
  // handlers.
  int64_t deadline = INT64_MAX;  // derived from the open timeouts
  uint32_t deadline_ticks = 0;   // back edges since the clock was last read
  bool resume_in_doubt = false;  // restored inside an open `once` step
  int64_t retry_wait_ms = 0;     // set by RetryAfterError
  uint64_t effects = 0;          // effects it began: its idempotency keys RUN/PATH/n
  uint32_t spawned = 0;          // tasks it spawned: their paths PATH.1, PATH.2, ...
  InFlightEffect in_flight;      // its effect waiting on a timer, if any
};

}  // namespace flow
