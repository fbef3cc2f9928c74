// The executable's own symbol table, as the TLS tap reads Node.js's (elf_symbols.h).
#include "../../shim/platform/elf_symbols.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "../../shim/platform/code_patch.h"

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
