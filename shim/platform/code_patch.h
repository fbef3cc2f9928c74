// Redirecting functions of the running process to hooks by rewriting their entry with a jump
// (x86-64; elsewhere every request is refused). For code that calls its own copy of a function
// directly, where symbol interposition cannot reach (OpenSSL inside a Node.js executable).
#pragma once

#include <cstddef>
#include <vector>

#include "awfshim/status.h"
#include "absl/types/span.h"

namespace awfshim {

struct PatchRequest {
  const char* name;  // for messages
  void* function;
  size_t size;  // the function's symbol size: its body is checked for branches into the patch
  void* hook;
};

// All or nothing: either every function now jumps to its hook and the i-th result calls the
// original behaviour of requests[i], or nothing was written and the error says why. A function
// is never patched twice, nor one of the shim's own. Call while the process has a single thread:
// the entry bytes change under anything executing them.
StatusOr<std::vector<void*>> PatchFunctions(absl::Span<const PatchRequest> requests);

}  // namespace awfshim
