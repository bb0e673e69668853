// Queues of the store: a cap on how many runs of a queue execute at once, across every
// process on the store. A capped queue Q has queues/Q/config (its cap) and slot files
// queues/Q/slot.0 .. slot.N-1: a process executes a run of Q only while it holds one of
// them (flock, exclusive, released by the kernel when the process dies), so at most N run
// at once whichever processes run them. Names in store/keys.h; formats in
// docs/checkpoint.md ("Queues").
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vm/base/status.h"

namespace flow::store {

// Queue names are as run ids: letters, digits, `.`, `_`, `-`; 1 to 64; not starting with `.` or `-`.
bool IsValidQueueName(std::string_view name);

// The cap of queue `queue` (0: none, the queue was never capped or its cap was removed).
Result<uint32_t> ReadQueueCap(const std::string& store_dir, const std::string& queue);
// Sets the cap (0 removes it). A lower cap than the runs executing now takes effect as
// they end: the slots past it are no longer taken.
Status WriteQueueCap(const std::string& store_dir, const std::string& queue, uint32_t cap);
// Every queue that has a config, in name order.
std::vector<std::string> ListCappedQueues(const std::string& store_dir);

// One slot of a queue, held until destroyed (or the process dies).
class QueueSlot {
 public:
  ~QueueSlot();
  QueueSlot(const QueueSlot&) = delete;
  QueueSlot& operator=(const QueueSlot&) = delete;
  uint32_t index() const { return index_; }

 private:
  friend Status TryTakeQueueSlot(const std::string&, const std::string&, uint32_t, std::unique_ptr<QueueSlot>*);
  QueueSlot(int fd, uint32_t index) : fd_(fd), index_(index) {}
  int fd_;
  uint32_t index_;
};

// Takes a free slot of the `cap` slots of `queue`: *slot is null if every one is held.
Status TryTakeQueueSlot(const std::string& store_dir, const std::string& queue, uint32_t cap,
                        std::unique_ptr<QueueSlot>* slot);
// How many of the `cap` slots of `queue` are held now (by processes executing its runs).
uint32_t CountHeldQueueSlots(const std::string& store_dir, const std::string& queue, uint32_t cap);

}  // namespace flow::store
