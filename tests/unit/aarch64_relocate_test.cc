// The aarch64 prologue relocator (shim/core/aarch64_relocate.cc) on hand-assembled words (checked
// with llvm-mc -triple=aarch64) and on Node.js 24's own SSL_* bodies. Each success is checked by
// interpretation (tests/support/aarch64_eval.h): the patched instructions run at the entry and the
// trampoline at its address must do the same, for every NZCV and several register values — the
// invariant, not particular encodings. Pure code: runs on any host.
#include "awfshim/aarch64_relocate.h"

#include <gtest/gtest.h>

#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "../support/aarch64_eval.h"
#include "node24_arm64_prologues.h"

namespace awfshim {
namespace {

namespace a64 = aarch64;
namespace eval = testing::a64;
using a64::EntryPatch;

constexpr uint32_t kStpFp = 0xa9ba7bfd;    // stp x29, x30, [sp, #-96]!
constexpr uint32_t kMovFp = 0x910003fd;    // mov x29, sp
constexpr uint32_t kStp1920 = 0xa90153f3;  // stp x19, x20, [sp, #16]
constexpr uint32_t kMovX19 = 0xaa0003f3;   // mov x19, x0
constexpr uint32_t kRet = 0xd65f03c0;
constexpr uint32_t kNop = 0xd503201f;
constexpr uint32_t kBtiC = 0xd503245f;
constexpr uint32_t kPaciasp = 0xd503233f;
constexpr uint32_t kBrX16 = 0xd61f0200;
constexpr uint64_t kEntry = 0x5555'5555'5000;

constexpr a64::PatchOptions kLong{EntryPatch::kAbsoluteBranch, false};
constexpr a64::PatchOptions kShort{EntryPatch::kBranch, false};
constexpr a64::PatchOptions kLongBti{EntryPatch::kAbsoluteBranch, true};

std::vector<uint8_t> Body(const std::vector<uint32_t>& words) {
  std::vector<uint8_t> out(words.size() * 4);
  if (!out.empty()) std::memcpy(out.data(), words.data(), out.size());
  return out;
}
// `first` at +0..., then a prologue, a ret, and filler words up to 0x60 bytes (literals at +0x40;
// negative as words, so that a sign extension shows).
std::vector<uint8_t> Function(std::initializer_list<uint32_t> first) {
  std::vector<uint32_t> w(first);
  for (uint32_t x : {kStpFp, kMovFp, kStp1920, kMovX19, kRet}) w.push_back(x);
  for (uint32_t i = 0; w.size() < 24; i++) w.push_back(0xf1110000 + i);
  return Body(w);
}
uint32_t Word(const std::vector<uint8_t>& bytes, size_t index) {
  uint32_t w;
  std::memcpy(&w, bytes.data() + 4 * index, 4);
  return w;
}

// Relocates, expecting success, and checks the trampoline against the original by interpretation.
a64::RelocatedPrologue Relocated(const std::vector<uint8_t>& body, uint64_t entry, uint64_t tramp,
                                 const a64::PatchOptions& options) {
  StatusOr<a64::RelocatedPrologue> r = a64::RelocatePrologue(body, entry, tramp, options);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return {};
  const eval::Verdict v = eval::CheckEquivalent({body, entry, r->entry_skip, r->patched_length, r->trampoline, tramp});
  EXPECT_FALSE(v.ambiguous);
  EXPECT_EQ(v.difference, "");
  EXPECT_EQ(r->patched_length, options.entry_patch == EntryPatch::kBranch ? 4u : 16u);
  return *r;
}

Status Refusal(const std::vector<uint8_t>& body, const a64::PatchOptions& options, uint64_t tramp = kEntry - 0x1000) {
  StatusOr<a64::RelocatedPrologue> r = a64::RelocatePrologue(body, kEntry, tramp, options);
  EXPECT_FALSE(r.ok());
  return r.ok() ? OkStatus() : r.status();
}

// Trampolines at every distance that changes an encoding: all in reach; beyond tbz (±32 KB);
// beyond b.cond, cbz, adr and ldr (±1 MB); beyond b and bl (±128 MB); beyond adrp (±4 GB).
constexpr int64_t kDistances[] = {-0x3000, 0x100000, -0x4000000, 0x40000000, -0x40000000, 0x40'0000'0000};

// One word of each PC-relative class, targeting +0x40 (outside the patched bytes).
constexpr uint32_t kPcRelative[] = {
    0x10000800,  // adr x0, #0x100
    0x10fff800,  // adr x0, #-0x100
    0x30000800,  // adr x0, #0x101
    0x30fff7e5,  // adr x5, #-0x103
    0xf0000001,  // adrp x1, #0x3000
    0xf0ffffc6,  // adrp x6, #-0x5000
    0x1000021f,  // adr xzr, #0x40
    0x18000202,  // ldr w2, #0x40
    0x58000203,  // ldr x3, #0x40
    0x98000204,  // ldrsw x4, #0x40
    0x1c000205,  // ldr s5, #0x40
    0x5c000206,  // ldr d6, #0x40
    0x9c000207,  // ldr q7, #0x40
    0xd8000200,  // prfm pldl1keep, #0x40
    0x5800021f,  // ldr xzr, #0x40
    0x58010000,  // ldr x0, #0x2000 (outside the function)
    0x14000010,  // b #0x40
    0x94000010,  // bl #0x40
    0x54000200,  // b.eq #0x40
    0x5400020e,  // b.al #0x40
    0x34000208,  // cbz w8, #0x40
    0xb5000209,  // cbnz x9, #0x40
    0x3618020a,  // tbz w10, #3, #0x40
    0xb728020b,  // tbnz x11, #37, #0x40
};

// Where in its page the entry and the trampoline start: adrp's page arithmetic shows a mistake
// only at a page's last word.
constexpr uint64_t kInPage[] = {0x000, 0xff4, 0xff8, 0xffc};

TEST(Aarch64Relocate, EveryPcRelativeClassAtEveryDistance) {
  for (uint32_t w : kPcRelative) {
    for (int64_t d : kDistances) {
      for (uint64_t entry_in_page : kInPage) {
        for (uint64_t tramp_in_page : kInPage) {
          const uint64_t entry = kEntry + entry_in_page, tramp = kEntry + static_cast<uint64_t>(d) + tramp_in_page;
          SCOPED_TRACE(absl::StrFormat("%#010x, entry %#x, trampoline %#x", w, entry, tramp));
          Relocated(Function({w}), entry, tramp, kShort);
          // Last of the four moved words: a call there returns to the jump back.
          Relocated(Function({kStpFp, kMovFp, kStp1920, w}), entry, tramp, kLong);
          if (w >> 26 != 0x05) Relocated(Function({w}), entry, tramp, kLong);  // not b: its code would end
        }
      }
    }
  }
}

TEST(Aarch64Relocate, CopiesPositionIndependentCodeAndJumpsBack) {
  const std::vector<uint8_t> f = Function({});
  a64::RelocatedPrologue r = Relocated(f, kEntry, kEntry - 0x1000, kLong);
  EXPECT_EQ(r.entry_skip, 0u);
  EXPECT_EQ(r.entry_pad, a64::LandingPad::kNone);
  ASSERT_EQ(r.trampoline.size(), 24u);
  EXPECT_EQ(Word(r.trampoline, 0), kBtiC);
  for (size_t i = 0; i < 4; i++) EXPECT_EQ(Word(r.trampoline, 1 + i), Word(f, i));
  EXPECT_EQ(Word(r.trampoline, 5), 0x14000000u | ((0x1000 + 16 - 20) / 4)) << "b entry+16";

  r = Relocated(f, kEntry, kEntry - 0x1000, kShort);
  ASSERT_EQ(r.trampoline.size(), 12u);
  EXPECT_EQ(Word(r.trampoline, 1), kStpFp);
}

TEST(Aarch64Relocate, NearTargetsAreReencodedOneForOne) {
  // b.eq, cbz, tbz, ldr, adr at +0x40 from 4 KB away: one word each, same absolute target.
  const std::vector<uint8_t> f = Function({0x54000200, 0x34000208, 0x3618020a, 0x58000203});
  a64::RelocatedPrologue r = Relocated(f, kEntry, kEntry - 0x1000, kLong);
  EXPECT_EQ(r.trampoline.size(), 24u);
  EXPECT_EQ(Word(r.trampoline, 1), 0x54000000u | (((0x1000 + 0x40 - 4) / 4) << 5));
}

TEST(Aarch64Relocate, FarJumpBackIsAbsoluteAndAligned) {
  for (uint64_t tramp : {kEntry + 0x40'0000'0000, kEntry + 0x40'0000'0004}) {
    a64::RelocatedPrologue r = Relocated(Function({}), kEntry, tramp, kShort);
    // bti c, stp, [nop,] ldr x16, #8; br x16; .quad entry+4
    const size_t n = r.trampoline.size() / 4;
    EXPECT_EQ(Word(r.trampoline, n - 4), 0x58000050u);
    EXPECT_EQ(Word(r.trampoline, n - 3), kBrX16);
    EXPECT_EQ((tramp + 4 * (n - 2)) % 8, 0u) << "the literal is 8-byte aligned";
    uint64_t back;
    std::memcpy(&back, r.trampoline.data() + 4 * (n - 2), 8);
    EXPECT_EQ(back, kEntry + 4);
  }
}

TEST(Aarch64Relocate, BtiEnforcementKeepsEveryBranchDirect) {
  // In reach: direct branches only, whatever the class.
  for (uint32_t w : kPcRelative) {
    a64::RelocatedPrologue r = Relocated(Function({kStpFp, kMovFp, kStp1920, w}), kEntry, kEntry + 0x4000000, kLongBti);
    for (size_t i = 0; i < r.trampoline.size() / 4; i++) {
      EXPECT_NE(Word(r.trampoline, i) & 0xff9ffc1f, 0xd61f0000u) << "no br/blr at word " << i;
    }
  }
  // Beyond b reach: the jump back, a moved b/bl, a moved conditional branch all need br.
  for (uint32_t w : {kStpFp, 0x14000010u, 0x94000010u, 0x54000200u, 0x3618020au}) {
    const std::vector<uint8_t> f = Function({kStpFp, kMovFp, kStp1920, w});
    Status s = Refusal(f, kLongBti, kEntry + 0x40000000);
    EXPECT_EQ(s.code(), StatusCode::kOutOfRange) << s;
    EXPECT_NE(s.message().find("landing pad"), absl::string_view::npos) << s;
    // Without enforcement, the same goes through x16.
    a64::RelocatedPrologue r = Relocated(f, kEntry, kEntry + 0x40000000, kLong);
    EXPECT_NE(std::string(r.trampoline.begin(), r.trampoline.end()).find(std::string("\x00\x02\x1f\xd6", 4)),
              std::string::npos) << "br x16";
  }
}

TEST(Aarch64Relocate, LandingPadsStayAtTheEntry) {
  struct Pad {
    uint32_t word;
    a64::LandingPad pad;
    uint32_t trampoline_starts;
  };
  for (const Pad& p : {Pad{kBtiC, a64::LandingPad::kBti, kBtiC}, Pad{0xd50324df, a64::LandingPad::kBti, kBtiC},
                       Pad{0xd503249f, a64::LandingPad::kBti, kBtiC}, Pad{kPaciasp, a64::LandingPad::kPaciasp, kPaciasp},
                       Pad{0xd503237f, a64::LandingPad::kPacibsp, 0xd503237f}}) {
    for (const a64::PatchOptions& o : {kLong, kShort, kLongBti}) {
      a64::RelocatedPrologue r = Relocated(Function({p.word, 0x3618020a}), kEntry, kEntry - 0x1000, o);
      EXPECT_EQ(r.entry_skip, 4u);
      EXPECT_EQ(r.entry_pad, p.pad);
      EXPECT_EQ(Word(r.trampoline, 0), p.trampoline_starts) << "paciasp/pacibsp re-sign LR, bti c lands br x16";
      EXPECT_EQ(Word(r.trampoline, 1), 0x36000000u | (((0x1000 + 0x44 - 4) / 4) << 5) | (3 << 19) | 10) << "tbz moved";
    }
  }
  // bti c then paciasp: only the first stays; paciasp moves like any position-independent word.
  a64::RelocatedPrologue r = Relocated(Function({kBtiC, kPaciasp}), kEntry, kEntry - 0x1000, kShort);
  EXPECT_EQ(r.entry_skip, 4u);
  EXPECT_EQ(Word(r.trampoline, 1), kPaciasp);
}

TEST(Aarch64Relocate, RefusesWhatItCannotMove) {
  struct Case {
    const char* what;
    std::vector<uint32_t> words;
    a64::PatchOptions options;
    StatusCode code;
    const char* reason;
  };
  const Case cases[] = {
      {"body shorter than the patch", {kStpFp, kMovFp, kRet}, kLong, StatusCode::kFailedPrecondition, "too short to patch: the body is 12 bytes"},
      {"empty body", {}, kShort, StatusCode::kFailedPrecondition, "too short"},
      {"code ends inside the patch", {0x14000010, kNop, kNop, kNop, kRet}, kLong, StatusCode::kFailedPrecondition, "its code ends at +4"},
      {"ret", {kRet, kNop}, kShort, StatusCode::kFailedPrecondition, "indirect branch or return at +0"},
      {"br", {kStpFp, 0xd61f0020, kNop, kNop}, kLong, StatusCode::kFailedPrecondition, "its code ends at +8"},
      {"blr", {kStpFp, kMovFp, 0xd63f0040, kNop, kRet}, kLong, StatusCode::kFailedPrecondition, "indirect branch or return at +8"},
      {"ldxr", {0xc85f7c20, kNop, kNop, kNop, kRet}, kLong, StatusCode::kFailedPrecondition, "exclusive load/store at +0"},
      {"ldaxr", {kBtiC, 0x885ffc62, kRet}, kShort, StatusCode::kFailedPrecondition, "exclusive load/store at +4"},
      {"mov x16, x0", {kStpFp, 0xaa0003f0, kNop, kNop, kRet}, kLong, StatusCode::kFailedPrecondition, "at +4 may use x16/x17"},
      {"adrp x16", {0x90000010, kRet}, kShort, StatusCode::kFailedPrecondition, "x16/x17"},
      {"pacia1716", {0xd503211f, kRet}, kShort, StatusCode::kFailedPrecondition, "x16/x17"},
      {"ldr x17, literal", {0x58000211, kRet}, kShort, StatusCode::kFailedPrecondition, "x16/x17"},
      {"add x0, x17, #1", {0x91000620, kRet}, kShort, StatusCode::kFailedPrecondition, "x16/x17"},
      {"add x0, x1, x16", {0x8b100020, kRet}, kShort, StatusCode::kFailedPrecondition, "x16/x17"},
      {"ldadd x16, x0, [x1]", {0xf8300020, kRet}, kShort, StatusCode::kFailedPrecondition, "x16/x17"},
      {"pacm (pac-ret+pc)", {0xd50324ff, kPaciasp, kRet}, kShort, StatusCode::kFailedPrecondition, "PAC instruction at +0 that uses its own address"},
      {"paciasppc", {kBtiC, 0xdac1a3fe, kRet}, kShort, StatusCode::kFailedPrecondition, "PAC instruction at +4"},
      {"autiasppc", {kStpFp, 0xf380009f, kNop, kNop, kRet}, kLong, StatusCode::kFailedPrecondition, "PAC instruction at +4"},
      {"udf", {0x00000000, kRet}, kShort, StatusCode::kInvalidArgument, "undecodable word 0x00000000 at +0"},
      {"a branch back into the patch", {kStpFp, kMovFp, kStp1920, kMovX19, 0xb5ffff80, kRet}, kLong, StatusCode::kFailedPrecondition, "the branch at +16 targets +0"},
      {"a loop to the entry", {kNop, kNop, kNop, kNop, 0x17fffffc, kRet}, kShort, StatusCode::kFailedPrecondition, "targets +0"},
      {"a jump over the bti", {kBtiC, kNop, kRet, 0x17fffffe}, kShort, StatusCode::kFailedPrecondition, "the branch at +12 targets +4"},
      {"a literal in the patch", {kNop, kNop, kNop, kNop, 0x58ffff80, kRet}, kLong, StatusCode::kFailedPrecondition, "the literal load at +16 targets +0"},
      {"a literal straddling the patch", {kBtiC, kNop, kRet, 0x58ffffa0}, kShort, StatusCode::kFailedPrecondition, "literal load at +12 targets +0"},
      {"FEAT_CMPBR's cb<cc>", {kStpFp, kMovFp, kRet, 0x74000000}, kShort, StatusCode::kInvalidArgument, "branch-space word this decoder does not know at +12"},
  };
  for (const Case& c : cases) {
    Status s = Refusal(Body(c.words), c.options);
    EXPECT_EQ(s.code(), c.code) << c.what << ": " << s;
    EXPECT_NE(s.message().find(c.reason), absl::string_view::npos) << c.what << ": " << s;
  }
  EXPECT_EQ(a64::RelocatePrologue(Function({}), kEntry + 2, kEntry - 0x1000, kLong).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(a64::RelocatePrologue(Function({}), kEntry, kEntry - 0x1002, kLong).status().code(), StatusCode::kInvalidArgument);
  Status overlap = a64::RelocatePrologue(Function({}), kEntry, kEntry + 0x20, kLong).status();
  EXPECT_EQ(overlap, InvalidArgumentError("the trampoline overlaps the function"));
  overlap = a64::RelocatePrologue(Function({}), kEntry, kEntry - 0x10, kLong).status();
  EXPECT_EQ(overlap.code(), StatusCode::kInvalidArgument);
}

TEST(Aarch64Relocate, AcceptsWhatOnlyLooksRisky) {
  // Fields that are not registers equal to 16/17; instructions beside x16/x17; data after the code.
  for (uint32_t w : {0xd10443ffu,   // sub sp, sp, #0x110 (imm bits 10-14 = 16)
                     0xa9b97bfdu,   // stp x29, x30, [sp, #-112]!
                     0xf9800010u,   // prfm pstl1keep, [x0] (prfop 16)
                     0xb9404001u,   // ldr w1, [x0, #64]
                     0xc8e0fc41u,   // casal x0, x1, [x2]: atomic, not exclusive
                     0xd4200000u,   // brk #0 as the last patched word
                     0x97fffffdu}) {  // bl to the entry itself: a recursive call
    Relocated(Function({kStpFp, kMovFp, kStp1920, w}), kEntry, kEntry - 0x1000, kLong);
  }
  // An undecodable word after the code does not matter, nor a recursive call's bl to +0.
  Relocated(Body({kStpFp, kMovFp, kStp1920, kMovX19, kRet, 0x00000000, 0x97fffffa}), kEntry, kEntry - 0x1000, kLong);
}

// x16/x17 as a general register, in each class that has one (llvm-mc encodings), and what only
// looks like them.
TEST(Aarch64Relocate, FindsX16AndX17InEveryClass) {
  for (uint32_t w : {0xf9400010u /* ldr x16, [x0] */, 0xf90007f1u /* str x17, [sp, #8] */,
                     0xa90047f0u /* stp x16, x17, [sp] */, 0xa94043e0u /* ldp x0, x16, [sp] */,
                     0x9e660010u /* fmov x16, d0 */, 0x9e670220u /* fmov d0, x17 */, 0x0e043c11u /* umov w17, v0.s[0] */,
                     0x4e040e00u /* dup v0.4s, w16 */, 0xd53bd050u /* mrs x16, tpidr_el0 */, 0xb4000050u /* cbz x16 */,
                     0x36080051u /* tbz w17 */, 0x9a810010u /* csel x16, x0, x1, eq */, 0x9b024020u /* madd x0, x1, x2, x16 */,
                     0xf8616a00u /* ldr x0, [x16, x1] */, 0xf8717820u /* ldr x0, [x1, x17, lsl #3] */,
                     0xf8b00020u /* ldadda x16, x0, [x1] */, 0xf8208031u /* swp x0, x17, [x1] */,
                     0xc8f0fc20u /* casal x16, x0, [x1] */, 0xf85f8010u /* ldur x16, [x0, #-8] */,
                     0xf8408600u /* ldr x0, [x16], #8 */, 0x9e620200u /* scvtf d0, x16 */, 0x93d00c20u /* extr x0, x1, x16, #3 */,
                     0xd2800030u /* mov x16, #1 */, 0x4cd07800u /* ld1 {v0.4s}, [x0], x16 */, 0xf8bfc010u /* ldapr x16, [x0] */,
                     0xd9004011u /* stlur x17, [x0, #4] */, 0xf83fd00au /* ld64b x10, [x0]: x10-x17 */}) {
    Status s = Refusal(Body({w, kStpFp, kRet}), kShort);
    EXPECT_NE(s.message().find("x16/x17"), absl::string_view::npos) << absl::StrFormat("%#010x: ", w) << s;
  }
  for (uint32_t w : {0x3dc00010u /* ldr q16, [x0] */, 0x4c407810u /* ld1 {v16.4s}, [x0] */, 0xad4047f0u /* ldp q16, q17, [sp] */,
                     0x1e604230u /* fmov d16, d17 */, 0x4ea08630u /* add v16.4s, v17.4s, v0.4s */,
                     0xf8a16810u /* prfm pstl1keep, [x0, x1] */, 0xf8801011u /* prfum pstl1strm, [x0, #1] */,
                     0xa9b87bfdu /* stp x29, x30, [sp, #-128]! */, 0xb9404420u /* ldr w0, [x1, #68] */}) {
    Relocated(Function({kStpFp, kMovFp, kStp1920, w}), kEntry, kEntry - 0x1000, kLong);
  }
}

TEST(Aarch64Relocate, EncodesEntryPatches) {
  uint8_t b[a64::kBranchSize];
  ASSERT_TRUE(a64::EncodeBranch(kEntry, kEntry + 0x7fffffc, b));
  uint32_t w;
  std::memcpy(&w, b, 4);
  EXPECT_EQ(w, 0x15ffffffu);
  ASSERT_TRUE(a64::EncodeBranch(kEntry, kEntry - 0x8000000, b));
  std::memcpy(&w, b, 4);
  EXPECT_EQ(w, 0x16000000u);
  EXPECT_FALSE(a64::EncodeBranch(kEntry, kEntry + 0x8000000, b));
  EXPECT_FALSE(a64::EncodeBranch(kEntry, kEntry - 0x8000004, b));
  EXPECT_FALSE(a64::EncodeBranch(kEntry, kEntry + 2, b));

  uint8_t abs[a64::kAbsoluteBranchSize];
  a64::EncodeAbsoluteBranch(0x0123'4567'89ab'cdef, abs);
  const uint8_t expected[] = {0x50, 0x00, 0x00, 0x58, 0x00, 0x02, 0x1f, 0xd6, 0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01};
  EXPECT_EQ(std::vector<uint8_t>(abs, abs + 16), std::vector<uint8_t>(expected, expected + 16));
}

// The interpreter is a real check: it tells a wrong trampoline from a right one.
TEST(Aarch64Relocate, TheCheckSeesAWrongTrampoline) {
  const std::vector<uint8_t> f = Function({0xf0000001, 0x34000208, 0x58000203, 0x94000010});
  for (int64_t d : kDistances) {
    const uint64_t tramp = kEntry + static_cast<uint64_t>(d);
    StatusOr<a64::RelocatedPrologue> r = a64::RelocatePrologue(f, kEntry, tramp, kLong);
    ASSERT_TRUE(r.ok()) << r.status();
    for (size_t i = 1; i < r->trampoline.size() / 4; i++) {
      std::vector<uint8_t> broken = r->trampoline;
      broken[4 * i + 1] ^= 0x10;  // bit 13 of each word in turn (an offset, a register, an opcode bit)
      const eval::Verdict v = eval::CheckEquivalent({f, kEntry, 0, 16, broken, tramp});
      EXPECT_TRUE(!v.difference.empty() || v.ambiguous) << "word " << i << " at distance " << d;
    }
  }
}

TEST(Aarch64Relocate, Node24Bodies) {
  for (const testing::node24_arm64::Function& fn : testing::node24_arm64::kFunctions) {
    const std::vector<uint8_t> body = Body(std::vector<uint32_t>(fn.words, fn.words + fn.count));
    // The page below the executable (0x400000), a slot page 64 MB and 1 GB above its text, and
    // under BTI enforcement (Node 24 is not marked: a check of the rule on real code).
    for (uint64_t tramp : {uint64_t{0x3ff000}, fn.address + 0x4000000, fn.address + 0x40000000}) {
      for (const a64::PatchOptions& o : {kLong, kShort, kLongBti, a64::PatchOptions{EntryPatch::kBranch, true}}) {
        SCOPED_TRACE(absl::StrFormat("%s, trampoline %#x, %d-byte patch%s", fn.name, tramp, o.entry_patch == EntryPatch::kBranch ? 4 : 16, o.bti_enforced ? ", BTI" : ""));
        if (o.bti_enforced && tramp - fn.address > 0x8000000 && fn.address - tramp > 0x8000000) {
          EXPECT_EQ(a64::RelocatePrologue(body, fn.address, tramp, o).status().code(), StatusCode::kOutOfRange);
          continue;
        }
        a64::RelocatedPrologue r = Relocated(body, fn.address, tramp, o);
        EXPECT_EQ(r.entry_skip, 0u);
      }
    }
  }
}

}  // namespace
}  // namespace awfshim
