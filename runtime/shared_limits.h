// Shared limits of durable runs (`limit NAME (...) { }`): one state per name in the store
// (shared/HEX("limit:NAME"), vm/limit.h), read and changed under the file's lock, so that
// two processes never both take the last slot.
#pragma once
#include <cstdint>
#include <string>

#include "store/store.h"
#include "vm/vm.h"

namespace flow::runtime {

// Who is asking: the run (its id) and its clock.
struct LimitCaller {
  store::Store* store;
  const std::string& run_id;
  int64_t now_ms;     // the run's clock (the rate window's)
  bool virtual_time;  // the run's clock jumps: a wait behind another process pauses for real
};

// VmHost::LimitEnter and LimitLeave for a run of the store.
Status EnterSharedLimit(const LimitCaller& caller, const std::string& name, const VmHost::LimitPolicy& policy,
                        const std::string& task, uint32_t depth, bool* admitted, int64_t* retry_at_ms);
Status LeaveSharedLimit(const LimitCaller& caller, const std::string& name, const std::string& task, uint32_t depth);

}  // namespace flow::runtime
