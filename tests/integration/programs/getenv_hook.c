/* A preloaded getenv hook like the firewall's one-shot-token library: it answers NULL until its
 * own constructor has run (and could hide variables). Preloaded before the front, its getenv is
 * the one the front's constructor would reach. */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

extern char **environ;
static bool ready;

__attribute__((constructor)) static void init(void) { ready = true; }

char *getenv(const char *name) {
  if (!ready) return NULL;
  size_t len = strlen(name);
  for (char **e = environ; e && *e; e++)
    if (strncmp(*e, name, len) == 0 && (*e)[len] == '=') return *e + len + 1;
  return NULL;
}
