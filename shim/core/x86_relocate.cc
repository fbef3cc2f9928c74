#include "awfshim/x86_relocate.h"

#include <Zydis/Zydis.h>

#include <cstring>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"

namespace awfshim::x86 {
namespace {

constexpr uint8_t kEndbr64[] = {0xf3, 0x0f, 0x1e, 0xfa};

struct Decoded {
  ZydisDecodedInstruction insn;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
};

class Decoder {
 public:
  Decoder() { ZydisDecoderInit(&decoder_, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64); }

  std::optional<Decoded> At(absl::Span<const uint8_t> bytes, size_t offset) const {
    Decoded d;
    if (offset >= bytes.size() ||
        !ZYAN_SUCCESS(ZydisDecoderDecodeFull(&decoder_, bytes.data() + offset, bytes.size() - offset, &d.insn, d.ops))) {
      return std::nullopt;
    }
    return d;
  }

 private:
  ZydisDecoder decoder_;
};

std::optional<int32_t> Rel32(uint64_t next_instruction, uint64_t target) {
  int64_t delta = static_cast<int64_t>(target - next_instruction);
  if (delta < INT32_MIN || delta > INT32_MAX) return std::nullopt;
  return static_cast<int32_t>(delta);
}

void Append(std::vector<uint8_t>& out, const void* bytes, size_t n) {
  const auto* p = static_cast<const uint8_t*>(bytes);
  out.insert(out.end(), p, p + n);
}

void AppendRel32(std::vector<uint8_t>& out, int32_t rel) { Append(out, &rel, sizeof rel); }

// The absolute target of the instruction's relative operand (a branch target or a RIP-relative
// memory address), or nullopt when it has none.
std::optional<uint64_t> RelativeTarget(const Decoded& d, uint64_t at, bool* is_branch) {
  if (!(d.insn.attributes & ZYDIS_ATTRIB_IS_RELATIVE)) return std::nullopt;
  for (uint8_t i = 0; i < d.insn.operand_count_visible; i++) {
    const ZydisDecodedOperand& op = d.ops[i];
    bool branch = op.type == ZYDIS_OPERAND_TYPE_IMMEDIATE && op.imm.is_relative;
    bool rip_memory = op.type == ZYDIS_OPERAND_TYPE_MEMORY && op.mem.base == ZYDIS_REGISTER_RIP;
    if (!branch && !rip_memory) continue;
    ZyanU64 target;
    if (!ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(&d.insn, &op, at, &target))) return std::nullopt;
    *is_branch = branch;
    return target;
  }
  return std::nullopt;
}

bool EndsFlow(const ZydisDecodedInstruction& insn) {
  switch (insn.meta.category) {
    case ZYDIS_CATEGORY_RET:
    case ZYDIS_CATEGORY_UNCOND_BR:
      return true;
    default:
      return insn.mnemonic == ZYDIS_MNEMONIC_INT3 || insn.mnemonic == ZYDIS_MNEMONIC_UD2 ||
             insn.mnemonic == ZYDIS_MNEMONIC_HLT;
  }
}

// By its bytes, not Zydis's mnemonic name: the table of names alone is 1,755 pointers, each a
// relocation every process that loads the engine would pay for.
Status CannotReencode(const uint8_t* bytes, size_t length) {
  std::string hex;
  for (size_t i = 0; i < length; i++) absl::StrAppend(&hex, i ? " " : "", absl::Hex(bytes[i], absl::kZeroPad2));
  return UnimplementedError(absl::StrCat("cannot re-encode the relative branch ", hex));
}

// Appends `d` (at `from` in the function) to `out` (whose end is at `out_at`), re-encoding a
// relative operand for its new address.
Status Relocate(const Decoded& d, const uint8_t* bytes, uint64_t from, uint64_t out_at,
                      std::vector<uint8_t>& out) {
  const ZydisDecodedInstruction& insn = d.insn;
  bool branch = false;
  std::optional<uint64_t> target = RelativeTarget(d, from, &branch);
  if (!target) {
    if (insn.attributes & ZYDIS_ATTRIB_IS_RELATIVE) return UnimplementedError("a relative operand Zydis cannot resolve");
    Append(out, bytes, insn.length);
    return OkStatus();
  }
  auto out_of_reach = [&] { return OutOfRangeError(absl::StrCat("target 0x", absl::Hex(*target), " is beyond rel32 reach of the trampoline")); };
  if (!branch) {  // RIP-relative memory operand: same bytes, new displacement
    if (insn.raw.disp.size != 32) return UnimplementedError("a RIP-relative operand without a 32-bit displacement");
    std::optional<int32_t> disp = Rel32(out_at + insn.length, *target);
    if (!disp) return out_of_reach();
    size_t at = out.size();
    Append(out, bytes, insn.length);
    std::memcpy(out.data() + at + insn.raw.disp.offset, &*disp, sizeof *disp);
    return OkStatus();
  }
  // Only the legacy one-byte and 0F opcodes below are branches this re-encodes: a VEX-encoded
  // relative branch (Xeon Phi's jknzd, c5 .. 85 rel32) shares their map and opcode numbers.
  if (insn.encoding != ZYDIS_INSTRUCTION_ENCODING_LEGACY) {
    return CannotReencode(bytes, insn.length);
  }
  uint8_t opcode = insn.opcode;
  if (insn.meta.category == ZYDIS_CATEGORY_COND_BR &&
      ((insn.opcode_map == ZYDIS_OPCODE_MAP_DEFAULT && opcode >= 0x70 && opcode <= 0x7f) ||
       (insn.opcode_map == ZYDIS_OPCODE_MAP_0F && opcode >= 0x80 && opcode <= 0x8f))) {
    std::optional<int32_t> rel = Rel32(out_at + 6, *target);
    if (!rel) return out_of_reach();
    out.push_back(0x0f);
    out.push_back(static_cast<uint8_t>(0x80 | (opcode & 0x0f)));
    AppendRel32(out, *rel);
    return OkStatus();
  }
  if (insn.mnemonic == ZYDIS_MNEMONIC_JMP || insn.mnemonic == ZYDIS_MNEMONIC_CALL) {
    std::optional<int32_t> rel = Rel32(out_at + 5, *target);
    if (!rel) return out_of_reach();
    out.push_back(insn.mnemonic == ZYDIS_MNEMONIC_JMP ? 0xe9 : 0xe8);
    AppendRel32(out, *rel);
    return OkStatus();
  }
  return CannotReencode(bytes, insn.length);
}

}  // namespace

