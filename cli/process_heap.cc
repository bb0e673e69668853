#include "cli/process_heap.h"

#include <malloc.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>

namespace flow::cli {

namespace {

constexpr uintptr_t kHugePage = uintptr_t{2} << 20;
// The heap's first megabytes stay in 4 KB pages: a small program touches a few hundred KB,
// and a huge page costs 2 MB zeroed at its first touch. Each piece is below
// M_MMAP_THRESHOLD (32 MB, its maximum), so that malloc takes it from the heap.
constexpr size_t kPieceBytes[] = {size_t{4} << 20, size_t{30} << 20, size_t{30} << 20};
constexpr bool kOnHugePages[] = {false, true, true};
constexpr int kPieces = 3;

// Under AddressSanitizer malloc is its allocator: freed pieces go to its quarantine, not
// back to the heap, so marking them would only cost memory.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

}  // namespace

void SetUpProcessHeap() {
  // Large blocks from the heap, and freed memory kept: a checkpoint's buffers (the batch of
  // a big first checkpoint grows to megabytes) then reuse pages the run already touched
  // instead of faulting in fresh ones, which cost more than the copy itself (bench/run.py,
  // list_sum: 11,079 page faults and 197 ms CPU durable before, 8,368 and 160 ms after).
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
  // 60 MB of the heap, after its first 4 MB, on transparent huge pages: a fresh page costs a fault
  // (about 20 us on a virtual machine), and a process that loads megabytes of state touches
  // thousands (resuming 10 MB after a kill: 4,800 faults and 100-135 ms, against 30-35 ms
  // in 2 MB pages; docs/checkpoint.md, "Resume cost"). The pieces are allocated, marked
  // MADV_HUGEPAGE, and freed: they stay the top of the heap (under M_TRIM_THRESHOLD), where
  // later allocations are carved from, and cost nothing until touched. A no-op where
  // transparent huge pages are off (or `never`); glibc's own glibc.malloc.hugetlb tunable
  // would do the same, but only from the environment of the process.
  if (kSanitized) return;
  void* pieces[kPieces] = {};
  for (int i = 0; i < kPieces; ++i) {
    void* p = pieces[i] = std::malloc(kPieceBytes[i]);
    if (!p || !kOnHugePages[i]) continue;
    uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + kHugePage - 1) & ~(kHugePage - 1);
    uintptr_t end = (reinterpret_cast<uintptr_t>(p) + kPieceBytes[i]) & ~(kHugePage - 1);
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
  }
  for (void* p : pieces) std::free(p);
}

}  // namespace flow::cli
