// Moving the first instructions of an x86-64 function elsewhere, so that its entry can be
// overwritten with a 5-byte `jmp rel32` and the original behaviour still reached through a
// trampoline. Pure: bytes and addresses in, bytes out; writing them is the platform's business.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "awfshim/status.h"
#include "absl/types/span.h"

namespace awfshim::x86 {

inline constexpr size_t kJumpSize = 5;  // jmp rel32

struct RelocatedPrologue {
  // Bytes kept at the entry: an `endbr64` stays where indirect calls expect it, and the jump is
  // written after it.
  size_t entry_skip = 0;
  // Bytes from entry + entry_skip that the jump (padded to whole instructions) replaces.
  size_t patched_length = 0;
  // For the trampoline: `endbr64`, the relocated instructions, then a jump back to
  // entry + entry_skip + patched_length. Valid only at the address it was built for.
  std::vector<uint8_t> trampoline;
};

// `function` holds the whole body of the function at run-time address `entry` (its symbol size);
// the trampoline will live at `trampoline_at`. Refuses (with the reason) what it cannot move
// safely: a body too short for the jump, a branch anywhere in the body into the bytes the jump
// replaces, a relative operand it cannot re-encode (loop, jrcxz, xbegin) or whose target is out
// of rel32 reach from the trampoline, and bytes that do not decode.
StatusOr<RelocatedPrologue> RelocatePrologue(absl::Span<const uint8_t> function, uint64_t entry,
                                                   uint64_t trampoline_at);

// `jmp rel32` at `from` to `to`; false when out of reach.
bool EncodeJump(uint64_t from, uint64_t to, uint8_t out[kJumpSize]);

}  // namespace awfshim::x86
