// Entry patching on x86-64 (code_patch_arch.h). A slot:
//   +0   jmp [rip+0]; .quad hook     the entry's `jmp rel32` lands here (the hook is far away)
//   +16  endbr64; relocated prologue; jmp entry+skip+patched    the "original" handed back
// The entry keeps its endbr64 and gets a 5-byte `jmp rel32` to the slot, padded with int3 to whole
// instructions (never reached). Relocation: x86_relocate.h (Zydis).
#include <cstring>

#include "awfshim/x86_relocate.h"
#include "code_patch_arch.h"

namespace awfshim::patch_arch {
namespace {

constexpr size_t kSlotSize = 128;
constexpr size_t kThunkSize = 16;

}  // namespace

Status Available() { return OkStatus(); }

size_t SlotSize() { return kSlotSize; }

// Every slot must reach every function with rel32, and vice versa; a margin covers the page.
uintptr_t Reach() { return (uintptr_t{1} << 31) - (uintptr_t{1} << 20); }

StatusOr<SlotPlan> PlanSlot(const PatchRequest& request, uintptr_t slot_at) {
  StatusOr<x86::RelocatedPrologue> moved =
      x86::RelocatePrologue(absl::MakeConstSpan(static_cast<const uint8_t*>(request.function), request.size),
                            reinterpret_cast<uintptr_t>(request.function), slot_at + kThunkSize);
  if (!moved.ok()) return moved.status();
  SlotPlan plan;
  // Sized once and filled (GCC 12 at -O3 misreads an insert after a resize as out of bounds).
  plan.slot.assign(kThunkSize + moved->trampoline.size(), 0);
  static constexpr uint8_t kJmpRipIndirect[] = {0xff, 0x25, 0x00, 0x00, 0x00, 0x00};
  std::memcpy(plan.slot.data(), kJmpRipIndirect, sizeof kJmpRipIndirect);
  std::memcpy(plan.slot.data() + sizeof kJmpRipIndirect, &request.hook, sizeof request.hook);
  std::memcpy(plan.slot.data() + kThunkSize, moved->trampoline.data(), moved->trampoline.size());
  plan.original_offset = kThunkSize;
  plan.entry_skip = moved->entry_skip;
  plan.patch.assign(moved->patched_length, 0xcc);
  uintptr_t write_at = reinterpret_cast<uintptr_t>(request.function) + moved->entry_skip;
  if (!x86::EncodeJump(write_at, slot_at, plan.patch.data())) return OutOfRangeError("the slot is beyond rel32 reach");
  return plan;
}

void SyncCode(void*, size_t) {}  // x86-64's instruction fetch sees stores by itself

}  // namespace awfshim::patch_arch
