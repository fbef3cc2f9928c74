/* The empty preload plus the one thing the front's constructor does for every process: resolve
 * each hooked symbol with dlsym(RTLD_NEXT). Process start under this object against the empty
 * floor isolates that cost from the rest of the front (its size, relocations, getenv). */
#include <dlfcn.h>

/* Kept, like the front keeps them; also stops the compiler from turning the last dlsym into a
 * tail call, after which RTLD_NEXT would be resolved relative to the constructor's caller. */
void *volatile awfshim_bench_resolved[64];

__attribute__((constructor)) static void resolve_like_the_front(void) {
  unsigned n = 0;
#define AWF_HOOK(ret, name, params, args, when) awfshim_bench_resolved[n++ % 64] = dlsym(RTLD_NEXT, #name);
#define AWF_HOOK_CUSTOM(ret, name, params) awfshim_bench_resolved[n++ % 64] = dlsym(RTLD_NEXT, #name);
#include "awfshim/hooks.def"
#undef AWF_HOOK
#undef AWF_HOOK_CUSTOM
}
