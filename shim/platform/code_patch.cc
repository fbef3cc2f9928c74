// Layout: one page per PatchFunctions call, placed within rel32 reach of every function, holding
// a slot per function:
//   +0   jmp [rip+0]; .quad hook     the entry's `jmp rel32` lands here (the hook is far away)
//   +16  endbr64; relocated prologue; jmp entry+skip+patched    the "original" handed back
// The slot page is written while RW, then made RX, never RWX; a refused mprotect refuses the
// patch. The functions' own code stays executable throughout (CodeWriter).
#include "code_patch.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

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

// The process's threads (/proc/self/status), or 0 when it cannot be read.
int ThreadCount() {
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[8192];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  const char* line = std::strstr(buf, "\nThreads:");
  return line ? std::atoi(line + std::strlen("\nThreads:")) : 0;
}

struct Planned {
  const char* name;
  uint8_t* write_at;              // entry + entry_skip
  std::vector<uint8_t> original;  // the patched_length bytes there
  std::vector<uint8_t> patch;     // jmp rel32 to the slot, then int3 (never reached)
};

struct PageRange {
  uintptr_t begin, end;
};

PageRange PagesOf(const Planned& p) {
  uintptr_t page = PageSize();
  uintptr_t begin = reinterpret_cast<uintptr_t>(p.write_at);
  return {begin & ~(page - 1), (begin + p.patch.size() + page - 1) & ~(page - 1)};
}

// Executable code is mapped read+execute: what each page returns to.
constexpr int kRx = PROT_READ | PROT_EXEC;
constexpr int kRwx = PROT_READ | PROT_WRITE | PROT_EXEC;

int Protect(PageRange pr, int prot) { return mprotect(reinterpret_cast<void*>(pr.begin), pr.end - pr.begin, prot); }

// Writes into code that may be called at any moment, keeping it executable throughout. Through
// /proc/self/mem where the kernel allows it: the kernel writes into the read+execute page as a
// debugger's breakpoint is written, no permission changes, and SELinux's execmod (checked when
// modified file-backed code is made executable again) never comes into it. Else the page goes
// RX→RWX for the copy and back: RW alone would leave the process to crash on its next call into
// the page if making it executable again were refused, where a refused RWX has changed nothing.
class CodeWriter {
 public:
  ~CodeWriter() {
    if (mem_ >= 0) close(mem_);
  }

  // Chooses how to write the plans' ranges: through /proc/self/mem if each takes its own bytes
  // back through it, else with mprotect if each page can be made writable+executable and back.
  // Changes nothing; the error says why neither works.
  Status Open(absl::Span<const Planned> plans) {
    std::string mem_error = OpenProcMem(plans);
    if (mem_error.empty()) return OkStatus();
    for (const Planned& p : plans) {
      if (Protect(PagesOf(p), kRwx) != 0) {
        return PermissionDeniedError(absl::StrCat(mem_error, "; mprotect of ", p.name,
                                                  "'s page to writable+executable: ", std::strerror(errno)));
      }
      if (Protect(PagesOf(p), kRx) != 0) {
        return PermissionDeniedError(absl::StrCat(mem_error, "; mprotect of ", p.name,
                                                  "'s page back to read+execute: ", std::strerror(errno)));
      }
    }
    return OkStatus();
  }

  // Puts `bytes` at p.write_at. On error the range may hold part of them (a short write).
  Status Write(const Planned& p, const std::vector<uint8_t>& bytes) {
    if (mem_ >= 0) {
      if (std::string err = WriteProcMem(p.write_at, bytes); !err.empty()) {
        return DataLossError(absl::StrCat("/proc/self/mem at ", p.name, ": ", err));
      }
      if (std::memcmp(p.write_at, bytes.data(), bytes.size()) != 0) {
        return DataLossError(absl::StrCat("/proc/self/mem at ", p.name, ": the write did not land"));
      }
      return OkStatus();
    }
    if (Protect(PagesOf(p), kRwx) != 0) {
      return PermissionDeniedError(absl::StrCat("mprotect of ", p.name, "'s page to writable+executable: ", std::strerror(errno)));
    }
    std::memcpy(p.write_at, bytes.data(), bytes.size());
    if (Protect(PagesOf(p), kRx) != 0) {
      return PermissionDeniedError(absl::StrCat("mprotect of ", p.name, "'s page back to read+execute: ", std::strerror(errno)));
    }
    return OkStatus();
  }

