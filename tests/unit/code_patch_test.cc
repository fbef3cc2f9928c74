// Patches real machine code in this process and runs it: hand-written functions in an executable
// page, shaped like the prologues the TLS tap meets in Node.js (endbr64, RIP-relative loads,
// `test rdi,rdi; je`), and ones it must refuse.
#include "../../shim/platform/code_patch.h"
#include "../../shim/platform/elf_symbols.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <initializer_list>
#include <vector>

#include "awfshim/x86_relocate.h"

#if defined(__x86_64__)
namespace awfshim {
namespace {

using IntFn = long (*)(long);

// Functions laid out in one RX page, 256 bytes apart. Never unmapped: the patcher remembers
// patched addresses for the life of the process, as code in a real process stays mapped.
class CodePage {
 public:
  CodePage() {
    page_ = static_cast<uint8_t*>(mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    EXPECT_NE(page_, MAP_FAILED);
    std::memset(page_, 0xcc, kSize);
  }

  // Places `code` in the next slot; returns its address (valid after Seal()).
  uint8_t* Add(std::initializer_list<uint8_t> code) {
    uint8_t* at = page_ + 256 * used_++;
    std::copy(code.begin(), code.end(), at);
    return at;
  }
  void Seal() { ASSERT_EQ(mprotect(page_, kSize, PROT_READ | PROT_EXEC), 0); }

 private:
  static constexpr size_t kSize = 4096;
  uint8_t* page_;
  int used_ = 0;
};

// long f(long x) { return K + x; } with K loaded RIP-relative, behind endbr64.
std::initializer_list<uint8_t> kAddConstant = {
    0xf3, 0x0f, 0x1e, 0xfa,                    // endbr64
    0x48, 0x8b, 0x05, 0x09, 0x00, 0x00, 0x00,  // mov rax, [rip+9]  -> +20
    0x48, 0x01, 0xf8,                          // add rax, rdi
    0xc3,                                      // ret
    0xcc, 0xcc, 0xcc, 0xcc, 0xcc,              // padding
    0xe8, 0x03, 0x00, 0x00, 0, 0, 0, 0,        // +20: K = 1000
};
constexpr size_t kAddConstantSize = 15;

// long f(long x) { return x ? x + 1 : -1; } starting `test rdi,rdi; je rel8`, like Node 24's
// SSL_write_ex: the jump must be re-targeted from the trampoline.
std::initializer_list<uint8_t> kTestJe = {
    0x48, 0x85, 0xff,                          // test rdi, rdi
    0x74, 0x05,                                // je +10
    0x48, 0x8d, 0x47, 0x01,                    // lea rax, [rdi+1]
    0xc3,                                      // ret
    0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff,  // +10: mov rax, -1
    0xc3,                                      // ret
};
constexpr size_t kTestJeSize = 18;

// xor eax, eax; ret: shorter than the jump.
std::initializer_list<uint8_t> kTooShort = {0x31, 0xc0, 0xc3};

// long f(long n) { long r = 0; do r++; while (--n); return r; } whose loop jumps back into the
// first five bytes.
std::initializer_list<uint8_t> kLoopIntoPrologue = {
    0x31, 0xc0,        // xor eax, eax
    0x48, 0xff, 0xc0,  // +2: inc rax
    0x48, 0xff, 0xcf,  // dec rdi
    0x75, 0xf8,        // jne +2
    0xc3,              // ret
};

IntFn g_original_add;
IntFn g_original_test_je;
long DoubledAdd(long x) { return 2 * g_original_add(x); }
long NegatedTestJe(long x) { return -g_original_test_je(x); }

TEST(CodePatch, HookRunsAndTrampolineKeepsOriginalBehaviour) {
  CodePage code;
  auto* add = reinterpret_cast<IntFn>(code.Add(kAddConstant));
  auto* test_je = reinterpret_cast<IntFn>(code.Add(kTestJe));
  code.Seal();
  ASSERT_EQ(add(1), 1001);
  ASSERT_EQ(test_je(0), -1);

  PatchRequest requests[] = {{"add", reinterpret_cast<void*>(add), kAddConstantSize, reinterpret_cast<void*>(DoubledAdd)},
                             {"test_je", reinterpret_cast<void*>(test_je), kTestJeSize, reinterpret_cast<void*>(NegatedTestJe)}};
  StatusOr<std::vector<void*>> originals = PatchFunctions(requests);
  ASSERT_TRUE(originals.ok()) << originals.status();
  g_original_add = reinterpret_cast<IntFn>((*originals)[0]);
  g_original_test_je = reinterpret_cast<IntFn>((*originals)[1]);

  EXPECT_EQ(g_original_add(1), 1001);  // the RIP-relative load still finds K
  EXPECT_EQ(add(1), 2002);             // callers of the function now reach the hook
  EXPECT_EQ(g_original_test_je(0), -1);  // both arms of the re-targeted je
  EXPECT_EQ(g_original_test_je(41), 42);
  EXPECT_EQ(test_je(0), 1);
  EXPECT_EQ(test_je(41), -42);
  EXPECT_EQ(reinterpret_cast<uint8_t*>(add)[0], 0xf3) << "endbr64 stays at the entry";

  StatusOr<std::vector<void*>> again = PatchFunctions(absl::MakeConstSpan(requests, 1));
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(add(1), 2002);
}

TEST(CodePatch, RefusesAllWhenOneCannotBePatched) {
  CodePage code;
  auto* add = reinterpret_cast<IntFn>(code.Add(kAddConstant));
  uint8_t* too_short = code.Add(kTooShort);
  auto* loop = reinterpret_cast<IntFn>(code.Add(kLoopIntoPrologue));
  code.Seal();

  PatchRequest short_pair[] = {{"add", reinterpret_cast<void*>(add), kAddConstantSize, reinterpret_cast<void*>(DoubledAdd)},
                               {"short", too_short, kTooShort.size(), reinterpret_cast<void*>(DoubledAdd)}};
  StatusOr<std::vector<void*>> r = PatchFunctions(short_pair);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("short: too short"), absl::string_view::npos) << r.status();
  EXPECT_EQ(add(1), 1001) << "nothing was written";

