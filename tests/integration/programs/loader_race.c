/* The front's symbol search against concurrent dlopen/dlclose (the loader's locks). One thread
 * loads and unloads a library in a loop while the main thread loads libssl RTLD_LOCAL — outside
 * RTLD_NEXT's reach, so the front searches the loaded objects — and makes its first SSL_* call
 * through the front's definition.
 *   loader_race LIBRARY   prints "ok" (a deadlock is the failure: the caller's timeout sees it) */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

static atomic_int stop;
static const char *library;

static void *churn(void *arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    void *h = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (h) dlclose(h);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  library = argv[1];
  pthread_t t;
  if (pthread_create(&t, NULL, churn, NULL)) return 3;
  void *ssl = dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
  /* The front's SSL_free, which looks for the next definition now: libssl is not global. */
  void (*ssl_free)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "SSL_free");
  if (!ssl || !ssl_free) return 4;
  ssl_free(NULL); /* SSL_free(NULL) does nothing */
  atomic_store(&stop, 1);
  pthread_join(t, NULL);
  puts("ok");
  return 0;
}
