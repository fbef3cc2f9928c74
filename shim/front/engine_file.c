/* Checks the engine's file before dlopen: the loader maps a truncated object's segments past the
 * end of the file and the process dies of SIGBUS when it touches them, so the front refuses a file
 * whose loadable segments are not all in it, or that is not an ELF object for this machine. */
#include "engine_file.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__)
#define AWF_ELF_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define AWF_ELF_MACHINE EM_AARCH64
#else
#error "engine_file: unsupported architecture"
#endif

/* The headers of a usual object fit in its first bytes: one read serves the check (it runs in
 * every process that loads the engine, ahead of dlopen). */
enum { AWF_HEAD_BYTES = 1024 };

bool awf_engine_file_ok(const char *path, char *why, size_t why_len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true; /* dlopen says why, in its own words */
  struct stat st;
  _Alignas(ElfW(Ehdr)) unsigned char head[AWF_HEAD_BYTES];
  ssize_t got = fstat(fd, &st) == 0 ? pread(fd, head, sizeof head, 0) : -1;
  ElfW(Ehdr) eh;
  if (got >= (ssize_t)sizeof eh) memcpy(&eh, head, sizeof eh);
  bool ok = false;
  if (got < (ssize_t)sizeof eh) {
    snprintf(why, why_len, "%s: too short for an ELF header", path);
  } else if (eh.e_ident[EI_MAG0] != ELFMAG0 || eh.e_ident[EI_MAG1] != ELFMAG1 || eh.e_ident[EI_MAG2] != ELFMAG2 ||
             eh.e_ident[EI_MAG3] != ELFMAG3 || eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_type != ET_DYN) {
    snprintf(why, why_len, "%s: not a 64-bit ELF shared object", path);
  } else if (eh.e_machine != AWF_ELF_MACHINE) {
    snprintf(why, why_len, "%s: built for another architecture (ELF machine %u, this is %u)", path,
             (unsigned)eh.e_machine, (unsigned)AWF_ELF_MACHINE);
  } else if (eh.e_phentsize != sizeof(ElfW(Phdr)) || eh.e_phnum == 0 ||
             eh.e_phoff + (uint64_t)eh.e_phnum * sizeof(ElfW(Phdr)) > (uint64_t)st.st_size) {
    snprintf(why, why_len, "%s: truncated (program headers past the end of the file)", path);
  } else {
    ok = true;
    const bool in_head = eh.e_phoff + (uint64_t)eh.e_phnum * sizeof(ElfW(Phdr)) <= (uint64_t)got;
    for (unsigned i = 0; ok && i < eh.e_phnum; i++) {
      ElfW(Phdr) ph;
      const uint64_t at = eh.e_phoff + (uint64_t)i * sizeof ph;
      if (in_head) {
        memcpy(&ph, head + at, sizeof ph);
      } else if (pread(fd, &ph, sizeof ph, (off_t)at) != (ssize_t)sizeof ph) {
        ok = false;
      }
      if (!ok || (ph.p_type == PT_LOAD && ph.p_offset + ph.p_filesz > (uint64_t)st.st_size)) {
        snprintf(why, why_len, "%s: truncated (%llu bytes; a segment ends past them)", path,
                 (unsigned long long)st.st_size);
        ok = false;
      }
    }
  }
  close(fd);
  return ok;
}
