// Per-fd engine state, indexed by fd. The front reads slot[fd] on every fd hook, so a slot is
// one word: 0 (no state: forward), kOwned (an fd of the shim's own), or a pointer the engine
// owns. The array is reserved once and committed by the kernel as pages are touched.
#pragma once

#include <atomic>
#include <cstdint>

namespace awfshim {

class FdTable {
 public:
  static constexpr uintptr_t kOwned = 1;

  // Reserves room for fds below `count`. False if the memory cannot be had.
  bool Init(unsigned count);

  const uintptr_t* raw() const { return reinterpret_cast<const uintptr_t*>(slots_); }
  unsigned size() const { return count_; }
  bool in_range(int fd) const { return fd >= 0 && static_cast<unsigned>(fd) < count_; }

  uintptr_t Get(int fd) const { return in_range(fd) ? slots_[fd].load(std::memory_order_acquire) : 0; }
  void Set(int fd, uintptr_t value) {
    if (!in_range(fd)) return;
    if (value) RaiseHighest(fd);
    slots_[fd].store(value, std::memory_order_release);
  }
  uintptr_t Exchange(int fd, uintptr_t value) {
    if (!in_range(fd)) return 0;
    if (value) RaiseHighest(fd);
    return slots_[fd].exchange(value, std::memory_order_acq_rel);
  }

  // The shim's own fds (the trace file, the pump's epoll): the hooks keep them open when the
  // application closes fds in bulk, and move them aside when it dup2()s onto one.
  bool IsOwned(int fd) const { return Get(fd) == kOwned; }
  // The highest fd ever given a value, -1 before any: bounds the scans of close_range/closefrom
  // and fork's.
  int highest() const { return highest_.load(std::memory_order_acquire); }

 private:
  void RaiseHighest(int fd) {
    int h = highest_.load(std::memory_order_relaxed);
    while (fd > h && !highest_.compare_exchange_weak(h, fd, std::memory_order_acq_rel)) {
    }
  }

  std::atomic<uintptr_t>* slots_ = nullptr;
  unsigned count_ = 0;
  std::atomic<int> highest_{-1};
};

}  // namespace awfshim
