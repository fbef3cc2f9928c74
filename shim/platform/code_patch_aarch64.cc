// Entry patching on aarch64 (code_patch_arch.h), with the relocator of aarch64_relocate.h. A slot:
//   +0   nop | autiasp | autibsp; ldr x16, #12; br x16; udf; .quad hook    the entry's `b` lands here
//   +24  bti c | paciasp | pacibsp; the relocated instruction; b entry+skip+4    the "original"
// The entry keeps a landing pad (bti, paciasp, pacibsp) and gets a 4-byte `b` to its slot: the slot
// page lies below the executable within ±128 MB (Reach), so `b` always reaches it, and one
// instruction moves, the fewest possible. The hook lives in the engine, anywhere: the thunk reaches
// it through x16, which the AAPCS64 lets any call clobber on its way (veneers, PLT stubs).
//
// Criteria (security: a wrong guess crashes the patched program, so when in doubt, the safe side):
//  - PAC: a function that starts with paciasp/pacibsp keeps it at the entry, so LR reaches the `b`
//    signed with SP. The thunk authenticates it (autiasp/autibsp; SP is still the caller's) and the
//    hook is entered as if called directly: plain LR, the caller's SP. The trampoline starts with the
//    same paciasp/pacibsp, which signs the hook's LR for the original's own epilogue (autiasp; ret).
//    On a CPU without PAuth all four are NOPs (hint space), and it still holds.
//  - BTI: the entry's `b` and the trampoline's way back are direct branches, which need no landing
//    pad; `br x16` to the hook lands on its `bti c`/`paciasp` when the engine is built with
//    -mbranch-protection (Debian's GCC 12 builds without: the engine is not BTI-marked, its pages are
//    not guarded). The slot page is mapped without PROT_BTI. What remains is the relocator's choice
//    for a moved branch whose target is beyond ±128 MB of the trampoline: `br`/`blr x16` needs a pad
//    there. So bti_enforced (every branch direct, else refused) unless the function's page is known
//    to be unguarded: the CPU lacks BTI (no HWCAP2_BTI: the kernel refuses PROT_BTI), or the object
//    holding the function is not BTI-marked (GNU_PROPERTY_AARCH64_FEATURE_1_BTI: the kernel and ld.so
//    map only marked objects guarded) and /proc/self/smaps does not show the page `bt` (an mprotect
//    with PROT_BTI). Node 24 for linux-arm64 is not BTI-marked; its patched functions' branches all
//    stay within the executable, within reach either way.
//  - qemu-user: a write through /proc/self/mem (code_patch.cc's first choice) is not seen by qemu's
//    translation cache, which watches the guest's own stores and mprotect; code qemu has already
//    translated would run on unpatched. The tap patches from the engine's constructor, before any of
//    the functions first runs, so there is nothing stale to run (test_arm64_tap checks Node under
//    qemu). __builtin___clear_cache is what real hardware needs (SyncCode).
#include <link.h>
#include <sys/auxv.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "awfshim/aarch64_relocate.h"
#include "code_patch_arch.h"

