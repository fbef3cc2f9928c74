// libFuzzer target: awfshim::x86::RelocatePrologue on arbitrary bytes as a function body.
//
// Input: 8 bytes little-endian for the entry address (masked to user space, 47 bits), 8 for the
// trampoline, then the body. The trampoline's top two bits pick how it is placed, so that both
// reachable and unreachable cases are common: 0, entry + a signed 32-bit offset (reachable, or
// just not); 1, entry ± (2^31 - a 16-bit value) (at the edge of rel32 reach); 2, the low 47 bits
// as an absolute address (mostly out of reach); 3, entry + a signed 40-bit offset.
//
// Checked on success: entry_skip is 4 exactly when the body starts with endbr64, else 0; the
// patched bytes are whole instructions, at least a jump's worth and inside the body; the
// trampoline is endbr64, then each patched instruction (same bytes; or the same operation with the
// same absolute branch target or RIP-relative address, re-encoded for its new place), then
// `jmp rel32` back to entry + entry_skip + patched_length; the whole body decodes and no branch in
// it lands inside the patched bytes. On failure: a known error code and a reason. Both ways: the
// same answer twice.
#include <Zydis/Zydis.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>

#include "awfshim/status.h"
#include "awfshim/x86_relocate.h"
#include "fuzz_support.h"