bool EncodeJump(uint64_t from, uint64_t to, uint8_t out[kJumpSize]) {
  std::optional<int32_t> rel = Rel32(from + kJumpSize, to);
  if (!rel) return false;
  out[0] = 0xe9;
  std::memcpy(out + 1, &*rel, sizeof *rel);
  return true;
}

StatusOr<RelocatedPrologue> RelocatePrologue(absl::Span<const uint8_t> function, uint64_t entry,
                                                   uint64_t trampoline_at) {
  Decoder decoder;
  RelocatedPrologue r;
  r.trampoline.assign(std::begin(kEndbr64), std::end(kEndbr64));
  if (function.size() >= sizeof kEndbr64 && std::memcmp(function.data(), kEndbr64, sizeof kEndbr64) == 0) {
    r.entry_skip = sizeof kEndbr64;
  }

  // The instructions the jump overwrites.
  size_t offset = r.entry_skip;
  while (offset - r.entry_skip < kJumpSize) {
    std::optional<Decoded> d = decoder.At(function, offset);
    if (!d) return InvalidArgumentError(absl::StrCat("undecodable bytes at +", offset));
    if (EndsFlow(d->insn) && offset + d->insn.length - r.entry_skip < kJumpSize) {
      return FailedPreconditionError(absl::StrCat("too short to patch: its code ends at +", offset + d->insn.length));
    }
    Status s = Relocate(*d, function.data() + offset, entry + offset, trampoline_at + r.trampoline.size(), r.trampoline);
    if (!s.ok()) return Status(s.code(), absl::StrCat("at +", offset, ": ", s.message()));
    offset += d->insn.length;
  }
  r.patched_length = offset - r.entry_skip;
  const uint64_t patched_begin = entry + r.entry_skip, patched_end = patched_begin + r.patched_length;

  // No branch in the whole body, the copied instructions included, may land inside the
  // overwritten bytes (a jump to the patched entry itself would run the hook twice, so that
  // counts too). Linear sweep: compilers keep
  // jump tables out of .text bodies; anything undecodable is refused rather than guessed at.
  for (size_t at = r.entry_skip; at < function.size();) {
    std::optional<Decoded> d = decoder.At(function, at);
    if (!d) return InvalidArgumentError(absl::StrCat("undecodable bytes at +", at));
    bool branch = false;
    std::optional<uint64_t> target = RelativeTarget(*d, entry + at, &branch);
    if (branch && target && *target >= patched_begin && *target < patched_end) {
      return FailedPreconditionError(
          absl::StrCat("the branch at +", at, " targets +", *target - entry, ", inside the bytes the jump replaces"));
    }
    at += d->insn.length;
  }

  uint8_t back[kJumpSize];
  if (!EncodeJump(trampoline_at + r.trampoline.size(), patched_end, back)) {
    return OutOfRangeError("the function is beyond rel32 reach of the trampoline");
  }
  Append(r.trampoline, back, sizeof back);
  return r;
}

}  // namespace awfshim::x86
