// A small aarch64 interpreter for the prologue relocator's tests (tests/unit/aarch64_relocate_test.cc
// and tests/fuzz/fuzz_aarch64_relocate.cc): it runs a function's patched instructions at their
// own address and the trampoline at its, from the same registers, and compares what they do.
// Written apart from shim/core/aarch64_insn.h on purpose: a shared mistake would cancel out.
//
// Executed: adr, adrp, add (immediate, 64-bit), movz/movk (64-bit), ldr/ldrsw/ldr s|d|q/prfm
// (literal, and unsigned offset), b, bl, b.cond, cbz/cbnz, tbz/tbnz, br, blr, ret, nop and bti.
// Every other instruction is opaque: not executed, but recorded with a hash of the registers it
// could read (all but x16/x17, the emitted code's scratch), so both runs must meet the same opaque
// instructions in the same order on the same state. A run ends when the PC leaves its code, and at
// any call (bl, blr): then both must call the same target, and what follows each return address
// is compared the same way. Data reads: the trampoline's own bytes, the function's (in the
// trampoline's run, the patched bytes read otherwise, as the patch replaced them), a hash of the
// address elsewhere. An original run that reads the patched bytes (a literal load the relocator
// must have refused, or a register that happens to point there, which no relocator can know) or
// reads or branches where the trampoline lies is ambiguous (the two worlds differ there) and not
// compared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/types/span.h"

