// Queues of the store: a cap on how many runs of a queue execute at once, across every
// process on the store. A process executes a run of a capped queue only while it holds
// one of the queue's N slots (StoreImpl::TryTakeQueueSlot), so at most N run at once
// whichever processes, on whichever machines, run them. A folder store keeps a cap in
// queues/Q/config and its slots as files queues/Q/slot.0 .. slot.N-1, held with flock
// (released by the kernel when the process dies); a PostgreSQL store keeps both as rows,
// a slot held under a lease as a run is. Names in store/keys.h; formats in
// docs/checkpoint.md ("Queues", "The PostgreSQL store").
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "vm/base/status.h"

namespace flow::store {

// Queue names are as run ids: letters, digits, `.`, `_`, `-`; 1 to 64; not starting with `.` or `-`.
bool IsValidQueueName(std::string_view name);

// One slot of a queue, held until destroyed (or its process dies).
class QueueSlot {
 public:
  virtual ~QueueSlot() = default;
  QueueSlot(const QueueSlot&) = delete;
  QueueSlot& operator=(const QueueSlot&) = delete;
  uint32_t index() const { return index_; }

 protected:
  explicit QueueSlot(uint32_t index) : index_(index) {}

 private:
  uint32_t index_;
};

}  // namespace flow::store