 private:
  // Empty when /proc/self/mem takes every range's own bytes; else why not.
  std::string OpenProcMem(absl::Span<const Planned> plans) {
    mem_ = open("/proc/self/mem", O_WRONLY | O_CLOEXEC);
    if (mem_ < 0) return absl::StrCat("/proc/self/mem: ", std::strerror(errno));
    for (const Planned& p : plans) {
      if (std::string err = WriteProcMem(p.write_at, p.original); !err.empty()) {
        close(mem_);
        mem_ = -1;
        return absl::StrCat("/proc/self/mem at ", p.name, ": ", err);
      }
    }
    return "";
  }

  std::string WriteProcMem(uint8_t* at, const std::vector<uint8_t>& bytes) {
    ssize_t n = pwrite(mem_, bytes.data(), bytes.size(), static_cast<off_t>(reinterpret_cast<uintptr_t>(at)));
    if (n < 0) return std::strerror(errno);
    return static_cast<size_t>(n) == bytes.size() ? "" : "a short write";
  }

  int mem_ = -1;
};

bool IsShimCode(const void* function) { return InSameObject(function, reinterpret_cast<const void*>(&PageSize)); }

}  // namespace

Status PatchFunctions(absl::Span<const PatchRequest> requests) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (requests.empty()) return OkStatus();
  if (int threads = ThreadCount(); threads != 1) {
    return FailedPreconditionError(threads ? absl::StrCat("the process already has ", threads, " threads")
                                           : "cannot count the process's threads (/proc/self/status)");
  }
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
    uint8_t* write_at = static_cast<uint8_t*>(r.function) + moved->entry_skip;
    Planned p{r.name, write_at, std::vector<uint8_t>(write_at, write_at + moved->patched_length),
              std::vector<uint8_t>(moved->patched_length, 0xcc)};
    if (!x86::EncodeJump(reinterpret_cast<uintptr_t>(write_at), reinterpret_cast<uintptr_t>(slot), p.patch.data())) {
      return fail(OutOfRangeError(absl::StrCat(r.name, ": the slot is beyond rel32 reach")));
    }
    plans.push_back(std::move(p));
  }
  if (mprotect(page, length, kRx) != 0) {
    return fail(PermissionDeniedError(absl::StrCat("mprotect of the trampolines: ", std::strerror(errno))));
  }
  CodeWriter writer;
  if (Status s = writer.Open(plans); !s.ok()) return fail(s);

  // A hook reached through an entry finds its original already there.
  for (size_t i = 0; i < requests.size(); i++) requests[i].publish(page + i * kSlotSize + kThunkSize);
  for (size_t i = 0; i < plans.size(); i++) {
    Status s = writer.Write(plans[i], plans[i].patch);
    if (s.ok()) continue;
    // Every entry gets its own code back, the one that failed too (it may hold part of the jump).
    bool restored = true;
    for (size_t j = 0; j <= i; j++) restored &= writer.Write(plans[j], plans[j].original).ok();
    if (!restored) {
      // An entry may still jump to its slot: the slots stay, published, and nothing is patched again.
      for (const PatchRequest& r : requests) g_patched->insert(reinterpret_cast<uintptr_t>(r.function));
      return Status(s.code(), absl::StrCat(s.message(), "; restoring the entries failed too: their hooks stay"));
    }
    for (const PatchRequest& r : requests) r.publish(nullptr);
    return fail(s);
  }
  for (const PatchRequest& r : requests) g_patched->insert(reinterpret_cast<uintptr_t>(r.function));
  return OkStatus();
}

#else

Status PatchFunctions(absl::Span<const PatchRequest>) {
  return UnimplementedError("inline patching is implemented for x86-64 only");
}

#endif

}  // namespace awfshim
