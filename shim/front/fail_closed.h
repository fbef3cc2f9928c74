/* The front without its engine: see fail_closed.c. */
#ifndef AWFSHIM_FRONT_FAIL_CLOSED_H
#define AWFSHIM_FRONT_FAIL_CLOSED_H
#include <string.h>

#include "awfshim/abi.h"

/* Ends the one stderr line the front writes when the engine cannot be loaded. */
#define AWF_FAIL_CLOSED "; failing closed: TCP connections other than to loopback and the proxy are refused"

/* The value of `name` in a NULL-terminated environment, or NULL. */
static inline const char *awf_env_lookup(char *const *env, const char *name) {
  size_t len = strlen(name);
  for (; env && *env; env++)
    if (strncmp(*env, name, len) == 0 && (*env)[len] == '=') return *env + len + 1;
  return NULL;
}

/* Stands in for the engine: every hook forwards to `real`, but connect (and sendto/sendmsg with
 * MSG_FASTOPEN) refuses TCP to anything but loopback and the proxy named in `env` (resolved now,
 * so call it where lookups reach libc directly). Tracks no fd and taps nothing. */
const struct awf_engine *awf_fail_closed_engine(const struct awf_functions *real, char *const *env);

/* The trace's `error` event for the failed load, to AWF_SHIM_TRACE in `env` if set: the engine
 * that would write it is what failed. Same file rules as its sink: O_APPEND, O_NOFOLLOW, 0600. */
void awf_trace_load_failure(const struct awf_functions *real, char *const *env, const char *what, const char *detail);

#endif
