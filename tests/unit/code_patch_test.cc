// Patches real machine code in this process and runs it: hand-written functions in an executable
// page, shaped like the prologues the TLS tap meets in Node.js (endbr64, RIP-relative loads,
// `test rdi,rdi; je`), and ones it must refuse; in a child process under a seccomp filter, what a
// host that refuses writes to code does to the patch. x86-64 code: on aarch64, that every request
// is refused, with the reason the trace gives.
#include "../../shim/platform/code_patch.h"
#include "../../shim/platform/elf_symbols.h"

#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <functional>
#include <future>
#include <initializer_list>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include "awfshim/x86_relocate.h"

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
  uint8_t* page() const { return page_; }

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

// The entries being patched, and how many of them held a jump when an original was published.
std::vector<const uint8_t*> g_entries;
int g_jumps_at_publish;
void CountJumps() {
  for (const uint8_t* e : g_entries) g_jumps_at_publish += e[0] == 0xe9 || e[4] == 0xe9;  // after endbr64
}
void PublishAdd(void* original) {
  g_original_add = reinterpret_cast<IntFn>(original);
  CountJumps();
}
void PublishTestJe(void* original) {
  g_original_test_je = reinterpret_cast<IntFn>(original);
  CountJumps();
}
void PublishNowhere(void*) { ADD_FAILURE() << "a refused patch publishes nothing"; }

PatchRequest AddRequest(IntFn add, void (*publish)(void*) = PublishAdd) {
  return {"add", reinterpret_cast<void*>(add), kAddConstantSize, reinterpret_cast<void*>(DoubledAdd), publish};
}

TEST(CodePatch, HookRunsAndTrampolineKeepsOriginalBehaviour) {
  CodePage code;
  auto* add = reinterpret_cast<IntFn>(code.Add(kAddConstant));
  auto* test_je = reinterpret_cast<IntFn>(code.Add(kTestJe));
  code.Seal();
  ASSERT_EQ(add(1), 1001);
  ASSERT_EQ(test_je(0), -1);

  PatchRequest requests[] = {AddRequest(add),
                             {"test_je", reinterpret_cast<void*>(test_je), kTestJeSize, reinterpret_cast<void*>(NegatedTestJe), PublishTestJe}};
  g_entries = {reinterpret_cast<uint8_t*>(add), reinterpret_cast<uint8_t*>(test_je)};
  g_jumps_at_publish = 0;
  Status s = PatchFunctions(requests);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(g_jumps_at_publish, 0) << "every original is published before any entry jumps";

  EXPECT_EQ(g_original_add(1), 1001);  // the RIP-relative load still finds K
  EXPECT_EQ(add(1), 2002);             // callers of the function now reach the hook
  EXPECT_EQ(g_original_test_je(0), -1);  // both arms of the re-targeted je
  EXPECT_EQ(g_original_test_je(41), 42);
  EXPECT_EQ(test_je(0), 1);
  EXPECT_EQ(test_je(41), -42);
  EXPECT_EQ(reinterpret_cast<uint8_t*>(add)[0], 0xf3) << "endbr64 stays at the entry";

  EXPECT_EQ(PatchFunctions(absl::MakeConstSpan(requests, 1)).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(add(1), 2002);
}

TEST(CodePatch, RefusesAllWhenOneCannotBePatched) {
  CodePage code;
  auto* add = reinterpret_cast<IntFn>(code.Add(kAddConstant));
  uint8_t* too_short = code.Add(kTooShort);
  auto* loop = reinterpret_cast<IntFn>(code.Add(kLoopIntoPrologue));
  code.Seal();

  PatchRequest short_pair[] = {AddRequest(add, PublishNowhere),
                               {"short", too_short, kTooShort.size(), reinterpret_cast<void*>(DoubledAdd), PublishNowhere}};
  Status r = PatchFunctions(short_pair);
  EXPECT_EQ(r.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.message().find("short: too short"), absl::string_view::npos) << r;
  EXPECT_EQ(add(1), 1001) << "nothing was written";

  PatchRequest loop_request[] = {{"loop", reinterpret_cast<void*>(loop), kLoopIntoPrologue.size(), reinterpret_cast<void*>(DoubledAdd), PublishNowhere}};
  r = PatchFunctions(loop_request);
  EXPECT_EQ(r.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.message().find("targets +2"), absl::string_view::npos) << r;
  EXPECT_EQ(loop(3), 3);
}

TEST(CodePatch, RefusesTheShimsOwnCode) {
  PatchRequest own[] = {{"own", reinterpret_cast<void*>(&DoubledAdd), 16, reinterpret_cast<void*>(NegatedTestJe), PublishNowhere}};
  EXPECT_EQ(PatchFunctions(own).code(), StatusCode::kInvalidArgument);
}

// A thread that might be running the entry while it changes.
TEST(CodePatch, RefusesWhileAnotherThreadRuns) {
  CodePage code;
  auto* add = reinterpret_cast<IntFn>(code.Add(kAddConstant));
  code.Seal();
  std::promise<void> done;
  std::thread other([f = done.get_future()] { f.wait(); });
  PatchRequest request[] = {AddRequest(add, PublishNowhere)};
  Status s = PatchFunctions(request);
  done.set_value();
  other.join();
  EXPECT_EQ(s, FailedPreconditionError("the process already has 2 threads"));
  EXPECT_EQ(add(1), 1001);
}

// What the seccomp filter of InChild refuses: writes through /proc/self/mem (pwrite, EIO, as
// under proc_mem.force_override=never), and mprotect of one page asking for `refused_prot`
// (EACCES, as SELinux's execmod refuses): any prot with PROT_EXEC, or exactly that prot.
struct Refusals {
  bool proc_mem = false;
  const uint8_t* page = nullptr;
  int refused_prot = 0;
  bool any_exec = false;
};

void InstallFilter(const Refusals& r) {
  auto arg_low = [](int i) { return static_cast<uint32_t>(offsetof(seccomp_data, args) + 8 * i); };
  auto page = reinterpret_cast<uintptr_t>(r.page);
  const uint32_t pwrite_ret = r.proc_mem ? SECCOMP_RET_ERRNO | EIO : SECCOMP_RET_ALLOW;
  const uint32_t prot_test = r.any_exec ? BPF_JSET : BPF_JEQ;
  const uint32_t prot = r.any_exec ? PROT_EXEC : static_cast<uint32_t>(r.refused_prot);
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_pwrite64, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, pwrite_ret),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mprotect, 0, 7),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg_low(0)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(page), 0, 5),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg_low(0) + 4),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(page >> 32), 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg_low(2)),
      BPF_JUMP(BPF_JMP | prot_test | BPF_K, prot, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog = {static_cast<unsigned short>(std::size(filter)), filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
    std::perror("seccomp");
    _exit(2);
  }
}