namespace {

namespace x86 = awfshim::x86;

constexpr uint8_t kEndbr64[] = {0xf3, 0x0f, 0x1e, 0xfa};
constexpr uint64_t kUserMask = (uint64_t{1} << 47) - 1;

uint64_t Le64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

struct Insn {
  ZydisDecodedInstruction insn;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
};

const ZydisDecoder& Decoder() {
  static ZydisDecoder d = [] {
    ZydisDecoder d;
    ZydisDecoderInit(&d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    return d;
  }();
  return d;
}

std::optional<Insn> Decode(const uint8_t* p, size_t n) {
  Insn d;
  if (n == 0 || !ZYAN_SUCCESS(ZydisDecoderDecodeFull(&Decoder(), p, n, &d.insn, d.ops))) return std::nullopt;
  return d;
}

// The absolute target of a relative branch or RIP-relative memory operand of `d` at `at`.
struct Relative {
  bool branch = false;
  uint64_t target = 0;
};
std::optional<Relative> RelativeOf(const Insn& d, uint64_t at) {
  for (uint8_t i = 0; i < d.insn.operand_count_visible; i++) {
    const ZydisDecodedOperand& op = d.ops[i];
    bool branch = op.type == ZYDIS_OPERAND_TYPE_IMMEDIATE && op.imm.is_relative;
    if (!branch && !(op.type == ZYDIS_OPERAND_TYPE_MEMORY && op.mem.base == ZYDIS_REGISTER_RIP)) continue;
    ZyanU64 target = 0;
    FUZZ_CHECK(ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(&d.insn, &op, at, &target)));
    return Relative{branch, target};
  }
  return std::nullopt;
}

bool Same(const x86::RelocatedPrologue& a, const x86::RelocatedPrologue& b) {
  return a.entry_skip == b.entry_skip && a.patched_length == b.patched_length && a.trampoline == b.trampoline;
}

void CheckSuccess(const x86::RelocatedPrologue& r, const uint8_t* body, size_t size, uint64_t entry,
                  uint64_t tramp) {
  const bool endbr = size >= 4 && std::memcmp(body, kEndbr64, 4) == 0;
  FUZZ_CHECK(r.entry_skip == (endbr ? 4u : 0u));
  FUZZ_CHECK(r.patched_length >= x86::kJumpSize && r.patched_length <= size - r.entry_skip);
  // The last patched instruction starts before the jump's end.
  FUZZ_CHECK(r.patched_length < x86::kJumpSize + ZYDIS_MAX_INSTRUCTION_LENGTH);
  const uint64_t patched_begin = entry + r.entry_skip, patched_end = patched_begin + r.patched_length;

  const std::vector<uint8_t>& t = r.trampoline;
  FUZZ_CHECK(t.size() >= 4 + 1 + x86::kJumpSize);
  FUZZ_CHECK(std::memcmp(t.data(), kEndbr64, 4) == 0);
  const size_t back = t.size() - x86::kJumpSize;
  FUZZ_CHECK(t[back] == 0xe9);
  int32_t rel;
  std::memcpy(&rel, t.data() + back + 1, sizeof rel);
  FUZZ_CHECK(tramp + t.size() + static_cast<uint64_t>(static_cast<int64_t>(rel)) == patched_end);

  // The patched instructions and their copies, pair by pair.
  size_t from = r.entry_skip, to = 4;
  while (from < r.entry_skip + r.patched_length) {
    std::optional<Insn> o = Decode(body + from, size - from);
    FUZZ_CHECK(o.has_value());
    FUZZ_CHECK(from + o->insn.length <= r.entry_skip + r.patched_length);
    std::optional<Insn> c = Decode(t.data() + to, back - to);
    FUZZ_CHECK(c.has_value());
    FUZZ_CHECK(c->insn.mnemonic == o->insn.mnemonic);
    std::optional<Relative> orel = RelativeOf(*o, entry + from);
    std::optional<Relative> crel = RelativeOf(*c, tramp + to);
    FUZZ_CHECK(orel.has_value() == crel.has_value());
    if (!orel) {
      FUZZ_CHECK(c->insn.length == o->insn.length && std::memcmp(t.data() + to, body + from, o->insn.length) == 0);
    } else {
      FUZZ_CHECK(orel->branch == crel->branch && orel->target == crel->target);
      if (orel->branch) {
        // Re-encoded as jcc/jmp/call rel32.
        FUZZ_CHECK(c->insn.length == 5 || c->insn.length == 6);
        FUZZ_CHECK(c->insn.raw.imm[0].size == 32);
      } else {
        // Same bytes but the displacement.
        const size_t d = o->insn.raw.disp.offset;
        FUZZ_CHECK(c->insn.length == o->insn.length && o->insn.raw.disp.size == 32);
        FUZZ_CHECK(std::memcmp(t.data() + to, body + from, d) == 0);
        FUZZ_CHECK(std::memcmp(t.data() + to + d + 4, body + from + d + 4, o->insn.length - d - 4) == 0);
      }
    }
    from += o->insn.length;
    to += c->insn.length;
  }
  FUZZ_CHECK(from == r.entry_skip + r.patched_length && to == back);

  // The whole body decodes, and nothing in it branches into the patched bytes.
  for (size_t at = r.entry_skip; at < size;) {
    std::optional<Insn> d = Decode(body + at, size - at);
    FUZZ_CHECK(d.has_value());
    if (std::optional<Relative> rl = RelativeOf(*d, entry + at); rl && rl->branch) {
      FUZZ_CHECK(rl->target < patched_begin || rl->target >= patched_end);
    }
    at += d->insn.length;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 16) return 0;
  const uint64_t entry = Le64(data) & kUserMask;
  const uint64_t t = Le64(data + 8);
  uint64_t tramp = 0;
  switch (t >> 62) {
    case 0:
      tramp = entry + static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(t)));
      break;
    case 1: {
      const uint64_t d = (uint64_t{1} << 31) - (t & 0xffff);
      tramp = (t & 0x10000) ? entry - d : entry + d;
      break;
    }
    case 2:
      tramp = t & kUserMask;
      break;
    default:
      tramp = entry + static_cast<uint64_t>(static_cast<int64_t>(t << 24) >> 24);
      break;
  }
  const uint8_t* body = data + 16;
  const size_t n = size - 16;

  awfshim::StatusOr<x86::RelocatedPrologue> r = x86::RelocatePrologue(absl::MakeConstSpan(body, n), entry, tramp);
  awfshim::StatusOr<x86::RelocatedPrologue> again = x86::RelocatePrologue(absl::MakeConstSpan(body, n), entry, tramp);
  FUZZ_CHECK(r.ok() == again.ok());
  if (r.ok()) {
    FUZZ_CHECK(Same(*r, *again));
    CheckSuccess(*r, body, n, entry, tramp);
  } else {
    FUZZ_CHECK(r.status() == again.status());
    const awfshim::StatusCode c = r.status().code();
    FUZZ_CHECK(c == awfshim::StatusCode::kInvalidArgument || c == awfshim::StatusCode::kFailedPrecondition ||
               c == awfshim::StatusCode::kOutOfRange || c == awfshim::StatusCode::kUnimplemented);
    FUZZ_CHECK(!r.status().message().empty());
  }

  // EncodeJump: reachable exactly when the displacement fits in 32 bits, and then exact.
  uint8_t jump[x86::kJumpSize];
  const int64_t delta = static_cast<int64_t>(tramp - (entry + x86::kJumpSize));
  const bool fits = delta >= INT32_MIN && delta <= INT32_MAX;
  FUZZ_CHECK(x86::EncodeJump(entry, tramp, jump) == fits);
  if (fits) {
    int32_t rel;
    std::memcpy(&rel, jump + 1, sizeof rel);
    FUZZ_CHECK(jump[0] == 0xe9 && rel == delta);
  }
  return 0;
}
