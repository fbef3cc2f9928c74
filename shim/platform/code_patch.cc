// Layout: one page per PatchFunctions call, placed within rel32 reach of every function, holding
// a slot per function:
//   +0   jmp [rip+0]; .quad hook     the entry's `jmp rel32` lands here (the hook is far away)
//   +16  endbr64; relocated prologue; jmp entry+skip+patched    the "original" handed back
// The slot page is written while RW, then made RX; the functions' pages go RW for the write and
// back to RX. Never RWX; a refused mprotect (SELinux execmod) refuses the patch.
#include "code_patch.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "awfshim/x86_relocate.h"
#include "elf_symbols.h"

namespace awfshim {

#if defined(__x86_64__)
namespace {

constexpr size_t kSlotSize = 128;
constexpr size_t kThunkSize = 16;
constexpr uintptr_t kSearchStep = 64 << 10;
// Every slot must reach every function with rel32, and vice versa; a margin covers the page.
constexpr uintptr_t kReach = (uintptr_t{1} << 31) - (uintptr_t{1} << 20);
constexpr uintptr_t kLowestAddress = 1 << 20;  // well above vm.mmap_min_addr
constexpr int kMaxSearch = 16384;              // 1 GiB of candidates

std::mutex g_mu;
absl::flat_hash_set<uintptr_t>* g_patched;  // never freed: read by later calls only

uintptr_t PageSize() { return static_cast<uintptr_t>(sysconf(_SC_PAGESIZE)); }

// A fresh RW mapping within reach of [low, high). Below `low` only: above an executable lies its
// brk heap, which a mapping there would stop from growing.
uint8_t* MapNear(uintptr_t low, uintptr_t high, size_t length) {
  uintptr_t at = (low & ~(kSearchStep - 1)) - kSearchStep;
  for (int i = 0; i < kMaxSearch && at >= kLowestAddress && high - at < kReach; i++, at -= kSearchStep) {
    void* p = mmap(reinterpret_cast<void*>(at), length, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED) continue;
    if (p == reinterpret_cast<void*>(at)) return static_cast<uint8_t*>(p);
    munmap(p, length);  // a kernel without MAP_FIXED_NOREPLACE took the address as a hint
  }
  return nullptr;
}

void WriteThunk(uint8_t* slot, void* hook) {
  static constexpr uint8_t kJmpRipIndirect[] = {0xff, 0x25, 0x00, 0x00, 0x00, 0x00};
  std::memcpy(slot, kJmpRipIndirect, sizeof kJmpRipIndirect);
  std::memcpy(slot + sizeof kJmpRipIndirect, &hook, sizeof hook);
}

struct Planned {
  uint8_t* write_at;  // entry + entry_skip
  size_t length;      // patched_length
  uint8_t jump[x86::kJumpSize];
};

struct PageRange {
  uintptr_t begin, end;
};

PageRange PagesOf(const Planned& p) {
  uintptr_t page = PageSize();
  uintptr_t begin = reinterpret_cast<uintptr_t>(p.write_at);
  return {begin & ~(page - 1), (begin + p.length + page - 1) & ~(page - 1)};
}

bool IsShimCode(const void* function) { return InSameObject(function, reinterpret_cast<const void*>(&PageSize)); }

}  // namespace

StatusOr<std::vector<void*>> PatchFunctions(absl::Span<const PatchRequest> requests) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (requests.empty()) return std::vector<void*>{};
  if (!g_patched) g_patched = new absl::flat_hash_set<uintptr_t>;
  uintptr_t low = UINTPTR_MAX, high = 0;
  for (const PatchRequest& r : requests) {
    auto at = reinterpret_cast<uintptr_t>(r.function);
    if (g_patched->contains(at)) return AlreadyExistsError(absl::StrCat(r.name, " is already patched"));
    if (IsShimCode(r.function)) return InvalidArgumentError(absl::StrCat(r.name, " is the shim's own"));
    low = std::min(low, at);
    high = std::max(high, at + r.size);
  }

  const size_t length = (requests.size() * kSlotSize + PageSize() - 1) & ~(PageSize() - 1);
  uint8_t* page = MapNear(low, high, length);
  if (!page) return ResourceExhaustedError("no free page within rel32 reach below the functions");
  auto fail = [&](Status s) {
    munmap(page, length);
    return s;
  };

  std::vector<void*> originals;
  std::vector<Planned> plans;
  for (size_t i = 0; i < requests.size(); i++) {
    const PatchRequest& r = requests[i];
    uint8_t* slot = page + i * kSlotSize;
    auto entry = reinterpret_cast<uintptr_t>(r.function);
    StatusOr<x86::RelocatedPrologue> moved = x86::RelocatePrologue(
        absl::MakeConstSpan(static_cast<const uint8_t*>(r.function), r.size), entry,
        reinterpret_cast<uintptr_t>(slot + kThunkSize));
    if (!moved.ok()) return fail(Status(moved.status().code(), absl::StrCat(r.name, ": ", moved.status().message())));
    if (kThunkSize + moved->trampoline.size() > kSlotSize) {
      return fail(ResourceExhaustedError(absl::StrCat(r.name, ": the relocated prologue is too long")));
    }
    WriteThunk(slot, r.hook);
    std::memcpy(slot + kThunkSize, moved->trampoline.data(), moved->trampoline.size());
    Planned p{static_cast<uint8_t*>(r.function) + moved->entry_skip, moved->patched_length, {}};
    if (!x86::EncodeJump(reinterpret_cast<uintptr_t>(p.write_at), reinterpret_cast<uintptr_t>(slot), p.jump)) {
      return fail(OutOfRangeError(absl::StrCat(r.name, ": the slot is beyond rel32 reach")));
    }
    plans.push_back(p);
    originals.push_back(slot + kThunkSize);
  }
  if (mprotect(page, length, PROT_READ | PROT_EXEC) != 0) {
    return fail(PermissionDeniedError(absl::StrCat("mprotect of the trampolines: ", std::strerror(errno))));
  }

  // Make every target page writable first, so that a refusal leaves all functions untouched.
  // Executable code is mapped read+execute; that is what each page returns to.
  auto restore = [&](size_t count) {
    for (size_t i = 0; i < count; i++) {
      PageRange pr = PagesOf(plans[i]);
      mprotect(reinterpret_cast<void*>(pr.begin), pr.end - pr.begin, PROT_READ | PROT_EXEC);
    }
  };
  for (size_t i = 0; i < plans.size(); i++) {
    PageRange pr = PagesOf(plans[i]);
    if (mprotect(reinterpret_cast<void*>(pr.begin), pr.end - pr.begin, PROT_READ | PROT_WRITE) != 0) {
      int err = errno;
      restore(i);
      return fail(PermissionDeniedError(absl::StrCat("mprotect of ", requests[i].name, ": ", std::strerror(err))));
    }
  }
  for (const Planned& p : plans) {
    std::memcpy(p.write_at, p.jump, sizeof p.jump);
    std::memset(p.write_at + sizeof p.jump, 0xcc, p.length - sizeof p.jump);  // int3: never reached
  }
  restore(plans.size());
  for (const PatchRequest& r : requests) g_patched->insert(reinterpret_cast<uintptr_t>(r.function));
  return originals;
}

#else

StatusOr<std::vector<void*>> PatchFunctions(absl::Span<const PatchRequest>) {
  return UnimplementedError("inline patching is implemented for x86-64 only");
}

#endif

}  // namespace awfshim
