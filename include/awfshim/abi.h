/* The front↔engine ABI. C, because the front is built without the C++ runtime. */
#ifndef AWFSHIM_ABI_H
#define AWFSHIM_ABI_H

#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever anything below changes shape; the engine refuses a front of another version. */
#define AWF_ABI_VERSION 5

#define AWF_HOOK(ret, name, params, args, when) typedef ret(*awf_##name##_fn) params;
#define AWF_HOOK_CUSTOM(ret, name, params) typedef ret(*awf_##name##_fn) params;
#include "awfshim/hooks.def"
#undef AWF_HOOK
#undef AWF_HOOK_CUSTOM

/* One function pointer per hooked symbol, in list order. Used twice: the real (next) definitions,
 * which the front resolves in its constructor, and the engine's implementations. */
struct awf_functions {
#define AWF_HOOK(ret, name, params, args, when) awf_##name##_fn name;
#define AWF_HOOK_CUSTOM(ret, name, params) awf_##name##_fn name;
#include "awfshim/hooks.def"
#undef AWF_HOOK
#undef AWF_HOOK_CUSTOM
};

/* What the front knows and hands over when it loads the engine. */
struct awf_front_info {
  int abi_version;
  const struct awf_functions *real; /* the next definition of every hooked symbol */
  char *const *environ_at_start;    /* the environment as the process started (read once) */
  const char *exe;                  /* basename of the executable */
  const char *front_path;           /* where libawfshim.so was loaded from */
  /* The next definition of a symbol after the front, also in libraries loaded RTLD_LOCAL since
   * start; never loads anything. NULL when there is none. */
  void *(*next_definition)(const char *name);
  /* Set when the front loads the engine from its constructor, before the application's own code
   * has run or started threads: the one moment at which code may be patched. */
  int at_start;
};

/* What the engine hands back. `fd_slots[fd]` is non-zero exactly when the engine keeps state for
 * fd; the front reads it (relaxed) on every fd hook, so an unrelated fd costs a load and a branch. */
struct awf_engine {
  struct awf_functions hooks;
  const uintptr_t *fd_slots;
  unsigned int fd_slot_count;
  int tap_enabled; /* the SSL_* hooks go to the engine only when this is set */
};

/* The engine's only exported symbol. Returns NULL after writing one line to stderr if it cannot
 * run in this process. */
typedef const struct awf_engine *(*awf_engine_attach_fn)(const struct awf_front_info *front);
#define AWF_ENGINE_ATTACH_SYMBOL "awfshim_engine_attach"

#ifdef __cplusplus
}
#endif
#endif
