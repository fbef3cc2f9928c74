/* Runs a program under a seccomp filter that refuses what a hardened host may refuse the TLS tap's
 * patching of a non-PIE executable (loaded at 0x400000), then execs it:
 *
 *   mprotect-exec  mprotect/pkey_mprotect asking for PROT_EXEC on an address in [4 MiB, 1 GiB)
 *                  (the executable's image, not the tap's trampoline page below it) fail with
 *                  EACCES, as SELinux refuses `execmod` when modified code is made executable
 *   proc-mem       pwrite64/pwritev/pwritev2 fail with EIO, as writes to /proc/self/mem do under
 *                  proc_mem.force_override=never (the programs run here never pwrite otherwise)
 *
 * Usage: seccomp_exec RULE[,RULE] PROGRAM [ARGS...] */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARG_LOW(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#define ARG_HIGH(i) (ARG_LOW(i) + 4)
#define ALLOW SECCOMP_RET_ALLOW
#define REFUSE(err) (SECCOMP_RET_ERRNO | (err))
#if defined(__x86_64__)
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_AARCH64
#else
#error "seccomp_exec: unsupported architecture"
#endif

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: seccomp_exec RULE[,RULE] PROGRAM [ARGS...]\n");
    return 2;
  }
  unsigned mprotect_ret = strstr(argv[1], "mprotect-exec") ? REFUSE(EACCES) : ALLOW;
  unsigned pwrite_ret = strstr(argv[1], "proc-mem") ? REFUSE(EIO) : ALLOW;
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_NATIVE, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_pwrite64, 3, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_pwritev, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_pwritev2, 1, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mprotect, 2, 1),
      BPF_STMT(BPF_RET | BPF_K, pwrite_ret),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_pkey_mprotect, 0, 7),
      /* mprotect(addr, len, prot): PROT_EXEC, and addr in [4 MiB, 1 GiB) */
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LOW(2)),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 0, 5),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_HIGH(0)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LOW(0)),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x400000, 0, 1),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, ALLOW),
      BPF_STMT(BPF_RET | BPF_K, mprotect_ret),
  };
  struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
    perror("seccomp_exec: seccomp");
    return 2;
  }
  execv(argv[2], argv + 2);
  perror("seccomp_exec: execv");
  return 127;
}
