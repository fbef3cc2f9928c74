#include "awfshim/fd_table.h"

#include <sys/mman.h>

namespace awfshim {

static_assert(sizeof(std::atomic<uintptr_t>) == sizeof(uintptr_t) && std::atomic<uintptr_t>::is_always_lock_free,
              "the front reads slots as plain words");

bool FdTable::Init(unsigned count) {
  void* p = mmap(nullptr, size_t{count} * sizeof(uintptr_t), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return false;
  slots_ = static_cast<std::atomic<uintptr_t>*>(p);
  count_ = count;
  return true;
}

}  // namespace awfshim
