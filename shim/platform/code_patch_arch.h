// What PatchFunctions (code_patch.cc) needs of the machine it runs on: how an entry jumps to a slot,
// what a slot holds, and how far away it may lie. One implementation per architecture, the host's
// chosen by meson: code_patch_x86.cc (x86-64, Zydis), code_patch_aarch64.cc (aarch64_relocate.h).
// Everything else — the slot page, the single-thread check, writing code that may be running, the
// all-or-nothing order of publishing and writing — is the same everywhere and stays in
// code_patch.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "awfshim/status.h"
#include "code_patch.h"

namespace awfshim::patch_arch {

// OK where this architecture can patch entries; else why not (the refusal PatchFunctions returns
// before it looks at anything else).
Status Available();

// Bytes per function in the slot page (a multiple of the instruction alignment).
size_t SlotSize();

// How far below the functions the slot page may lie: every slot must be reachable from every
// entry's patch, and every function from the code relocated into its slot.
uintptr_t Reach();

struct SlotPlan {
  // The slot's bytes, valid only at the address they were built for. An entry's patch jumps to
  // the slot's first byte (which leads to the hook); the original behaviour starts at
  // `original_offset` (the relocated prologue, which jumps back into the function).
  std::vector<uint8_t> slot;
  size_t original_offset = 0;
  // Bytes kept at the entry (a landing pad for indirect calls: endbr64, bti), then the patch,
  // which replaces as many bytes (whole instructions, never reached past its jump).
  size_t entry_skip = 0;
  std::vector<uint8_t> patch;
};

// The slot and entry patch for `request`'s function, its slot at `slot_at`; the error says why
// the function cannot be patched (without the function's name: the caller adds it).
StatusOr<SlotPlan> PlanSlot(const PatchRequest& request, uintptr_t slot_at);

// After code in [begin, begin + length) has changed, before it may run: makes instruction fetch
// see the new bytes (aarch64's instruction cache; x86-64 keeps it coherent by itself).
void SyncCode(void* begin, size_t length);

}  // namespace awfshim::patch_arch
