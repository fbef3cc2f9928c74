#include "awfshim/aarch64_relocate.h"

#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "aarch64_insn.h"

namespace awfshim::aarch64 {
namespace {

using insn::Kind;

uint32_t WordAt(absl::Span<const uint8_t> bytes, size_t offset) {
  uint32_t w;
  std::memcpy(&w, bytes.data() + offset, sizeof w);
  return w;  // aarch64 Linux is little-endian, and so is every host this builds on
}

std::optional<LandingPad> PadOf(uint32_t w) {
  if ((w & 0xffffff3f) == 0xd503241f) return LandingPad::kBti;  // bti, bti c|j|jc
  if (w == insn::kPaciasp) return LandingPad::kPaciasp;
  if (w == insn::kPacibsp) return LandingPad::kPacibsp;
  return std::nullopt;
}

Status OutOfReach(uint64_t target) {
  return OutOfRangeError(absl::StrCat(
      "target 0x", absl::Hex(target),
      " is beyond b reach (±128 MB) of the trampoline, and under BTI enforcement it has no landing pad for br"));
}

// The trampoline as it is written, word by word, at its run-time address.
class Builder {
 public:
  Builder(uint64_t at, bool bti_enforced) : at_(at), bti_enforced_(bti_enforced) {}

  uint64_t pc() const { return at_ + 4 * words_.size(); }
  size_t size() const { return words_.size(); }
  void Emit(uint32_t w) { words_.push_back(w); }
  void Set(size_t index, uint32_t w) { words_[index] = w; }

  // `address` into x`reg`: adrp (+ add) within ±4 GB, else movz/movk.
  void Materialize(int reg, uint64_t address) {
    if (std::optional<uint32_t> adrp = insn::Adrp(reg, pc(), address)) {
      Emit(*adrp);
      if (address & 0xfff) Emit(insn::AddImm(reg, reg, address & 0xfff));
      return;
    }
    bool first = true;
    for (int hw = 0; hw < 4; hw++) {
      const uint32_t half = (address >> (16 * hw)) & 0xffff;
      if (half == 0 && !(first && hw == 3)) continue;
      Emit(first ? insn::Movz(reg, half, hw) : insn::Movk(reg, half, hw));
      first = false;
    }
  }

  // b/bl `target`; beyond reach, movz/movk x16 + br/blr x16.
  Status Branch(uint64_t target, bool link) {
    if (std::optional<uint32_t> b = insn::WithOffset(link ? 0x94000000 : 0x14000000, 0, 26, pc(), target)) {
      Emit(*b);
      return OkStatus();
    }
    if (bti_enforced_) return OutOfReach(target);
    Materialize(insn::kIp0, target);
    Emit(link ? insn::Blr(insn::kIp0) : insn::Br(insn::kIp0));
    return OkStatus();
  }

  Status JumpBack(uint64_t target) {
    if (std::optional<uint32_t> b = insn::WithOffset(0x14000000, 0, 26, pc(), target)) {
      Emit(*b);
      return OkStatus();
    }
    if (bti_enforced_) return OutOfReach(target);
    if ((pc() + 8) % 8) Emit(insn::kNop);
    Emit(insn::kLdrX16Plus8);
    Emit(insn::Br(insn::kIp0));
    Emit(static_cast<uint32_t>(target));
    Emit(static_cast<uint32_t>(target >> 32));
    return OkStatus();
  }

  std::vector<uint8_t> Bytes() const {
    std::vector<uint8_t> out(words_.size() * 4);
    if (!words_.empty()) std::memcpy(out.data(), words_.data(), out.size());
    return out;
  }

