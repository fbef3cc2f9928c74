// Redirecting functions of the running process to hooks by rewriting their entry with a jump
// (x86-64 and aarch64, see code_patch_arch.h). For code that
// calls its own copy of a function directly, where symbol interposition cannot reach (OpenSSL
// inside a Node.js executable).
#pragma once

#include <cstddef>

#include "awfshim/status.h"
#include "absl/types/span.h"

namespace awfshim {

struct PatchRequest {
  const char* name;  // for messages
  void* function;
  size_t size;  // the function's symbol size: its body is checked for branches into the patch
  void* hook;
  // Receives the address that calls the original behaviour once that code is executable and
  // before any entry jumps to a hook, so that a hook never finds it missing; then null if the
  // patch is given up.
  void (*publish)(void* original);
};

// All or nothing: either every function now jumps to its hook and each request's original was
// published, or every entry holds its own code and the error says why. The code stays
// executable throughout. Refused while the process has more than one thread (the entry bytes
// change under anything executing them), for a function patched before, and for the shim's own.
Status PatchFunctions(absl::Span<const PatchRequest> requests);

}  // namespace awfshim
