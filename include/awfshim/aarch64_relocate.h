// Moving the first instructions of an aarch64 function elsewhere, so that its entry can be
// overwritten with a branch to a hook and the original behaviour still reached through a
// trampoline: the counterpart of x86_relocate.h. Pure: bytes and addresses in, bytes out; writing
// them, and flushing the instruction cache afterwards (__builtin___clear_cache on the entry and
// on the trampoline), is the platform's business.
//
// Decoder: our own, for the PC-relative classes only (shim/core/aarch64_insn.h). Every aarch64
// instruction is one 32-bit word, and every one but adr, adrp, ldr/ldrsw/prfm (literal, SIMD&FP
// included), b, bl, b.cond, cbz/cbnz and tbz/tbnz is position-independent and copied as is.
//
// Entry patch, the caller's choice (it knows where its hook thunk lies): a `b` (4 bytes, the
// thunk within ±128 MB) or `ldr x16, #8; br x16; .quad thunk` (16 bytes, anywhere; its literal is
// misaligned when the patch starts 4 bytes past an 8-byte boundary, which a load from normal
// memory at EL0 allows on Linux, SCTLR_EL1.A being clear). x16 (IP0) is the intra-procedure-call
// scratch register: the AAPCS64 lets any call clobber it on its way to a function (veneers, PLT
// stubs), so it is dead at a function's entry.
//
// Landing pads (BTI, PAC): `bti c|j|jc` and `paciasp`/`pacibsp` (an implicit `bti c`) stay at the
// entry, where indirect callers land, and the patch goes after them (entry_skip = 4), as endbr64
// on x86. A kept `paciasp`/`pacibsp` has signed LR with SP by the time the patch runs: the thunk
// must authenticate it (`autiasp`/`autibsp`) before the hook, and the trampoline starts with the
// same instruction, which signs the hook's LR for the original's epilogue. Otherwise the
// trampoline starts with `bti c`: the architecture lets `br x16`/`br x17` (BTYPE 01) and `blr`
// (BTYPE 10) land on it, so both the 16-byte entry patch and a call from the hook reach it on a
// guarded page.
//
// Relocation, for the trampoline's address: each PC-relative instruction is re-encoded when its
// target is still in reach, else expanded — adr/adrp into adrp(+add) or movz/movk; a literal load
// into the address in its destination register (x16 for SIMD&FP, prfm and xzr) and a load from
// it; b/bl beyond ±128 MB into movz/movk x16 + br/blr x16 (blr sets LR exactly as bl would); a
// conditional branch out of reach into its inverse over the long form. The trampoline ends with
// a jump back to entry + entry_skip + patched_length: `b` when in reach, else
// `ldr x16, #8; br x16; .quad` (after a nop if needed to align the literal).
//
// BTI enforcement (`bti_enforced`: the executable is marked GNU_PROPERTY_AARCH64_FEATURE_1_BTI,
// so its pages are mapped PROT_BTI, "guarded"): an indirect branch into a guarded page must land
// on a pad, and neither the jump back nor a moved branch's target has one (a `bl` target need
// not either). Then every branch the trampoline makes is direct, and one beyond ±128 MB is
// refused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "awfshim/status.h"

namespace awfshim::aarch64 {

inline constexpr size_t kBranchSize = 4;           // b rel26: ±128 MB
inline constexpr size_t kAbsoluteBranchSize = 16;  // ldr x16, #8; br x16; .quad target

enum class EntryPatch { kBranch, kAbsoluteBranch };
enum class LandingPad { kNone, kBti, kPaciasp, kPacibsp };

struct PatchOptions {
  EntryPatch entry_patch = EntryPatch::kAbsoluteBranch;
  bool bti_enforced = false;
};

struct RelocatedPrologue {
  // 4 when the function starts with a landing pad, which stays at the entry; 0 otherwise.
  size_t entry_skip = 0;
  LandingPad entry_pad = LandingPad::kNone;
  // Bytes from entry + entry_skip the patch replaces: kBranchSize or kAbsoluteBranchSize.
  size_t patched_length = 0;
  // For the trampoline: a landing pad, the relocated instructions, then the jump back. Valid only
  // at the address it was built for.
  std::vector<uint8_t> trampoline;
};

// `function` holds the whole body of the function at run-time address `entry` (its symbol size);
// the trampoline will live at `trampoline_at`. Refuses (with the reason): unaligned addresses; a
// body shorter than the patch or whose code ends inside it; in the patched instructions, an
// indirect branch or return, an exclusive load/store (its monitor cannot span a patch), a PAC
// instruction that signs with its own address (FEAT_PAuth_LR's pacm, paciasppc, autiasppc…),
// anything that may read or write x16/x17 (the emitted code's scratch), undecodable words;
// anywhere in the body, a branch into the patched bytes (a `bl` to the entry itself is a recursive
// call, hooked like any other, and allowed), a literal load from them, and a branch-space word
// this decoder does not know (FEAT_CMPBR's cb<cc>, FEAT_PAuth_LR's retaasppc); targets out of
// reach under BTI enforcement; a trampoline overlapping the body.
StatusOr<RelocatedPrologue> RelocatePrologue(absl::Span<const uint8_t> function, uint64_t entry,
                                             uint64_t trampoline_at, const PatchOptions& options);

// `b` at `from` to `to`; false when out of reach (±128 MB) or unaligned.
bool EncodeBranch(uint64_t from, uint64_t to, uint8_t out[kBranchSize]);
// `ldr x16, #8; br x16; .quad to`.
void EncodeAbsoluteBranch(uint64_t to, uint8_t out[kAbsoluteBranchSize]);

}  // namespace awfshim::aarch64
