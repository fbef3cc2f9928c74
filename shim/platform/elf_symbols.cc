#include "elf_symbols.h"

#include <link.h>

#include <cstdint>
#include <cstring>

namespace awfshim {
namespace {

uint32_t GnuHash(const char* name) {
  uint32_t h = 5381;
  for (const unsigned char* p = reinterpret_cast<const unsigned char*>(name); *p; p++) h = h * 33 + *p;
  return h;
}

struct DynamicTables {
  ElfW(Addr) base = 0;
  const ElfW(Sym)* symtab = nullptr;
  const char* strtab = nullptr;
  const uint32_t* gnu_hash = nullptr;
};

// A program header, copied: some executables (the Copilot CLI's) place their table at an
// address that is not 8-byte aligned.
ElfW(Phdr) PhdrAt(const dl_phdr_info* info, ElfW(Half) i) {
  ElfW(Phdr) ph;
  std::memcpy(&ph, reinterpret_cast<const char*>(info->dlpi_phdr) + i * sizeof ph, sizeof ph);
  return ph;
}

// The main program is the first object dl_iterate_phdr reports.
int ReadMainProgram(dl_phdr_info* info, size_t, void* out) {
  auto* t = static_cast<DynamicTables*>(out);
  t->base = info->dlpi_addr;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
    ElfW(Phdr) ph = PhdrAt(info, i);
    if (ph.p_type != PT_DYNAMIC) continue;
    const auto* dyn = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + ph.p_vaddr);
    for (; dyn->d_tag != DT_NULL; dyn++) {
      // ld.so has relocated these in place (the section is writable); a value below the load
      // address has not been.
      ElfW(Addr) p = dyn->d_un.d_ptr < info->dlpi_addr ? dyn->d_un.d_ptr + info->dlpi_addr : dyn->d_un.d_ptr;
      if (dyn->d_tag == DT_SYMTAB) t->symtab = reinterpret_cast<const ElfW(Sym)*>(p);
      if (dyn->d_tag == DT_STRTAB) t->strtab = reinterpret_cast<const char*>(p);
      if (dyn->d_tag == DT_GNU_HASH) t->gnu_hash = reinterpret_cast<const uint32_t*>(p);
    }
  }
  return 1;  // stop after the first object
}

struct Containment {
  uintptr_t address;
  ElfW(Addr) object = 0;  // dlpi_addr of the containing object
  const char* name = nullptr;
  bool found = false;
};

int FindContainer(dl_phdr_info* info, size_t, void* arg) {
  auto* c = static_cast<Containment*>(arg);
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
    ElfW(Phdr) ph = PhdrAt(info, i);
    uintptr_t begin = info->dlpi_addr + ph.p_vaddr;
    if (ph.p_type == PT_LOAD && c->address >= begin && c->address - begin < ph.p_memsz) {
      c->object = info->dlpi_addr;
      c->name = info->dlpi_name;
      c->found = true;
      return 1;
    }
  }
  return 0;
}

Containment ContainerOf(const void* address) {
  Containment c{reinterpret_cast<uintptr_t>(address)};
  dl_iterate_phdr(FindContainer, &c);
  return c;
}

}  // namespace

ExecutableSymbol FindInExecutable(const char* name) {
  DynamicTables t;
  dl_iterate_phdr(ReadMainProgram, &t);
  if (!t.symtab || !t.strtab || !t.gnu_hash) return {};
  // GNU hash layout: nbuckets, symoffset, bloom_size, bloom_shift, bloom[bloom_size] (words),
  // buckets[nbuckets], chain[].
  const uint32_t nbuckets = t.gnu_hash[0], symoffset = t.gnu_hash[1], bloom_size = t.gnu_hash[2];
  if (nbuckets == 0) return {};
  const auto* bloom = reinterpret_cast<const ElfW(Addr)*>(t.gnu_hash + 4);
  const uint32_t* buckets = reinterpret_cast<const uint32_t*>(bloom + bloom_size);
  const uint32_t* chain = buckets + nbuckets;
  const uint32_t h = GnuHash(name);
  for (uint32_t i = buckets[h % nbuckets]; i >= symoffset && i != 0; i++) {
    const uint32_t chained = chain[i - symoffset];
    const ElfW(Sym)& s = t.symtab[i];
    if ((chained | 1) == (h | 1) && s.st_shndx != SHN_UNDEF && std::strcmp(t.strtab + s.st_name, name) == 0) {
      return {reinterpret_cast<void*>(t.base + s.st_value), s.st_size};
    }
    if (chained & 1) break;  // the end of this bucket's chain
  }
  return {};
}

bool InSameObject(const void* a, const void* b) {
  Containment ca = ContainerOf(a), cb = ContainerOf(b);
  return ca.found && cb.found && ca.object == cb.object && std::strcmp(ca.name, cb.name) == 0;
}

}  // namespace awfshim
