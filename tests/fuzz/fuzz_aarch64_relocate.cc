// libFuzzer target: awfshim::aarch64::RelocatePrologue on arbitrary words as a function body.
//
// Input: 8 bytes little-endian for the entry address (masked to 48 bits, 4-aligned), 8 for the
// trampoline and options, then the body. In the trampoline word t, bit 61 picks the 4-byte entry
// patch (else 16), bit 60 BTI enforcement, and the top two bits the placement, so that reachable
// and unreachable cases are all common: 0, entry + a signed 32-bit offset shifted right by 0-15
// (from ±64 KB to ±2 GB); 1, entry ± (a reach — tbz's 32 KB, b.cond's 1 MB, b's 128 MB, adrp's
// 4 GB — ± up to 512 bytes), at the edges; 2, the low 48 bits as an absolute address; 3, entry +
// a signed 40-bit offset. The trampoline is 4-aligned.
//
// Checked on success: entry_skip is 4 exactly when the body starts with a landing pad (bti,
// paciasp, pacibsp), and the trampoline starts with paciasp/pacibsp when that is the pad, else
// bti c; the patch is 4 or 16 bytes as asked, inside the body, with no indirect branch or exclusive
// load/store in it; the trampoline ends in the jump back to entry + entry_skip + patched_length (a
// `b`, or `ldr x16, #8; br x16; .quad` with the literal 8-aligned), holds no br/blr under BTI
// enforcement, and does not overlap the body; no branch anywhere in the body lands in the patched
// bytes (but a bl to the entry) and no literal load reads them; and the interpreter of
// tests/support/aarch64_eval.h finds the trampoline doing what the patched instructions did, for
// every NZCV and several register values. On failure: a known error code and a reason. Both
// ways: the same answer twice.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../support/aarch64_eval.h"
#include "awfshim/aarch64_relocate.h"
#include "awfshim/status.h"
#include "fuzz_support.h"

