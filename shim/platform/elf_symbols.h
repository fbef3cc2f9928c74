// Reading the running executable's own dynamic symbol table, without dladdr (which scans every
// symbol of an object: ~1 ms per call on the Node.js executable).
#pragma once

#include <cstddef>

namespace awfshim {

struct ExecutableSymbol {
  void* address = nullptr;  // null: the executable does not define it
  size_t size = 0;
};

// `name` as the main executable itself defines and exports it (a function or object in its own
// .dynsym, found through its GNU hash table); libraries and the shim are never looked at.
ExecutableSymbol FindInExecutable(const char* name);

// Whether both addresses lie in the same loaded object (by its PT_LOAD segments).
bool InSameObject(const void* a, const void* b);

}  // namespace awfshim
