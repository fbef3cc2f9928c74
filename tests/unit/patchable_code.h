// Hand-written functions for the entry-patching tests (code_patch_test.cc), per architecture,
// shaped like the prologues the TLS tap meets in Node.js.
//
// kAddConstant: long f(long x) { return K + x; } with K = 1000 loaded PC-relative, behind a landing
// pad (4 bytes, which stays at the entry); kZeroTest: long f(long x) { return x ? x + 1 : -1; },
// whose first instruction is a conditional branch the trampoline must re-target; kTooShort: a
// body no patch fits; kLoopIntoPrologue: a loop that branches back into the patched bytes.
// EntryJumps: whether the patch (the jump to the hook) is at an entry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <vector>

namespace awfshim::patchable {

using Code = std::vector<uint8_t>;

#if defined(__x86_64__)
constexpr uint8_t kFill = 0xcc;  // int3

inline const Code kAddConstant = {
    0xf3, 0x0f, 0x1e, 0xfa,                    // endbr64
    0x48, 0x8b, 0x05, 0x09, 0x00, 0x00, 0x00,  // mov rax, [rip+9]  -> +20
    0x48, 0x01, 0xf8,                          // add rax, rdi
    0xc3,                                      // ret
    0xcc, 0xcc, 0xcc, 0xcc, 0xcc,              // padding
    0xe8, 0x03, 0x00, 0x00, 0, 0, 0, 0,        // +20: K = 1000
};
constexpr size_t kAddConstantSize = 15;

// Like Node 24's SSL_write_ex.
inline const Code kZeroTest = {
    0x48, 0x85, 0xff,                          // test rdi, rdi
    0x74, 0x05,                                // je +10
    0x48, 0x8d, 0x47, 0x01,                    // lea rax, [rdi+1]
    0xc3,                                      // ret
    0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff,  // +10: mov rax, -1
    0xc3,                                      // ret
};
constexpr size_t kZeroTestSize = 18;

inline const Code kTooShort = {0x31, 0xc0, 0xc3};  // xor eax, eax; ret: shorter than the jump
constexpr char kTooShortReason[] = "short: too short";

// long f(long n) { long r = 0; do r++; while (--n); return r; }: f(3) = 3, its loop back to +2.
inline const Code kLoopIntoPrologue = {
    0x31, 0xc0,        // xor eax, eax
    0x48, 0xff, 0xc0,  // +2: inc rax
    0x48, 0xff, 0xcf,  // dec rdi
    0x75, 0xf8,        // jne +2
    0xc3,              // ret
};
constexpr long kLoopOf3 = 3;
constexpr char kLoopReason[] = "targets +2";

// The patch: a `jmp rel32` at the entry or after endbr64.
inline bool EntryJumps(const uint8_t* e) { return e[0] == 0xe9 || e[4] == 0xe9; }

#elif defined(__aarch64__)
constexpr uint8_t kFill = 0x00;  // udf #0

inline Code Words(std::initializer_list<uint32_t> words) {
  Code out(4 * words.size());
  std::memcpy(out.data(), words.begin(), out.size());
  return out;
}

constexpr uint32_t kBtiC = 0xd503245f, kPaciasp = 0xd503233f, kPacibsp = 0xd503237f, kAutiasp = 0xd50323bf,
                   kAutibsp = 0xd50323ff, kRet = 0xd65f03c0;

inline const Code kAddConstant = Words({
    kBtiC,
    0x58000061,  // ldr x1, #12  -> +16
    0x8b000020,  // add x0, x1, x0
    kRet,
    1000, 0,     // +16: K
});
constexpr size_t kAddConstantSize = 16;

inline const Code kZeroTest = Words({
    0xb4000060,  // cbz x0, +12
    0x91000400,  // add x0, x0, #1
    kRet,
    0x92800000,  // +12: mov x0, #-1
    kRet,
});
constexpr size_t kZeroTestSize = 20;

inline const Code kTooShort = Words({kRet});  // a lone ret, like short_ssl's SSL_write
constexpr char kTooShortReason[] = "short: at +0: an indirect branch or return at +0";

// long f(long n) { do n--; while (n); return n; }: f(3) = 0, its loop back to +0.
inline const Code kLoopIntoPrologue = Words({
    0xd1000400,  // sub x0, x0, #1
    0xb5ffffe0,  // cbnz x0, +0
    kRet,
});
constexpr long kLoopOf3 = 0;
constexpr char kLoopReason[] = "targets +0";

// long f(long x) { return 2 * x + 3; } in a frame whose LR is signed with SP (key A or B), the
// doubling in a function it calls: the hook must be entered with LR authenticated and the
// original must return into the hook.
inline Code PacFrame(uint32_t sign, uint32_t authenticate) {
  return Words({
      sign,
      0xa9bf7bfd,  // stp x29, x30, [sp, #-16]!
      0x910003fd,  // mov x29, sp
      0x94000005,  // bl +32
      0x91000c00,  // add x0, x0, #3
      0xa8c17bfd,  // ldp x29, x30, [sp], #16
      authenticate,
      kRet,
      0x8b000000,  // +32: add x0, x0, x0
      kRet,
  });
}

// long f(long) { return LR signed by paciasp ^ LR; }: non-zero where pointer authentication is on.
inline const Code kPacSigns = Words({
    0xaa1e03e0,  // mov x0, x30
    kPaciasp,
    0xaa1e03e1,  // mov x1, x30
    kAutiasp,
    0xca000020,  // eor x0, x1, x0
    kRet,
});

// The patch: a `b` at the entry or after its landing pad.
inline bool EntryJumps(const uint8_t* e) {
  uint32_t w[2];
  std::memcpy(w, e, sizeof w);
  return (w[0] & 0xfc000000) == 0x14000000 || (w[1] & 0xfc000000) == 0x14000000;
}
#endif

}  // namespace awfshim::patchable