namespace {

namespace a64 = awfshim::aarch64;
namespace eval = awfshim::testing::a64;

constexpr uint64_t kUserMask = (uint64_t{1} << 48) - 1;

HARNESS uint64_t Le64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
HARNESS uint32_t WordAt(const uint8_t* p, size_t index) {
  uint32_t w;
  std::memcpy(&w, p + 4 * index, sizeof w);
  return w;
}

HARNESS bool Same(const a64::RelocatedPrologue& a, const a64::RelocatedPrologue& b) {
  return a.entry_skip == b.entry_skip && a.entry_pad == b.entry_pad && a.patched_length == b.patched_length &&
         a.trampoline == b.trampoline;
}

HARNESS void CheckSuccess(const a64::RelocatedPrologue& r, const uint8_t* body, size_t size, uint64_t entry,
                          uint64_t tramp, const a64::PatchOptions& o) {
  const size_t words = size / 4;
  const uint32_t first = words ? WordAt(body, 0) : 0;
  const bool pac = first == 0xd503233f || first == 0xd503237f;
  const bool pad = pac || (first & 0xffffff3f) == 0xd503241f;
  FUZZ_CHECK(r.entry_skip == (pad ? 4u : 0u));
  FUZZ_CHECK((r.entry_pad != a64::LandingPad::kNone) == pad);
  FUZZ_CHECK(r.patched_length == (o.entry_patch == a64::EntryPatch::kBranch ? 4u : 16u));
  FUZZ_CHECK(r.entry_skip + r.patched_length <= words * 4);
  for (size_t i = r.entry_skip / 4; i < (r.entry_skip + r.patched_length) / 4; i++) {
    const uint32_t w = WordAt(body, i);
    FUZZ_CHECK((w & 0xfe000000) != 0xd6000000);  // br, blr, ret, eret
    FUZZ_CHECK((w & 0x3f800000) != 0x08000000);  // ldxr/stxr family
  }
  const uint64_t patched_begin = entry + r.entry_skip, patched_end = patched_begin + r.patched_length;

  const std::vector<uint8_t>& t = r.trampoline;
  FUZZ_CHECK(t.size() % 4 == 0 && t.size() >= 8);
  const size_t n = t.size() / 4;
  FUZZ_CHECK(WordAt(t.data(), 0) == (pac ? first : 0xd503245f));
  FUZZ_CHECK(tramp - entry >= words * 4 && entry - tramp >= t.size());
  size_t code = n;  // words before the jump back's literal
  const std::optional<eval::Target> back = eval::TargetOf(WordAt(t.data(), n - 1), tramp + 4 * (n - 1));
  if (back && back->what == eval::Target::kJump && (WordAt(t.data(), n - 1) >> 26) == 0x05) {
    FUZZ_CHECK(back->address == patched_end);
  } else {
    FUZZ_CHECK(!o.bti_enforced && n >= 5);
    FUZZ_CHECK(WordAt(t.data(), n - 4) == 0x58000050 && WordAt(t.data(), n - 3) == 0xd61f0200);
    FUZZ_CHECK(Le64(t.data() + 4 * (n - 2)) == patched_end && (tramp + 4 * (n - 2)) % 8 == 0);
    code = n - 2;
  }
  if (o.bti_enforced) {
    for (size_t i = 0; i < code; i++) FUZZ_CHECK((WordAt(t.data(), i) & 0xff9ffc1f) != 0xd61f0000);
  }

  // The whole body: nothing branches into the patched bytes or loads a literal from them.
  for (size_t i = 0; i < words; i++) {
    const std::optional<eval::Target> tg = eval::TargetOf(WordAt(body, i), entry + 4 * i);
    if (!tg || tg->what == eval::Target::kAddress) continue;
    if (tg->what == eval::Target::kLiteral) {
      if (tg->size) FUZZ_CHECK(tg->address + tg->size <= patched_begin || tg->address >= patched_end);
    } else if (!(tg->what == eval::Target::kCall && tg->address == entry)) {
      FUZZ_CHECK(tg->address < patched_begin || tg->address >= patched_end);
    }
  }

  const eval::Verdict v = eval::CheckEquivalent({absl::MakeConstSpan(body, size), entry, r.entry_skip, r.patched_length,
                                                 t, tramp}, entry ^ tramp);
  FUZZ_CHECK(v.ambiguous || v.difference.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 16) return 0;
  const uint64_t entry = Le64(data) & kUserMask & ~uint64_t{3};
  const uint64_t t = Le64(data + 8);
  uint64_t tramp = 0;
  switch (t >> 62) {
    case 0:
      tramp = entry + static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(t)) >> ((t >> 32) & 15));
      break;
    case 1: {
      static constexpr uint64_t kReach[] = {uint64_t{1} << 15, uint64_t{1} << 20, uint64_t{1} << 27, uint64_t{1} << 32};
      const uint64_t d = kReach[(t >> 32) & 3] + static_cast<uint64_t>(4 * static_cast<int64_t>(static_cast<int8_t>(t)));
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
  tramp &= ~uint64_t{3};
  const a64::PatchOptions options{(t >> 61) & 1 ? a64::EntryPatch::kBranch : a64::EntryPatch::kAbsoluteBranch,
                                  ((t >> 60) & 1) != 0};
  const uint8_t* body = data + 16;
  const size_t n = size - 16;

  awfshim::StatusOr<a64::RelocatedPrologue> r = a64::RelocatePrologue(absl::MakeConstSpan(body, n), entry, tramp, options);
  awfshim::StatusOr<a64::RelocatedPrologue> again = a64::RelocatePrologue(absl::MakeConstSpan(body, n), entry, tramp, options);
  FUZZ_CHECK(r.ok() == again.ok());
  if (r.ok()) {
    FUZZ_CHECK(Same(*r, *again));
    CheckSuccess(*r, body, n, entry, tramp, options);
  } else {
    FUZZ_CHECK(r.status() == again.status());
    const awfshim::StatusCode c = r.status().code();
    FUZZ_CHECK(c == awfshim::StatusCode::kInvalidArgument || c == awfshim::StatusCode::kFailedPrecondition ||
               c == awfshim::StatusCode::kOutOfRange);
    FUZZ_CHECK(!r.status().message().empty());
  }

  // EncodeBranch: reachable exactly when the displacement fits in 28 bits, and then exact.
  uint8_t b[a64::kBranchSize];
  const int64_t delta = static_cast<int64_t>(tramp - entry);
  const bool fits = delta >= -(int64_t{1} << 27) && delta < (int64_t{1} << 27);
  FUZZ_CHECK(a64::EncodeBranch(entry, tramp, b) == fits);
  if (fits) {
    const std::optional<eval::Target> tg = eval::TargetOf(WordAt(b, 0), entry);
    FUZZ_CHECK(tg && tg->what == eval::Target::kJump && tg->address == tramp && (WordAt(b, 0) >> 26) == 0x05);
  }
  return 0;
}