  PatchRequest loop_request[] = {{"loop", reinterpret_cast<void*>(loop), kLoopIntoPrologue.size(), reinterpret_cast<void*>(DoubledAdd)}};
  r = PatchFunctions(loop_request);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("targets +2"), absl::string_view::npos) << r.status();
  EXPECT_EQ(loop(3), 3);
}

TEST(CodePatch, RefusesTheShimsOwnCode) {
  PatchRequest own[] = {{"own", reinterpret_cast<void*>(&DoubledAdd), 16, reinterpret_cast<void*>(NegatedTestJe)}};
  EXPECT_EQ(PatchFunctions(own).status().code(), StatusCode::kInvalidArgument);
}

TEST(X86Relocate, RefusesWhatItCannotReencodeOrReach) {
  // jrcxz has no rel32 form.
  const uint8_t jrcxz[] = {0xe3, 0x10, 0x48, 0x89, 0xf8, 0xc3, 0x90};
  auto r = x86::RelocatePrologue(jrcxz, 0x400000, 0x3f0000);
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented) << r.status();
  // A RIP-relative operand 2 GB away from the trampoline.
  const uint8_t far_load[] = {0x48, 0x8b, 0x05, 0x00, 0xff, 0xff, 0x7f, 0xc3};
  r = x86::RelocatePrologue(far_load, 0x80000000, 0x7fff0000);
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange) << r.status();
  // A VEX-encoded relative branch (jknzd): map 0F, opcode 85, like jnz rel32, but not jnz.
  const uint8_t vex_branch[] = {0xc5, 0x48, 0x85, 0xff, 0x0f, 0x84, 0x04, 0x00, 0x8b, 0x07, 0xc3};
  r = x86::RelocatePrologue(vex_branch, 0x400000, 0x3f0000);
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented) << r.status();
  // Bytes that are not an instruction.
  const uint8_t garbage[] = {0x0f, 0xff};
  r = x86::RelocatePrologue(garbage, 0x400000, 0x3f0000);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status();
}

}  // namespace
}  // namespace awfshim
#endif

// Exported by the test executable (export_dynamic), like Node.js exports OpenSSL.
extern "C" __attribute__((noinline, used)) long awfshim_test_exported(long x) { return x * 3 + 1; }

namespace awfshim {
namespace {

TEST(ElfSymbols, FindsTheExecutablesOwnDefinitionsOnly) {
  ExecutableSymbol own = FindInExecutable("awfshim_test_exported");
  EXPECT_EQ(own.address, reinterpret_cast<void*>(&awfshim_test_exported));
  EXPECT_GT(own.size, 0u);
  EXPECT_EQ(FindInExecutable("malloc").address, nullptr) << "libc's, not the executable's";
  EXPECT_EQ(FindInExecutable("awfshim_no_such_symbol").address, nullptr);
}

TEST(ElfSymbols, TellsObjectsApart) {
  EXPECT_TRUE(InSameObject(reinterpret_cast<void*>(&awfshim_test_exported), reinterpret_cast<void*>(&PatchFunctions)));
  EXPECT_FALSE(InSameObject(reinterpret_cast<void*>(&awfshim_test_exported), reinterpret_cast<void*>(&malloc)));
  int on_the_stack = 0;
  EXPECT_FALSE(InSameObject(&on_the_stack, reinterpret_cast<void*>(&malloc)));
}

}  // namespace
}  // namespace awfshim
