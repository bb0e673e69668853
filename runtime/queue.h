// Queued runs (flow submit) and queue caps. A queued run is a run folder with its record
// (status queued: its code by hash, its arguments, its queue) and no database yet;
// resuming it (ResumeRun: flow resume, a worker) starts it from the beginning. A run of a
// queue with a cap executes only while its process holds one of the queue's slots
// (store/queues.h), whether it starts or goes on after a wait; a suspended run holds none.
//
// For a worker: QueuedRunsOf (oldest first), QueuedRunReady, then ResumeRun, which says
// RunResult::Deferred if the run cannot start now after all (another process took the
// last slot in between).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "runtime/runtime.h"
#include "store/queues.h"
#include "store/store.h"

namespace flow::runtime {

// `flow submit`: stores `program` and creates its run, queued in `queue`, with the options
// flow run takes (budgets: the deadline counts from now, the submission). *record: the
// queued record. InvalidArgument if the id is taken.
Status SubmitRun(const StartOptions& options, const Module& program, const std::string& queue, store::RunRecord* record);
// Creates the queued run `record` (status queued; its code already in the store and
// named by record.code_hash, the caller holding the shared code lock or a record naming it).
// `generated_id`: record.id came from store::NewRunId (Store::CreateRunDir).
Status CreateQueuedRun(store::Store& st, store::RunRecord record, bool generated_id = false);

// The queued runs among `runs` (Store::ListRuns), oldest submission first.
std::vector<store::RunRecord> QueuedRunsOf(const std::vector<store::RunRecord>& runs);
// Has run `r` ended (completed, failed, cancelled)? Anything else may still run.
bool RunHasEnded(const store::RunRecord& r);
// Could queued run `r` start now: it is still queued (its record read again) and no
// process holds it, its queue has a free slot (or no cap), and the run it waits for
// (after_run), if any, has ended? A hint: ResumeRun decides.
bool QueuedRunReady(const store::Store& st, const store::RunRecord& r);

// For ResumeRun, under the run's lock: takes a slot of `r`'s queue if it has a cap (*slot
// then holds it; null if no cap), or sets result->deferred (queue full, or a queued run's
// after_run has not ended) and takes none.
Status TakeRunSlot(store::Store& st, const store::RunRecord& r, std::unique_ptr<store::QueueSlot>* slot,
                   RunResult* result);
// For ResumeRun, under the run's lock (and slot): starts queued run `id` from the
// beginning. If its record, read again now, is no longer queued (another process started
// it), sets result->refused with that record and does nothing.
Status StartQueuedRun(store::Store& st, const std::string& id, RunListener* listener, RunResult* result);

// For CancelRun, under the run's lock: queued run `queued` ends cancelled, never started.
Status CancelQueuedRun(store::Store& st, const store::RunRecord& queued, RunResult* result);

// flow queue list: a queue's cap (0: none), its runs executing now (held slots, when it
// has a cap) and queued.
struct QueueInfo {
  std::string name;
  uint32_t cap = 0;
  uint32_t executing = 0;
  uint64_t queued = 0;
};
// Every queue that has a cap or queued runs, by name.
Status ListQueues(const store::Store& st, std::vector<QueueInfo>* out);

}  // namespace flow::runtime
