// Effects that proceed while other tasks run (stdlib's http transfers): started by a
// native, ended by whoever drives them (the host side), delivered to the VM's thread.
// The VM polls a source when every task waits, or between tasks; it never blocks in one.
#pragma once
#include <cstdint>
#include <vector>

namespace flow {

class Completions {
 public:
  virtual ~Completions() = default;
  // Drives the operations for at most `timeout_ms` (0: only what is ready), returning
  // sooner when one ends; appends the ids of those that ended.
  virtual void Poll(int64_t timeout_ms, std::vector<uint64_t>* ended) = 0;
  virtual size_t pending() const = 0;
  // A cancelled task's operation: stopped and forgotten.
  virtual void Abandon(uint64_t id) = 0;
};

}  // namespace flow