namespace awfshim::testing::a64 {

inline uint64_t Mix(uint64_t h, uint64_t v) {  // splitmix64 step over h ^ v
  uint64_t z = (h ^ v) + 0x9e3779b97f4a7c15;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

inline uint32_t Bits(uint32_t w, int hi, int lo) { return (w >> lo) & ((1u << (hi - lo + 1)) - 1); }
inline uint64_t Sext(uint64_t v, int bits) { return static_cast<uint64_t>(static_cast<int64_t>(v << (64 - bits)) >> (64 - bits)); }

// Independent decoding of what a word targets at `pc`: a branch's destination, a literal's address.
struct Target {
  enum { kJump, kCall, kLiteral, kAddress } what;
  uint64_t address;
  int size = 0;  // bytes a literal load reads (0: prfm)
};
// GCC 12 with -fsanitize=address,undefined calls the word, inlined from a caller's buffer, "maybe
// uninitialized" here: every caller passes a decoded word.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
inline std::optional<Target> TargetOf(uint32_t w, uint64_t pc) {
  if (Bits(w, 30, 26) == 0b00101) return Target{w >> 31 ? Target::kCall : Target::kJump, pc + Sext(Bits(w, 25, 0), 26) * 4};
  if (Bits(w, 31, 24) == 0x54 || Bits(w, 30, 25) == 0b011010) return Target{Target::kJump, pc + Sext(Bits(w, 23, 5), 19) * 4};
  if (Bits(w, 30, 25) == 0b011011) return Target{Target::kJump, pc + Sext(Bits(w, 18, 5), 14) * 4};
  if (Bits(w, 29, 27) == 0b011 && Bits(w, 25, 24) == 0) {
    static constexpr int kGpr[] = {4, 8, 4, 0}, kFp[] = {4, 8, 16, 0};
    const uint32_t opc = w >> 30;
    return Target{Target::kLiteral, pc + Sext(Bits(w, 23, 5), 19) * 4, (w >> 26 & 1) ? kFp[opc] : kGpr[opc]};
  }
  if (Bits(w, 28, 24) == 0b10000) {
    const uint64_t imm = Sext(Bits(w, 23, 5) << 2 | Bits(w, 30, 29), 21);
    return Target{Target::kAddress, w >> 31 ? (pc & ~uint64_t{0xfff}) + (imm << 12) : pc + imm};
  }
  return std::nullopt;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

struct Machine {
  uint64_t x[31] = {};
  uint64_t sp = 0;
  uint64_t v[32][2] = {};
  uint32_t nzcv = 0;
  bool operator==(const Machine&) const = default;
};

struct Layout {
  absl::Span<const uint8_t> function;
  uint64_t entry = 0;
  size_t entry_skip = 0, patched_length = 0;
  absl::Span<const uint8_t> trampoline;
  uint64_t trampoline_at = 0;
};

struct Outcome {
  uint64_t pc = 0;
  bool call = false, limit = false, ambiguous = false;
  Machine m;
  std::vector<uint64_t> events;
};

class Interpreter {
 public:
  Interpreter(const Layout& l, bool trampoline) : l_(l), trampoline_(trampoline) {}

  // Runs from `pc` while it stays in the run's code (the first instruction in any case when
  // `force_first`: the kept landing pad, before the patched bytes).
  Outcome Run(uint64_t pc, Machine m, bool force_first) {
    Outcome o;
    const uint64_t lo = trampoline_ ? l_.trampoline_at : l_.entry + l_.entry_skip;
    const uint64_t n = trampoline_ ? l_.trampoline.size() : l_.patched_length;
    for (int steps = 0; force_first || pc - lo < n; steps++, force_first = false) {
      if (steps == 1000) { o.limit = true; break; }
      uint32_t w = 0;
      std::memcpy(&w, (trampoline_ ? l_.trampoline.data() + (pc - lo) : l_.function.data() + (pc - l_.entry)), 4);
      if (!Step(w, pc, m, o)) break;
    }
    o.pc = pc;
    o.m = m;
    if (!trampoline_ && Inside(pc, 1)) o.ambiguous = true;
    return o;
  }

 private:
  bool Inside(uint64_t a, uint64_t size) const {  // meets the trampoline's bytes
    return a - l_.trampoline_at < l_.trampoline.size() || l_.trampoline_at - a < size;
  }
  uint8_t Byte(uint64_t a, Outcome& o) const {
    if (a - l_.trampoline_at < l_.trampoline.size()) {
      if (trampoline_) return l_.trampoline[a - l_.trampoline_at];
      o.ambiguous = true;
    }
    if (a - l_.entry < l_.function.size()) {
      const uint8_t b = l_.function[a - l_.entry];
      if (a - (l_.entry + l_.entry_skip) >= l_.patched_length) return b;
      if (!trampoline_) o.ambiguous = true;  // a pointer into the patched bytes: the patch shows
      return trampoline_ ? b ^ 0x5a : b;
    }
    return static_cast<uint8_t>(Mix(0x1234, a));
  }
  uint64_t Read(uint64_t a, int size, Outcome& o) const {
    uint64_t v = 0;
    for (int i = size - 1; i >= 0; i--) v = v << 8 | Byte(a + i, o);
    return v;
  }
  static uint64_t StateHash(const Machine& m) {
    uint64_t h = Mix(m.nzcv, m.sp);
    for (int i = 0; i < 31; i++) h = (i == 16 || i == 17) ? h : Mix(h, m.x[i]);
    for (const auto& q : m.v) h = Mix(Mix(h, q[0]), q[1]);
    return h;
  }
  static bool Holds(uint32_t cond, uint32_t nzcv) {
    const bool n = nzcv & 8, z = nzcv & 4, c = nzcv & 2, v = nzcv & 1;
    bool r = false;
    switch (cond >> 1) {
      case 0: r = z; break;
      case 1: r = c; break;
      case 2: r = n; break;
      case 3: r = v; break;
      case 4: r = c && !z; break;
      case 5: r = n == v; break;
      case 6: r = n == v && !z; break;
      default: return true;  // al, nv
    }
    return (cond & 1) ? !r : r;
  }
  // A load of `size` bytes at `a` into general register `rt` (sign-extending a word if `sx`) or
  // vector register `rt`.
  void Load(Machine& m, Outcome& o, bool fp, int size, bool sx, uint32_t rt, uint64_t a) const {
    if (fp) {
      m.v[rt][0] = Read(a, size > 8 ? 8 : size, o);
      m.v[rt][1] = size > 8 ? Read(a + 8, 8, o) : 0;
    } else if (rt != 31) {
      const uint64_t raw = Read(a, size, o);
      m.x[rt] = sx ? Sext(raw, 32) : raw;
    } else {
      Read(a, size, o);
    }
  }

  // Bytes loaded (the offset's scale) by the unsigned-offset loads the relocator emits, by opcode.
  static int UnsignedLoadSize(uint32_t op) {
    switch (op) {
      case 0xf9400000: case 0xf9800000: case 0xfd400000: return 8;  // ldr x, prfm, ldr d
      case 0xb9400000: case 0xb9800000: case 0xbd400000: return 4;  // ldr w, ldrsw, ldr s
      case 0x3dc00000: return 16;                                    // ldr q
      default: return 0;
    }
  }

  // Executes `w` at `pc`; false when the run ends (a call).
  bool Step(uint32_t w, uint64_t& pc, Machine& m, Outcome& o) const {
    const uint32_t rd = w & 31, rn = Bits(w, 9, 5);
    auto x = [&](uint32_t r) { return r == 31 ? uint64_t{0} : m.x[r]; };
    const std::optional<Target> t = TargetOf(w, pc);
    uint64_t next = pc + 4;
    if (t && t->what == Target::kAddress) {
      if (rd != 31) m.x[rd] = t->address;
    } else if (t && t->what == Target::kCall) {
      m.x[30] = next;
      pc = t->address;
      o.call = true;
      return false;
    } else if (t && t->what == Target::kLiteral) {
      if (!trampoline_ && Inside(t->address, t->size ? t->size : 1)) o.ambiguous = true;
      if (t->size == 0) {
        o.events.push_back(Mix(Mix(0x9f, rd), t->address));  // prfm: what and where
      } else {
        Load(m, o, w >> 26 & 1, t->size, (w >> 30) == 2 && !(w >> 26 & 1), rd, t->address);
      }
    } else if (t) {  // jumps: b, b.cond, cbz/cbnz, tbz/tbnz
      bool taken = true;
      if (Bits(w, 31, 24) == 0x54) taken = Holds(w & 15, m.nzcv);
      if (Bits(w, 30, 25) == 0b011010) taken = ((w >> 31) ? x(rd) : static_cast<uint32_t>(x(rd))) == 0;
      if (Bits(w, 30, 25) == 0b011011) taken = !(x(rd) >> (Bits(w, 31, 31) << 5 | Bits(w, 23, 19)) & 1);
      if (Bits(w, 30, 25) == 0b011010 || Bits(w, 30, 25) == 0b011011) taken ^= (w >> 24) & 1;  // cbnz, tbnz
      if (taken) next = t->address;
    } else if ((w & 0xff800000) == 0x91000000) {  // add xd|sp, xn|sp, #imm{, lsl 12}
      const uint64_t v = (rn == 31 ? m.sp : m.x[rn]) + (uint64_t{Bits(w, 21, 10)} << (w >> 22 & 1 ? 12 : 0));
      (rd == 31 ? m.sp : m.x[rd]) = v;
    } else if ((w & 0xff800000) == 0xd2800000 || (w & 0xff800000) == 0xf2800000) {  // movz, movk
      const int shift = 16 * Bits(w, 22, 21);
      const uint64_t imm = uint64_t{Bits(w, 20, 5)} << shift;
      if (rd != 31) m.x[rd] = (w >> 29 & 1) ? (m.x[rd] & ~(uint64_t{0xffff} << shift)) | imm : imm;
    } else if (const int size = UnsignedLoadSize(w & 0xffc00000); size > 0) {
      // ldr x|w|s|d|q, ldrsw, prfm [xn|sp, #imm] (unsigned offset), as the relocator emits them
      const uint64_t a = (rn == 31 ? m.sp : m.x[rn]) + uint64_t{Bits(w, 21, 10)} * size;
      if ((w & 0xffc00000) == 0xf9800000) {
        o.events.push_back(Mix(Mix(0x9f, rd), a));
      } else {
        Load(m, o, w >> 26 & 1, size, (w & 0xffc00000) == 0xb9800000, rd, a);
      }
    } else if ((w & 0xffbffc1f) == 0xd61f0000) {  // br, ret (opc 0000/0010)
      next = m.x[rn];
    } else if ((w & 0xfffffc1f) == 0xd63f0000) {  // blr
      pc = m.x[rn];
      m.x[30] = next;
      o.call = true;
      return false;
    } else if (w == 0xd503201f || (w & 0xffffff3f) == 0xd503241f) {  // nop, bti
    } else {
      o.events.push_back(Mix(w, StateHash(m)));
    }
    pc = next;
    return true;
  }

  const Layout& l_;
  bool trampoline_;
};

struct Verdict {
  bool ambiguous = false;
  std::string difference;  // empty: equivalent
};

// Runs the original (from the entry) and the trampoline from `m` and compares, following calls.
inline void Compare(const Layout& l, uint64_t orig_pc, uint64_t tramp_pc, const Machine& m, bool from_entry,
                    Verdict& v, int depth = 0) {
  const Outcome a = Interpreter(l, false).Run(orig_pc, m, from_entry && l.entry_skip > 0);
  const Outcome b = Interpreter(l, true).Run(tramp_pc, m, false);
  if (a.ambiguous) {
    v.ambiguous = true;
    return;
  }
  Machine ma = a.m, mb = b.m;
  for (Machine* mm : {&ma, &mb}) {
    mm->x[16] = mm->x[17] = 0;
    if (a.call) mm->x[30] = 0;  // each run's own return address, compared below
  }
  std::string d;
  if (a.limit || b.limit) d = "a run did not end";
  else if (a.pc != b.pc || a.call != b.call) d = absl::StrFormat("exit %#x%s vs %#x%s", a.pc, a.call ? " (call)" : "", b.pc, b.call ? " (call)" : "");
  else if (a.events != b.events) d = absl::StrFormat("%d vs %d opaque/prefetch events, or on different state", a.events.size(), b.events.size());
  else if (!(ma == mb)) {
    for (int i = 0; i < 31 && d.empty(); i++) {
      if (ma.x[i] != mb.x[i]) d = absl::StrFormat("x%d: %#x vs %#x", i, ma.x[i], mb.x[i]);
    }
    if (d.empty()) d = "sp, nzcv or a vector register";
  }
  if (!d.empty()) {
    if (v.difference.empty()) v.difference = absl::StrFormat("from %#x / %#x, nzcv %x: %s", orig_pc, tramp_pc, m.nzcv, d);
    return;
  }
  if (a.call && depth < 8) {  // the callee returns to each one's x30, with whatever state it left
    Machine after = m;
    after.x[0] = Mix(a.pc, 1);
    after.x[30] = 0x30;
    Compare(l, a.m.x[30], b.m.x[30], after, false, v, depth + 1);
  }
}

// Every probe: registers all zero, all ones, and pseudo-random, each with every NZCV.
inline Verdict CheckEquivalent(const Layout& l, uint64_t seed = 1) {
  Verdict v;
  for (int pattern = 0; pattern < 3; pattern++) {
    Machine m;
    for (int i = 0; i < 31; i++) m.x[i] = pattern == 0 ? 0 : pattern == 1 ? ~uint64_t{0} : Mix(seed, i);
    m.sp = 0x7ff0'0000'0000 + (Mix(seed, 99) & 0xfff0);
    for (int i = 0; i < 32; i++) m.v[i][0] = m.v[i][1] = Mix(seed, 100 + i);
    for (uint32_t nzcv = 0; nzcv < 16; nzcv++) {
      m.nzcv = nzcv;
      Compare(l, l.entry, l.trampoline_at, m, true, v);
    }
  }
  return v;
}

}  // namespace awfshim::testing::a64
