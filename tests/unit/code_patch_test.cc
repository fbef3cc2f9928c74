// Patches real machine code in this process and runs it: hand-written functions in an executable
// page, shaped like the prologues the TLS tap meets in Node.js — x86-64: endbr64, RIP-relative
// loads, `test rdi,rdi; je`; aarch64: a landing pad, a literal load, `cbz`, a paciasp/pacibsp frame
// (its LR signed on the way in and out), on a BTI-guarded page too — and ones it must refuse; in a
// child process under a seccomp filter, what a host that refuses writes to code does to the patch
// (where a seccomp filter can be installed: qemu-user refuses them, so there those are skipped).
#include "../../shim/platform/code_patch.h"

#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
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
#endif
#include "patchable_code.h"

namespace awfshim {
namespace {

using IntFn = long (*)(long);

using namespace patchable;  // the functions, per architecture (patchable_code.h)

// Functions laid out in one page, 256 bytes apart. Never unmapped: the patcher remembers patched
// addresses for the life of the process, as code in a real process stays mapped.
class CodePage {
 public:
  CodePage() {
    page_ = static_cast<uint8_t*>(mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    EXPECT_NE(page_, MAP_FAILED);
    std::memset(page_, kFill, kSize);
  }

  // Places `code` in the next slot; returns its address (valid after Seal()).
  uint8_t* Add(const Code& code) {
    uint8_t* at = page_ + 256 * used_++;
    std::copy(code.begin(), code.end(), at);
    return at;
  }
  void Seal(int prot = PROT_READ | PROT_EXEC) {
    ASSERT_EQ(mprotect(page_, kSize, prot), 0) << std::strerror(errno);
    __builtin___clear_cache(reinterpret_cast<char*>(page_), reinterpret_cast<char*>(page_ + kSize));
  }
  uint8_t* page() const { return page_; }

 private:
  static constexpr size_t kSize = 4096;
  uint8_t* page_;
  int used_ = 0;
};

IntFn g_original_add;
IntFn g_original_zero_test;
long DoubledAdd(long x) { return 2 * g_original_add(x); }
long NegatedZeroTest(long x) { return -g_original_zero_test(x); }

// The entries being patched, and how many of them held a jump when an original was published.
std::vector<const uint8_t*> g_entries;
int g_jumps_at_publish;
void CountJumps() {
  for (const uint8_t* e : g_entries) g_jumps_at_publish += EntryJumps(e);
}
void PublishAdd(void* original) {
  g_original_add = reinterpret_cast<IntFn>(original);
  CountJumps();
}
void PublishZeroTest(void* original) {
  g_original_zero_test = reinterpret_cast<IntFn>(original);
  CountJumps();
}
void PublishNowhere(void*) { ADD_FAILURE() << "a refused patch publishes nothing"; }

PatchRequest AddRequest(IntFn add, void (*publish)(void*) = PublishAdd) {
  return {"add", reinterpret_cast<void*>(add), kAddConstantSize, reinterpret_cast<void*>(DoubledAdd), publish};
}

TEST(CodePatch, HookRunsAndTrampolineKeepsOriginalBehaviour) {
  CodePage code;
  auto* add = reinterpret_cast<IntFn>(code.Add(kAddConstant));
  auto* zero_test = reinterpret_cast<IntFn>(code.Add(kZeroTest));
  code.Seal();
  ASSERT_EQ(add(1), 1001);
  ASSERT_EQ(zero_test(0), -1);

  PatchRequest requests[] = {AddRequest(add), {"zero_test", reinterpret_cast<void*>(zero_test), kZeroTestSize,
                                               reinterpret_cast<void*>(NegatedZeroTest), PublishZeroTest}};
  g_entries = {reinterpret_cast<uint8_t*>(add), reinterpret_cast<uint8_t*>(zero_test)};
  g_jumps_at_publish = 0;
  Status s = PatchFunctions(requests);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(g_jumps_at_publish, 0) << "every original is published before any entry jumps";

  EXPECT_EQ(g_original_add(1), 1001);  // the PC-relative load still finds K
  EXPECT_EQ(add(1), 2002);             // callers of the function now reach the hook
  EXPECT_EQ(g_original_zero_test(0), -1);  // both arms of the re-targeted branch
  EXPECT_EQ(g_original_zero_test(41), 42);
  EXPECT_EQ(zero_test(0), 1);
  EXPECT_EQ(zero_test(41), -42);
  EXPECT_EQ(std::memcmp(reinterpret_cast<uint8_t*>(add), kAddConstant.data(), 4), 0)
      << "the landing pad stays at the entry";
  EXPECT_TRUE(EntryJumps(reinterpret_cast<uint8_t*>(add)));

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
  EXPECT_NE(r.message().find(kTooShortReason), absl::string_view::npos) << r;
  EXPECT_EQ(add(1), 1001) << "nothing was written";

  PatchRequest loop_request[] = {{"loop", reinterpret_cast<void*>(loop), kLoopIntoPrologue.size(), reinterpret_cast<void*>(DoubledAdd), PublishNowhere}};
  r = PatchFunctions(loop_request);
  EXPECT_EQ(r.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.message().find(kLoopReason), absl::string_view::npos) << r;
  EXPECT_EQ(loop(3), kLoopOf3);
}

TEST(CodePatch, RefusesTheShimsOwnCode) {
  PatchRequest own[] = {{"own", reinterpret_cast<void*>(&DoubledAdd), 16, reinterpret_cast<void*>(NegatedZeroTest), PublishNowhere}};
  EXPECT_EQ(PatchFunctions(own).code(), StatusCode::kInvalidArgument);
}

// A thread that might be running the entry while it changes. (Under qemu-user, /proc/self/status
// counts qemu's own thread too; code_patch.cc leaves that one out.)
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

int InstallSeccomp(sock_filter* filter, unsigned short length) {
  sock_fprog prog = {length, filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  return static_cast<int>(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
}

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
  if (InstallSeccomp(filter, static_cast<unsigned short>(std::size(filter))) != 0) {
    std::perror("seccomp");
    _exit(2);
  }
}

// Runs `body` in a child process (under the filter, if any refusals); returns what it returned,
// or how it died.
std::string InChild(const std::function<std::string()>& body, const Refusals* refusals = nullptr) {
  int out[2];
  if (pipe(out) != 0) return "no pipe";
  pid_t pid = fork();
  if (pid == 0) {
    close(out[0]);
    if (refusals) InstallFilter(*refusals);
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

std::string InChild(const Refusals& refusals, const std::function<std::string()>& body) {
  return InChild(body, &refusals);
}

// qemu-user refuses seccomp filters (they would filter qemu's own system calls).
bool SeccompFiltersWork() {
  return InChild([] {
           sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
           return std::string(InstallSeccomp(allow, 1) == 0 ? "yes" : std::strerror(errno));
         }) == "yes";
}
#define SKIP_WITHOUT_SECCOMP() \
  if (!SeccompFiltersWork()) GTEST_SKIP() << "seccomp filters cannot be installed here (qemu-user refuses them)"

// Patches `add`, then says how that went and what add(1) returns.
std::string PatchAndCall(IntFn add) {
  PatchRequest request[] = {AddRequest(add)};
  Status s = PatchFunctions(request);
  return (s.ok() ? std::string("patched") : std::string(s.message())) + "; add(1)=" + std::to_string(add(1));
}

TEST(CodePatch, WritesThroughProcMemWhereExecutableCannotBeWritable) {
  SKIP_WITHOUT_SECCOMP();
  CodePage code;
  auto* add = reinterpret_cast<IntFn>(code.Add(kAddConstant));
  code.Seal();
  EXPECT_EQ(InChild({.page = code.page(), .any_exec = true}, [&] { return PatchAndCall(add); }), "patched; add(1)=2002");
}

TEST(CodePatch, WithoutProcMemThePageIsWritableAndExecutableForTheCopy) {
  SKIP_WITHOUT_SECCOMP();
  CodePage code;
  auto* add = reinterpret_cast<IntFn>(code.Add(kAddConstant));
  code.Seal();
  EXPECT_EQ(InChild({.proc_mem = true}, [&] { return PatchAndCall(add); }), "patched; add(1)=2002");
}

// The host refuses both: nothing was written, the code runs as before.
TEST(CodePatch, RefusesWhenCodeCannotBeWrittenAndStayExecutable) {
  SKIP_WITHOUT_SECCOMP();
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

#if defined(__x86_64__)
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
#endif

#if defined(__aarch64__)
IntFn g_original_pac_a, g_original_pac_b;
long PacAHook(long x) { return g_original_pac_a(x) + 100; }
long PacBHook(long x) { return g_original_pac_b(x) + 200; }
void PublishPacA(void* original) { g_original_pac_a = reinterpret_cast<IntFn>(original); }
void PublishPacB(void* original) { g_original_pac_b = reinterpret_cast<IntFn>(original); }

// A function that signs LR at its entry keeps paciasp/pacibsp there: LR reaches the patch signed.
// The thunk authenticates it before the hook, and the trampoline signs the hook's LR again for the
// original's epilogue. Where pointer authentication is on (qemu's CPU has it), a slip either way
// returns to a corrupted address.
TEST(CodePatchAarch64, SignedReturnAddressesSurviveTheHookAndTheOriginal) {
  CodePage code;
  auto* pac_a = reinterpret_cast<IntFn>(code.Add(PacFrame(kPaciasp, kAutiasp)));
  auto* pac_b = reinterpret_cast<IntFn>(code.Add(PacFrame(kPacibsp, kAutibsp)));
  auto* signs = reinterpret_cast<IntFn>(code.Add(kPacSigns));
  code.Seal();
  RecordProperty("pointer_authentication", signs(0) != 0 ? "on" : "off (the PAC instructions are NOPs)");
  ASSERT_EQ(pac_a(5), 13);
  PatchRequest requests[] = {
      {"pac_a", reinterpret_cast<void*>(pac_a), 40, reinterpret_cast<void*>(PacAHook), PublishPacA},
      {"pac_b", reinterpret_cast<void*>(pac_b), 40, reinterpret_cast<void*>(PacBHook), PublishPacB},
  };
  Status s = PatchFunctions(requests);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(reinterpret_cast<const uint32_t*>(pac_a)[0], kPaciasp) << "the landing pad stays at the entry";
  EXPECT_TRUE(EntryJumps(reinterpret_cast<uint8_t*>(pac_a)));
  EXPECT_EQ(pac_a(5), 113);
  EXPECT_EQ(pac_b(5), 213);
  EXPECT_EQ(g_original_pac_a(7), 17);
  EXPECT_EQ(g_original_pac_b(7), 17);
}

// On a BTI-guarded page an indirect branch must land on a landing pad: the entry's patch and the
// trampoline's way back are direct branches and need none. First, that the page really is
// guarded: a call to a function without a pad there dies (SIGILL).
TEST(CodePatchAarch64, PatchedFunctionsRunOnAGuardedPage) {
  if (!(getauxval(AT_HWCAP2) & HWCAP2_BTI)) GTEST_SKIP() << "the CPU has no BTI";
  CodePage code;
  auto* add = reinterpret_cast<IntFn>(code.Add(kAddConstant));
  auto* pac_a = reinterpret_cast<IntFn>(code.Add(PacFrame(kPaciasp, kAutiasp)));
  auto* unpadded = reinterpret_cast<IntFn>(code.Add(kZeroTest));
  code.Seal(PROT_READ | PROT_EXEC | PROT_BTI);
  const std::string died = InChild([&] {
    const rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    return std::to_string(unpadded(1));
  });
  EXPECT_EQ(died, "killed by signal " + std::to_string(SIGILL));
  PatchRequest requests[] = {
      AddRequest(add),
      {"pac_a", reinterpret_cast<void*>(pac_a), 40, reinterpret_cast<void*>(PacAHook), PublishPacA},
  };
  Status s = PatchFunctions(requests);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(add(1), 2002);
  EXPECT_EQ(g_original_add(1), 1001);
  EXPECT_EQ(pac_a(5), 113);
}
#endif

}  // namespace
}  // namespace awfshim