 private:
  uint64_t at_;
  bool bti_enforced_;
  std::vector<uint32_t> words_;
};

// Appends `w`, which ran at `from`, re-encoded or expanded for its place in `t`.
Status Relocate(uint32_t w, uint64_t from, Builder& t) {
  const insn::PcRelative p = insn::Decode(w, from);
  switch (p.kind) {
    case Kind::kOther:
    case Kind::kUnallocatedLiteral:  // refused before
      t.Emit(w);
      return OkStatus();
    case Kind::kAdr:
    case Kind::kAdrp: {
      if (p.reg == insn::kZr) return OkStatus();  // writes xzr: nothing
      std::optional<uint32_t> near = p.kind == Kind::kAdr ? insn::Adr(p.reg, t.pc(), p.target)
                                                          : insn::Adrp(p.reg, t.pc(), p.target);
      if (near) {
        t.Emit(*near);
      } else {
        t.Materialize(p.reg, p.target);
      }
      return OkStatus();
    }
    case Kind::kB:
    case Kind::kBl:
      return t.Branch(p.target, p.kind == Kind::kBl);
    case Kind::kBCond:
    case Kind::kCbz:
    case Kind::kTbz: {
      if (std::optional<uint32_t> near = insn::Retarget(w, p.kind, t.pc(), p.target)) {
        t.Emit(*near);
        return OkStatus();
      }
      std::optional<uint32_t> inverse = insn::Inverted(w, p.kind);
      if (!inverse) return t.Branch(p.target, false);  // b.al, b.nv: always taken
      const size_t skip = t.size();
      t.Emit(0);  // the inverse, once the long form's length is known
      Status s = t.Branch(p.target, false);
      if (!s.ok()) return s;
      t.Set(skip, *insn::Retarget(*inverse, p.kind, t.pc() - 4 * (t.size() - skip), t.pc()));
      return OkStatus();
    }
    case Kind::kLdrLiteral: {
      if (std::optional<uint32_t> near = insn::Retarget(w, p.kind, t.pc(), p.target)) {
        t.Emit(*near);
        return OkStatus();
      }
      const bool gpr = p.literal == insn::Literal::kW || p.literal == insn::Literal::kX ||
                       p.literal == insn::Literal::kSw;
      const int base = gpr && p.reg != insn::kZr ? p.reg : insn::kIp0;
      t.Materialize(base, p.target);
      t.Emit(insn::LoadFrom(p.literal, p.reg, base));
      return OkStatus();
    }
  }
  return OkStatus();
}

// Why the patched instruction `w` at +`at` cannot move, or OK. `end` is the patch's end offset.
Status CheckMovable(uint32_t w, size_t at, size_t end) {
  if (insn::IsUndecodable(w)) return InvalidArgumentError(absl::StrCat("undecodable word 0x", absl::Hex(w, absl::kZeroPad8), " at +", at));
  if (insn::EndsFlow(w) && at + 4 < end) {
    return FailedPreconditionError(absl::StrCat("too short to patch: its code ends at +", at + 4));
  }
  if (insn::IsIndirectBranch(w)) {
    return FailedPreconditionError(absl::StrCat("an indirect branch or return at +", at));
  }
  if (insn::IsExclusive(w)) {
    return FailedPreconditionError(
        absl::StrCat("an exclusive load/store at +", at, ": its monitor cannot span the patch"));
  }
  if (insn::UsesPcInPac(w)) {
    return FailedPreconditionError(absl::StrCat("a PAC instruction at +", at, " that uses its own address"));
  }
  if (insn::MayUseIp(w)) {
    return FailedPreconditionError(
        absl::StrCat("the instruction at +", at, " may use x16/x17, which the trampoline's code clobbers"));
  }
  return OkStatus();
}

}  // namespace

bool EncodeBranch(uint64_t from, uint64_t to, uint8_t out[kBranchSize]) {
  std::optional<uint32_t> b = insn::WithOffset(0x14000000, 0, 26, from, to);
  if (!b) return false;
  std::memcpy(out, &*b, sizeof *b);
  return true;
}

void EncodeAbsoluteBranch(uint64_t to, uint8_t out[kAbsoluteBranchSize]) {
  const uint32_t words[] = {insn::kLdrX16Plus8, insn::Br(insn::kIp0), static_cast<uint32_t>(to),
                            static_cast<uint32_t>(to >> 32)};
  std::memcpy(out, words, sizeof words);
}

StatusOr<RelocatedPrologue> RelocatePrologue(absl::Span<const uint8_t> function, uint64_t entry,
                                             uint64_t trampoline_at, const PatchOptions& options) {
  if (entry % 4 || trampoline_at % 4) {
    return InvalidArgumentError(absl::StrCat("unaligned entry 0x", absl::Hex(entry), " or trampoline 0x", absl::Hex(trampoline_at)));
  }
  const size_t size = function.size() & ~size_t{3};  // whole words
  RelocatedPrologue r;
  r.patched_length = options.entry_patch == EntryPatch::kBranch ? kBranchSize : kAbsoluteBranchSize;
  Builder t(trampoline_at, options.bti_enforced);
  if (std::optional<LandingPad> pad = size >= 4 ? PadOf(WordAt(function, 0)) : std::nullopt) {
    r.entry_skip = 4;
    r.entry_pad = *pad;
  }
  // Replayed: a kept paciasp/pacibsp signs LR for the original's epilogue (see the header).
  t.Emit(r.entry_pad == LandingPad::kPaciasp || r.entry_pad == LandingPad::kPacibsp ? WordAt(function, 0) : insn::kBtiC);
  const size_t end = r.entry_skip + r.patched_length;
  if (size < end) {
    return FailedPreconditionError(absl::StrCat("too short to patch: the body is ", function.size(), " bytes"));
  }

  for (size_t at = r.entry_skip; at < end; at += 4) {
    const uint32_t w = WordAt(function, at);
    Status s = CheckMovable(w, at, end);
    if (s.ok()) s = Relocate(w, entry + at, t);
    if (!s.ok()) return Status(s.code(), absl::StrCat("at +", at, ": ", s.message()));
  }

  // Nothing in the whole body, the moved instructions included, may branch into the patched
  // bytes (a jump to the patched entry itself would run the hook twice, so that counts too) or
  // load a literal from them. Every word is an instruction boundary: a data word in the body
  // only ever adds a refusal.
  const uint64_t patched_begin = entry + r.entry_skip, patched_end = entry + end;
  for (size_t at = 0; at < size; at += 4) {
    const uint32_t w = WordAt(function, at);
    if (insn::IsUnknownBranchSpace(w)) {
      return InvalidArgumentError(absl::StrCat("a branch-space word this decoder does not know at +", at, " (0x", absl::Hex(w, absl::kZeroPad8), ")"));
    }
    const insn::PcRelative p = insn::Decode(w, entry + at);
    const bool branch = insn::IsBranch(p.kind) && !(p.kind == Kind::kBl && p.target == entry);
    // Bytes read or branched to: [target, target + n) meets [patched_begin, patched_end).
    const uint64_t n = branch ? 1 : p.kind == Kind::kLdrLiteral ? insn::LiteralSize(p.literal) : 0;
    if (n > 0 && p.target - (patched_begin - (n - 1)) < r.patched_length + (n - 1)) {
      return FailedPreconditionError(absl::StrCat("the ", branch ? "branch" : "literal load", " at +", at, " targets +",
                                                  p.target - entry, ", inside the bytes the patch replaces"));
    }
  }

  Status back = t.JumpBack(patched_end);
  if (!back.ok()) return back;
  r.trampoline = t.Bytes();
  if (trampoline_at - entry < size || entry - trampoline_at < r.trampoline.size()) {
    return InvalidArgumentError("the trampoline overlaps the function");
  }
  return r;
}

}  // namespace awfshim::aarch64
