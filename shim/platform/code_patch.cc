// Layout: one page per PatchFunctions call, placed below the functions within the architecture's
// reach of every one of them, holding a slot per function: first what the entry's patch jumps to
// (on to the hook, which is far away), then the relocated prologue, the "original" handed back,
// which jumps back into the function. What the slot and the patch hold is the architecture's
// (code_patch_arch.h: code_patch_x86.cc, code_patch_aarch64.cc); the rest is here.
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
#include "code_patch_arch.h"
#include "elf_symbols.h"

namespace awfshim {
namespace {

constexpr uintptr_t kSearchStep = 64 << 10;
constexpr uintptr_t kLowestAddress = 1 << 20;  // well above vm.mmap_min_addr
constexpr int kMaxSearch = 16384;              // 1 GiB of candidates

std::mutex g_mu;
absl::flat_hash_set<uintptr_t>* g_patched;  // never freed: read by later calls only

uintptr_t PageSize() { return static_cast<uintptr_t>(sysconf(_SC_PAGESIZE)); }

// A fresh RW mapping within reach of [low, high). Below `low` only: above an executable lies its
// brk heap, which a mapping there would stop from growing.
uint8_t* MapNear(uintptr_t low, uintptr_t high, size_t length) {
  const uintptr_t reach = patch_arch::Reach();
  uintptr_t at = (low & ~(kSearchStep - 1)) - kSearchStep;
  for (int i = 0; i < kMaxSearch && at >= kLowestAddress && high - at < reach; i++, at -= kSearchStep) {
    void* p = mmap(reinterpret_cast<void*>(at), length, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED) continue;
    if (p == reinterpret_cast<void*>(at)) return static_cast<uint8_t*>(p);
    munmap(p, length);  // a kernel without MAP_FIXED_NOREPLACE took the address as a hint
  }
  return nullptr;
}

// Whether the program runs under qemu-user (an aarch64 program on an x86-64 host through
// binfmt_misc, as the arm64 tests run it): qemu answers readlink("/proc/self/exe") with the program,
// but /proc/thread-self/exe, which it does not emulate, names qemu itself. Two things differ there:
//  - /proc/self/status counts qemu's own call_rcu thread (started before the program), which never
//    runs the program's code: ThreadCount leaves one thread out;
//  - a write through /proc/self/mem goes around qemu's cache of translated code, which sees only
//    the program's own stores and mprotect calls, and lands at the host address, the program's only
//    while qemu maps it 1:1 (guest_base 0): CodeWriter copies with mprotect there, which qemu sees
//    (and maps without PROT_EXEC on the host: nothing like execmod applies).
// Another emulator is not recognised: its threads count, and a patch is refused (the safe side).
bool UnderQemuUser() {
  char program[4096], thread[4096];
  ssize_t p = readlink("/proc/self/exe", program, sizeof program);
  ssize_t t = readlink("/proc/thread-self/exe", thread, sizeof thread - 1);
  if (p <= 0 || t <= 0 || (p == t && std::memcmp(program, thread, static_cast<size_t>(p)) == 0)) return false;
  thread[t] = '\0';
  const char* name = std::strrchr(thread, '/');
  return std::strncmp(name ? name + 1 : thread, "qemu-", 5) == 0;
}

// The process's threads (/proc/self/status; under qemu-user, the program's), or 0 when it cannot
// be read.
int ThreadCount() {
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[8192];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  const char* line = std::strstr(buf, "\nThreads:");
  const int threads = line ? std::atoi(line + std::strlen("\nThreads:")) : 0;
  return threads > 1 && UnderQemuUser() ? threads - 1 : threads;
}

struct Planned {
  const char* name;
  uint8_t* write_at;              // entry + entry_skip
  std::vector<uint8_t> original;  // the bytes the patch replaces there
  std::vector<uint8_t> patch;     // the jump to the slot (code_patch_arch.h)
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
    std::string mem_error = UnderQemuUser() ? "/proc/self/mem: not used under qemu-user" : OpenProcMem(plans);
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

  // Puts `bytes` at p.write_at, for the instruction stream too. On error the range may hold part
  // of them (a short write).
  Status Write(const Planned& p, const std::vector<uint8_t>& bytes) {
    Status s = Copy(p, bytes);
    patch_arch::SyncCode(p.write_at, bytes.size());
    return s;
  }

 private:
  Status Copy(const Planned& p, const std::vector<uint8_t>& bytes) {
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
  if (Status s = patch_arch::Available(); !s.ok()) return s;
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

  const size_t slot_size = patch_arch::SlotSize();
  const size_t length = (requests.size() * slot_size + PageSize() - 1) & ~(PageSize() - 1);
  uint8_t* page = MapNear(low, high, length);
  if (!page) return ResourceExhaustedError("no free page within reach below the functions");
  auto fail = [&](Status s) {
    munmap(page, length);
    return s;
  };

  std::vector<Planned> plans;
  std::vector<size_t> originals;  // each request's original, as an offset into the page
  for (size_t i = 0; i < requests.size(); i++) {
    const PatchRequest& r = requests[i];
    uint8_t* slot = page + i * slot_size;
    StatusOr<patch_arch::SlotPlan> plan = patch_arch::PlanSlot(r, reinterpret_cast<uintptr_t>(slot));
    if (!plan.ok()) return fail(Status(plan.status().code(), absl::StrCat(r.name, ": ", plan.status().message())));
    if (plan->slot.size() > slot_size) {
      return fail(ResourceExhaustedError(absl::StrCat(r.name, ": the relocated prologue is too long")));
    }
    std::memcpy(slot, plan->slot.data(), plan->slot.size());
    originals.push_back(i * slot_size + plan->original_offset);
    uint8_t* write_at = static_cast<uint8_t*>(r.function) + plan->entry_skip;
    plans.push_back({r.name, write_at, std::vector<uint8_t>(write_at, write_at + plan->patch.size()),
                     std::move(plan->patch)});
  }
  patch_arch::SyncCode(page, length);
  if (mprotect(page, length, kRx) != 0) {
    return fail(PermissionDeniedError(absl::StrCat("mprotect of the trampolines: ", std::strerror(errno))));
  }
  CodeWriter writer;
  if (Status s = writer.Open(plans); !s.ok()) return fail(s);

  // A hook reached through an entry finds its original already there.
  for (size_t i = 0; i < requests.size(); i++) requests[i].publish(page + originals[i]);
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

}  // namespace awfshim
