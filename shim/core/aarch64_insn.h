// The aarch64 instruction words the prologue relocator (aarch64_relocate.cc) reads and writes: a
// decoder for the PC-relative classes only — every instruction is one 32-bit word, and all but
// these are position-independent — and encoders for the few instructions it emits. Bit layouts
// from the Arm ARM (DDI 0487), "A64 instruction set encoding". Internal to shim/core.
#pragma once

#include <cstdint>
#include <optional>

namespace awfshim::aarch64::insn {

inline constexpr uint32_t kNop = 0xd503201f;
inline constexpr uint32_t kBtiC = 0xd503245f;
inline constexpr uint32_t kPaciasp = 0xd503233f;
inline constexpr uint32_t kPacibsp = 0xd503237f;
inline constexpr uint32_t kLdrX16Plus8 = 0x58000050;  // ldr x16, #8
inline constexpr int kIp0 = 16;                       // x16, the scratch register emitted code uses
inline constexpr int kZr = 31;                        // xzr/wzr where a register field allows it

constexpr uint32_t Field(uint32_t w, int lo, int bits) { return (w >> lo) & ((1u << bits) - 1); }
constexpr int64_t SignExtend(uint64_t v, int bits) {
  return static_cast<int64_t>(v << (64 - bits)) >> (64 - bits);
}
constexpr bool FitsSigned(int64_t v, int bits) {
  return v >= -(int64_t{1} << (bits - 1)) && v < (int64_t{1} << (bits - 1));
}

// What a literal load loads (its opc and V bits).
enum class Literal { kW, kX, kSw, kPrfm, kS, kD, kQ };

// Bytes a literal load reads (none for a prefetch).
constexpr int LiteralSize(Literal l) {
  switch (l) {
    case Literal::kW: case Literal::kSw: case Literal::kS: return 4;
    case Literal::kX: case Literal::kD: return 8;
    case Literal::kQ: return 16;
    case Literal::kPrfm: return 0;
  }
  return 0;
}

enum class Kind { kOther, kAdr, kAdrp, kB, kBl, kBCond, kCbz, kTbz, kLdrLiteral, kUnallocatedLiteral };

struct PcRelative {
  Kind kind = Kind::kOther;
  uint64_t target = 0;  // branch target, computed address, or the literal's address
  int reg = 0;          // Rd / Rt
  Literal literal = Literal::kW;
};

// Decodes `w` at `pc`. b.cond includes BC.cond (FEAT_HBC, bit 4), which differs only as a hint.
inline PcRelative Decode(uint32_t w, uint64_t pc) {
  PcRelative p;
  p.reg = static_cast<int>(w & 31);
  auto rel = [&](int lo, int bits) { return pc + static_cast<uint64_t>(SignExtend(Field(w, lo, bits), bits) * 4); };
  if ((w & 0x1f000000) == 0x10000000) {  // adr, adrp
    const int64_t imm = SignExtend((Field(w, 5, 19) << 2) | Field(w, 29, 2), 21);
    p.kind = (w >> 31) ? Kind::kAdrp : Kind::kAdr;
    p.target = p.kind == Kind::kAdr ? pc + static_cast<uint64_t>(imm)
                                    : (pc & ~uint64_t{0xfff}) + static_cast<uint64_t>(imm) * 4096;
  } else if ((w & 0x7c000000) == 0x14000000) {  // b, bl
    p.kind = (w >> 31) ? Kind::kBl : Kind::kB;
    p.target = rel(0, 26);
  } else if ((w & 0xff000000) == 0x54000000) {
    p.kind = Kind::kBCond;
    p.target = rel(5, 19);
  } else if ((w & 0x7e000000) == 0x34000000) {  // cbz, cbnz
    p.kind = Kind::kCbz;
    p.target = rel(5, 19);
  } else if ((w & 0x7e000000) == 0x36000000) {  // tbz, tbnz
    p.kind = Kind::kTbz;
    p.target = rel(5, 14);
  } else if ((w & 0x3b000000) == 0x18000000) {  // ldr (literal): opc 31-30, V 26
    static constexpr Literal kGpr[] = {Literal::kW, Literal::kX, Literal::kSw, Literal::kPrfm};
    static constexpr Literal kFp[] = {Literal::kS, Literal::kD, Literal::kQ};
    const uint32_t opc = w >> 30;
    const bool fp = w & (1u << 26);
    p.kind = fp && opc == 3 ? Kind::kUnallocatedLiteral : Kind::kLdrLiteral;
    p.literal = fp ? kFp[opc == 3 ? 0 : opc] : kGpr[opc];
    p.target = rel(5, 19);
  }
  return p;
}

constexpr bool IsBranch(Kind k) {
  return k == Kind::kB || k == Kind::kBl || k == Kind::kBCond || k == Kind::kCbz || k == Kind::kTbz;
}

// Words of the branch encoding space (op0 x101) outside every class above and in
// IsIndirectBranch/system/exception: unallocated, or newer than this decoder (FEAT_CMPBR's
// cb<cc>, whose targets it cannot compute).
constexpr bool IsUnknownBranchSpace(uint32_t w) {
  if (Field(w, 26, 3) != 0b101) return false;
  const uint32_t top = w >> 29;
  return top == 0b011 || top == 0b111 || (top == 0b010 && Field(w, 24, 2) != 0);
}

// Reserved (udf) or unallocated top-level encodings, and unknown branch-space words.
constexpr bool IsUndecodable(uint32_t w) {
  const uint32_t op0 = Field(w, 25, 4);
  return (op0 == 0 && !(w >> 31)) || op0 == 0b0001 || op0 == 0b0011 || IsUnknownBranchSpace(w) ||
         ((w & 0x3b000000) == 0x18000000 && (w & (1u << 26)) && (w >> 30) == 3);
}

// br, blr, ret, eret and their pointer-authenticating forms.
constexpr bool IsIndirectBranch(uint32_t w) { return (w & 0xfe000000) == 0xd6000000; }
// ldxr/stxr/ldaxr/stlxr/ldxp/stxp (o2 = 0; casp shares the space and is refused with them).
constexpr bool IsExclusive(uint32_t w) { return (w & 0x3f800000) == 0x08000000; }
// FEAT_PAuth_LR (Armv9.5): pacm (hint #39, which makes the next paciasp/autiasp use its own PC),
// paciasppc & co. (data processing, one source, opcode 1xxxxx) and autiasppc/autibsppc: they sign
// or authenticate with the PC, so they cannot move.
constexpr bool UsesPcInPac(uint32_t w) {
  return w == 0xd50324ff || (w & 0xffff8000) == 0xdac18000 || (w & 0xffc0001f) == 0xf380001f;
}
// Nothing after it runs: b, an indirect branch other than blr, brk, hlt.
constexpr bool EndsFlow(uint32_t w) {
  return (w & 0xfc000000) == 0x14000000 || (IsIndirectBranch(w) && Field(w, 21, 2) != 1) ||
         (w & 0xffe0001f) == 0xd4200000 || (w & 0xffe0001f) == 0xd4400000;
}

// Whether `w` may read or write x16 or x17 (IP0/IP1). Conservative: a field that names a general
// register in some form of the instruction's class counts.
inline bool MayUseIp(uint32_t w) {
  auto ip = [](uint32_t r) { return r == 16 || r == 17; };
  const uint32_t rd = Field(w, 0, 5), rn = Field(w, 5, 5), ra = Field(w, 10, 5), rm = Field(w, 16, 5);
  const uint32_t op0 = Field(w, 25, 4);
  if ((op0 & 0b1110) == 0b1000) {  // data processing, immediate
    const uint32_t op = Field(w, 23, 3);
    if (op <= 1 || op == 0b101) return ip(rd);  // adr/adrp, move wide
    return ip(rd) || ip(rn) || (op == 0b111 && ip(rm));
  }
  if ((op0 & 0b1110) == 0b1010) {  // branches, exceptions, system
    if ((w & 0x7c000000) == 0x14000000 || (w & 0xff000000) == 0x54000000 || (w >> 24) == 0xd4) return false;
    if ((w & 0xffffff3f) == 0xd503211f) return true;  // pacia1716, pacib1716, autia1716, autib1716
    if ((w & 0x7c000000) == 0x34000000 || (w >> 24) == 0xd5) return ip(rd);  // cbz/tbz Rt, system Rt
    return ip(rd) || ip(rn);                                            // br/blr/ret Rn (and Rm)
  }
  if ((op0 & 0b0101) == 0b0100) {  // loads and stores
    const bool fp = w & (1u << 26);
    if ((w & 0x3b000000) == 0x18000000) return !fp && (w >> 30) != 3 && ip(rd);  // literal
    const uint32_t cls = Field(w, 24, 6);  // bits 29-24
    if ((w & 0xfffffc00) == 0xf83fd000 || (w & 0xfffffc00) == 0xf83f9000 || (w & 0xffe0ec00) == 0xf820a000) {
      return (rd <= 17 && rd + 7 >= 16) || ip(rn) || ip(rm);  // ld64b/st64b/st64bv: eight registers from Rt
    }
    // prfm's Rt is the prefetch operation: unsigned offset, register offset, prfum (not atomics).
    const bool bit21 = (w >> 21) & 1;
    const bool prfm = (w >> 30) == 3 && !fp && Field(w, 22, 2) == 2 &&
                      (cls == 0b111001 || (cls == 0b111000 && Field(w, 10, 2) == (bit21 ? 2u : 0u)));
    const bool pair = Field(w, 27, 3) == 0b101;
    const bool imm_form = pair || (Field(w, 28, 2) == 3 && ((w >> 24) & 1)) ||
                          (Field(w, 28, 2) == 3 && !((w >> 24) & 1) && !bit21) ||
                          (cls == 0b011001 && !bit21 && Field(w, 10, 2) == 0);
    return (!fp && !prfm && ip(rd)) || ip(rn) || (!imm_form && ip(rm)) ||
           (((pair && !fp) || cls == 0b001000) && ip(ra));
  }
  if ((op0 & 0b0111) == 0b0101) {  // data processing, register
    return ip(rd) || ip(rn) || ip(rm) || (Field(w, 24, 5) == 0b11011 && ip(ra));
  }
  if ((op0 & 0b0111) == 0b0111) {  // SIMD and floating point: general registers in two classes
    const bool convert = (w & 0x7f20fc00) == 0x1e200000, copy = (w & 0x9fe08400) == 0x0e000400;
    return (convert || copy) && (ip(rd) || ip(rn));
  }
  return ip(rd) || ip(rn) || ip(rm);  // SVE, SME: scalar operands in these fields
}

// The word with the branch-offset field at bits [lo, lo+bits) set to reach `to` from `from`.
inline std::optional<uint32_t> WithOffset(uint32_t w, int lo, int bits, uint64_t from, uint64_t to) {
  const int64_t d = static_cast<int64_t>(to - from);
  if ((d & 3) || !FitsSigned(d / 4, bits)) return std::nullopt;
  const uint32_t mask = ((1u << bits) - 1) << lo;
  return (w & ~mask) | ((static_cast<uint32_t>(d / 4) << lo) & mask);
}

// `w` (a PC-relative branch or literal load of `kind`) moved to `from`, same target.
inline std::optional<uint32_t> Retarget(uint32_t w, Kind kind, uint64_t from, uint64_t to) {
  switch (kind) {
    case Kind::kB: case Kind::kBl: return WithOffset(w, 0, 26, from, to);
    case Kind::kTbz: return WithOffset(w, 5, 14, from, to);
    default: return WithOffset(w, 5, 19, from, to);  // b.cond, cbz/cbnz, ldr (literal)
  }
}

inline uint32_t AdrFields(uint32_t op, int rd, int64_t imm) {
  return op | static_cast<uint32_t>((imm & 3) << 29) | static_cast<uint32_t>(((imm >> 2) & 0x7ffff) << 5) |
         static_cast<uint32_t>(rd);
}
inline std::optional<uint32_t> Adr(int rd, uint64_t from, uint64_t to) {
  const int64_t d = static_cast<int64_t>(to - from);
  if (!FitsSigned(d, 21)) return std::nullopt;
  return AdrFields(0x10000000, rd, d);
}
// adrp rd, the page of `to`.
inline std::optional<uint32_t> Adrp(int rd, uint64_t from, uint64_t to) {
  const int64_t d = static_cast<int64_t>((to >> 12) - (from >> 12));
  if (!FitsSigned(d, 21)) return std::nullopt;
  return AdrFields(0x90000000, rd, d);
}

inline uint32_t AddImm(int rd, int rn, uint32_t imm12) { return 0x91000000 | imm12 << 10 | rn << 5 | rd; }
inline uint32_t Movz(int rd, uint32_t imm16, int hw) { return 0xd2800000 | hw << 21 | imm16 << 5 | rd; }
inline uint32_t Movk(int rd, uint32_t imm16, int hw) { return 0xf2800000 | hw << 21 | imm16 << 5 | rd; }
inline uint32_t Br(int rn) { return 0xd61f0000 | rn << 5; }
inline uint32_t Blr(int rn) { return 0xd63f0000 | rn << 5; }

// The load a literal load becomes once its address is in `base`: ldr/ldrsw/prfm [base].
inline uint32_t LoadFrom(Literal l, int rt, int base) {
  static constexpr uint32_t kOpcode[] = {0xb9400000, 0xf9400000, 0xb9800000, 0xf9800000,
                                         0xbd400000, 0xfd400000, 0x3dc00000};
  return kOpcode[static_cast<int>(l)] | base << 5 | rt;
}

// The branch taken exactly when `w` (b.cond, cbz/cbnz, tbz/tbnz) is not; b.al/b.nv have none.
inline std::optional<uint32_t> Inverted(uint32_t w, Kind kind) {
  if (kind == Kind::kBCond) return (w & 0xe) == 0xe ? std::nullopt : std::optional<uint32_t>(w ^ 1);
  return w ^ (1u << 24);
}

}  // namespace awfshim::aarch64::insn