namespace awfshim::patch_arch {
namespace {

constexpr size_t kSlotSize = 128;  // the thunk, and a trampoline of at most 4 + 24 + 20 bytes
constexpr size_t kThunkSize = 24;
constexpr size_t kHookOffset = 16;  // 8-aligned: the slot is

constexpr uint32_t kNop = 0xd503201f;
constexpr uint32_t kAutiasp = 0xd50323bf;
constexpr uint32_t kAutibsp = 0xd50323ff;
constexpr uint32_t kLdrX16Plus12 = 0x58000070;  // ldr x16, #12: the .quad at +16
constexpr uint32_t kBrX16 = 0xd61f0200;
constexpr uint32_t kUdf = 0x00000000;  // never reached

// --- BTI: is the function's page possibly guarded? ---------------------------------------------

struct BtiMark {
  uintptr_t address;
  bool found = false;   // an object's PT_LOAD holds the address
  bool marked = false;  // and that object carries the BTI property
};

// Whether the notes in [p, p + size) hold NT_GNU_PROPERTY_TYPE_0 with AARCH64_FEATURE_1_BTI.
// Offsets as ld.so reads them (ELF_NOTE_DESC_OFFSET, ELF_NOTE_NEXT_OFFSET).
bool NotesMarkBti(const char* p, size_t size, size_t align) {
  auto up = [align](size_t n) { return (n + align - 1) & ~(align - 1); };
  for (size_t off = 0; off + sizeof(ElfW(Nhdr)) <= size;) {
    ElfW(Nhdr) n;
    std::memcpy(&n, p + off, sizeof n);
    const size_t desc = off + up(sizeof n + n.n_namesz), next = up(desc + n.n_descsz);
    if (next > size || next <= off) return false;
    if (n.n_type == NT_GNU_PROPERTY_TYPE_0 && n.n_namesz == 4 && std::memcmp(p + off + sizeof n, "GNU", 4) == 0) {
      for (size_t q = desc; q + 8 <= desc + n.n_descsz;) {
        uint32_t type, datasz;
        std::memcpy(&type, p + q, 4);
        std::memcpy(&datasz, p + q + 4, 4);
        if (type == GNU_PROPERTY_AARCH64_FEATURE_1_AND && datasz >= 4 && q + 12 <= desc + n.n_descsz) {
          uint32_t features;
          std::memcpy(&features, p + q + 8, 4);
          return features & GNU_PROPERTY_AARCH64_FEATURE_1_BTI;
        }
        q += 8 + ((datasz + 7) & ~size_t{7});
      }
    }
    off = next;
  }
  return false;
}

// dl_iterate_phdr's callback: reads loaded memory only, calls nothing of the loader's (it holds
// the loader's lock).
int FindBtiMark(dl_phdr_info* info, size_t, void* arg) {
  auto* m = static_cast<BtiMark*>(arg);
  bool holds = false, marked = false;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
    ElfW(Phdr) ph;  // copied: a program header table need not be aligned
    std::memcpy(&ph, reinterpret_cast<const char*>(info->dlpi_phdr) + i * sizeof ph, sizeof ph);
    const uintptr_t begin = info->dlpi_addr + ph.p_vaddr;
    if (ph.p_type == PT_LOAD && m->address >= begin && m->address - begin < ph.p_memsz) holds = true;
    // PT_GNU_PROPERTY is what the kernel and ld.so read; older linkers left the note in PT_NOTE only.
    if (ph.p_type == PT_GNU_PROPERTY || ph.p_type == PT_NOTE) {
      marked |= NotesMarkBti(reinterpret_cast<const char*>(begin), ph.p_memsz, ph.p_align > 4 ? 8 : 4);
    }
  }
  if (!holds) return 0;
  m->found = true;
  m->marked = marked;
  return 1;
}

// Whether /proc/self/smaps shows the mapping holding `address` guarded (VmFlags `bt`); nullopt
// when the file cannot be read or lists no such mapping.
std::optional<bool> SmapsSaysGuarded(uintptr_t address) {
  int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buf[16384];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  close(fd);
  bool inside = false;
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(at, end - at);
    at = end + 1;
    char* dash = nullptr;
    const uintptr_t begin = std::strtoull(line.c_str(), &dash, 16);
    if (dash != line.c_str() && *dash == '-') {  // "begin-end perms offset dev inode path"
      inside = address >= begin && address < std::strtoull(dash + 1, nullptr, 16);
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return (line + " ").find(" bt ") != std::string::npos;
    }
  }
  return std::nullopt;
}

bool MayBeGuarded(uintptr_t address) {
  if (!(getauxval(AT_HWCAP2) & HWCAP2_BTI)) return false;
  BtiMark m{address};
  dl_iterate_phdr(FindBtiMark, &m);
  if (m.marked) return true;
  return SmapsSaysGuarded(address).value_or(true);
}

void Put(std::vector<uint8_t>& out, size_t at, uint32_t word) { std::memcpy(out.data() + at, &word, sizeof word); }

}  // namespace

Status Available() { return OkStatus(); }

size_t SlotSize() { return kSlotSize; }

// b reaches ±128 MB: every slot must reach every function with it, and vice versa; a margin covers
// the page.
uintptr_t Reach() { return (uintptr_t{1} << 27) - (uintptr_t{1} << 20); }

StatusOr<SlotPlan> PlanSlot(const PatchRequest& request, uintptr_t slot_at) {
  const auto entry = reinterpret_cast<uintptr_t>(request.function);
  const aarch64::PatchOptions options{.entry_patch = aarch64::EntryPatch::kBranch,
                                      .bti_enforced = MayBeGuarded(entry)};
  StatusOr<aarch64::RelocatedPrologue> moved = aarch64::RelocatePrologue(
      absl::MakeConstSpan(static_cast<const uint8_t*>(request.function), request.size), entry, slot_at + kThunkSize,
      options);
  if (!moved.ok()) return moved.status();
  SlotPlan plan;
  plan.slot.assign(kThunkSize + moved->trampoline.size(), 0);
  const uint32_t authenticate = moved->entry_pad == aarch64::LandingPad::kPaciasp   ? kAutiasp
                                : moved->entry_pad == aarch64::LandingPad::kPacibsp ? kAutibsp
                                                                                    : kNop;
  Put(plan.slot, 0, authenticate);
  Put(plan.slot, 4, kLdrX16Plus12);
  Put(plan.slot, 8, kBrX16);
  Put(plan.slot, 12, kUdf);
  std::memcpy(plan.slot.data() + kHookOffset, &request.hook, sizeof request.hook);
  std::memcpy(plan.slot.data() + kThunkSize, moved->trampoline.data(), moved->trampoline.size());
  plan.original_offset = kThunkSize;
  plan.entry_skip = moved->entry_skip;
  plan.patch.assign(moved->patched_length, 0);
  if (!aarch64::EncodeBranch(entry + moved->entry_skip, slot_at, plan.patch.data())) {
    return OutOfRangeError("the slot is beyond b reach (±128 MB)");
  }
  return plan;
}

void SyncCode(void* begin, size_t length) {
  char* at = static_cast<char*>(begin);
  __builtin___clear_cache(at, at + length);
}

}  // namespace awfshim::patch_arch