// Runs `body` in a child process under the filter; returns what it returned, or how it died.
std::string InChild(const Refusals& refusals, const std::function<std::string()>& body) {
  int out[2];
  if (pipe(out) != 0) return "no pipe";
  pid_t pid = fork();
  if (pid == 0) {
    close(out[0]);
    InstallFilter(refusals);
    std::string result = body();
    (void)!write(out[1], result.data(), result.size());
    _exit(0);
  }
  close(out[1]);
  std::string result;
  char buf[512];
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) result.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return result;
}

// Patches `add`, then says how that went and what add(1) returns.
std::string PatchAndCall(IntFn add) {
  PatchRequest request[] = {AddRequest(add)};
  Status s = PatchFunctions(request);
  return (s.ok() ? std::string("patched") : std::string(s.message())) + "; add(1)=" + std::to_string(add(1));
}

TEST(CodePatch, WritesThroughProcMemWhereExecutableCannotBeWritable) {
  CodePage code;
  auto* add = reinterpret_cast<IntFn>(code.Add(kAddConstant));
  code.Seal();
  EXPECT_EQ(InChild({.page = code.page(), .any_exec = true}, [&] { return PatchAndCall(add); }), "patched; add(1)=2002");
}

TEST(CodePatch, WithoutProcMemThePageIsWritableAndExecutableForTheCopy) {
  CodePage code;
  auto* add = reinterpret_cast<IntFn>(code.Add(kAddConstant));
  code.Seal();
  EXPECT_EQ(InChild({.proc_mem = true}, [&] { return PatchAndCall(add); }), "patched; add(1)=2002");
}

// The host refuses both: nothing was written, the code runs as before.
TEST(CodePatch, RefusesWhenCodeCannotBeWrittenAndStayExecutable) {
  CodePage code;
  auto* add = reinterpret_cast<IntFn>(code.Add(kAddConstant));
  code.Seal();
  EXPECT_EQ(InChild({.proc_mem = true, .page = code.page(), .any_exec = true}, [&] { return PatchAndCall(add); }),
            "/proc/self/mem at add: Input/output error; mprotect of add's page to writable+executable: Permission "
            "denied; add(1)=1001");
  // Writable+executable, but not read+execute again: left so, with its own code.
  EXPECT_EQ(InChild({.proc_mem = true, .page = code.page(), .refused_prot = PROT_READ | PROT_EXEC},
                    [&] { return PatchAndCall(add); }),
            "/proc/self/mem at add: Input/output error; mprotect of add's page back to read+execute: Permission "
            "denied; add(1)=1001");
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
#elif defined(__aarch64__)
namespace awfshim {
namespace {

void PublishNowhere(void*) { ADD_FAILURE() << "a refused patch publishes nothing"; }

long Untouched(long x) { return x + 1; }

// Until the aarch64 relocator is wired in (code_patch_aarch64.cc): refused before anything is
// mapped or written, whatever the function.
TEST(CodePatch, RefusedOnAarch64WithTheReason) {
  std::vector<uint8_t> entry(16);
  std::memcpy(entry.data(), reinterpret_cast<const void*>(&Untouched), entry.size());
  PatchRequest request[] = {{"untouched", reinterpret_cast<void*>(&Untouched), 16, reinterpret_cast<void*>(&Untouched), PublishNowhere}};
  EXPECT_EQ(PatchFunctions(request),
            UnimplementedError("patching the executable's own functions is not supported on aarch64 yet"));
  EXPECT_EQ(std::memcmp(entry.data(), reinterpret_cast<const void*>(&Untouched), entry.size()), 0);
  EXPECT_EQ(Untouched(1), 2);
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
