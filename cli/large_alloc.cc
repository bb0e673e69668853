// The flow binary's operator new: large blocks on transparent huge pages.
//
// A big list, string or checkpoint buffer is a fresh block of anonymous memory that the
// kernel maps one 4 KB page at a time, one page fault each, and a page fault is dear
// (about 10 us on a virtual machine). Growing a 1,000,000-element list faults in 32 MB
// that way, half of the run. A block of at least kHugeBytes is aligned to a huge page and
// marked MADV_HUGEPAGE before it is touched, so that it faults in 2 MB at a time (a no-op
// where transparent huge pages are off). Everything is still malloc/free underneath, so
// every other allocation function, and every library, stays compatible with it.
#include <sys/mman.h>

#include <cstdlib>
#include <new>

namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kHugeBytes = size_t{4} << 20;

void* Allocate(size_t n) {
  void* p = nullptr;
  if (n >= kHugeBytes) {
    if (posix_memalign(&p, kHugePage, n) != 0) p = nullptr;
    if (p) madvise(p, n & ~(kHugePage - 1), MADV_HUGEPAGE);
  } else {
    p = std::malloc(n ? n : 1);
  }
  return p;
}

}  // namespace

void* operator new(size_t n) {
  if (void* p = Allocate(n)) return p;
  throw std::bad_alloc();  // the VM ends the run as out of memory
}
void* operator new[](size_t n) { return operator new(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept { return Allocate(n); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return Allocate(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
