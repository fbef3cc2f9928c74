// Entry patching on aarch64 (code_patch_arch.h): not yet. Every request is refused with the reason
// below, which the TLS tap writes into the trace (a `tap` event, "outcome":"refused"); the
// executable then runs untouched and its own OpenSSL is not tapped. Programs linking libssl
// dynamically (curl, python3, git) are tapped through the front's interposed symbols as on x86-64.
//
// To wire the relocator in (aarch64_relocate.h): Available() OK; a slot holds the thunk to the
// hook (`ldr x16, #8; br x16; .quad hook`, after `autiasp`/`autibsp` when the entry keeps a
// paciasp/pacibsp) and then the trampoline RelocatePrologue builds for slot + the thunk's size;
// the patch is EncodeBranch/EncodeAbsoluteBranch to the slot; Reach() follows from the entry patch
// chosen (±128 MB for `b`); SyncCode is __builtin___clear_cache.
#include "code_patch_arch.h"

namespace awfshim::patch_arch {

Status Available() {
  return UnimplementedError("patching the executable's own functions is not supported on aarch64 yet");
}

size_t SlotSize() { return 0; }

uintptr_t Reach() { return 0; }

StatusOr<SlotPlan> PlanSlot(const PatchRequest&, uintptr_t) { return Available(); }

void SyncCode(void* begin, size_t length) {
  char* at = static_cast<char*>(begin);
  __builtin___clear_cache(at, at + length);
}

}  // namespace awfshim::patch_arch
