/* A stand-in for the firewall's one-shot-token library (AWF's containers/agent/one-shot-token):
 * preloaded first, it hooks getenv() so that each variable named in AWF_ONE_SHOT_TOKENS
 * (comma-separated) is returned once — a copy, and the variable is unset — and NULL afterwards.
 * The real getenv is resolved with dlsym(RTLD_NEXT) in the constructor, never inside the hook.
 * test_deploy puts libawfshim.so behind it, as the README's entrypoint lines do, and checks that
 * both still do their work. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum { kMaxProtected = 32 };

extern char **environ;
static char *(*real_getenv)(const char *);
static char *protected_names[kMaxProtected];
static bool consumed[kMaxProtected];
static int protected_count;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Before the constructor has run (another library's constructor may call getenv): environ. */
static char *scan_environ(const char *name) {
  size_t len = strlen(name);
  for (char **e = environ; e && *e; e++)
    if (strncmp(*e, name, len) == 0 && (*e)[len] == '=') return *e + len + 1;
  return NULL;
}

__attribute__((constructor)) static void init(void) {
  real_getenv = (char *(*)(const char *))dlsym(RTLD_NEXT, "getenv");
  const char *list = real_getenv ? real_getenv("AWF_ONE_SHOT_TOKENS") : NULL;
  if (!list) return;
  char *copy = strdup(list);
  char *save = NULL;
  for (char *name = strtok_r(copy, ",", &save); name && protected_count < kMaxProtected;
       name = strtok_r(NULL, ",", &save))
    if (*name) protected_names[protected_count++] = strdup(name);
  free(copy);
}

char *getenv(const char *name) {
  if (!real_getenv) return scan_environ(name);
  for (int i = 0; i < protected_count; i++) {
    if (strcmp(name, protected_names[i]) != 0) continue;
    pthread_mutex_lock(&lock);
    char *value = NULL;
    if (!consumed[i]) {
      consumed[i] = true;
      const char *live = real_getenv(name);
      if (live) {
        value = strdup(live);
        unsetenv(name);
      }
    }
    pthread_mutex_unlock(&lock);
    return value;  /* the first read's copy (kept for the life of the process), then NULL */
  }
  return real_getenv(name);
}
