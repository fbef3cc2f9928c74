#include "spinning_ssl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>

typedef int (*ssl_io_fn)(void *ssl, void *buf, int num);

static ssl_io_fn g_write, g_read;
static pthread_t g_thread;
static volatile int g_stop;
static int g_started;
static volatile long g_calls;

static void *spin(void *arg) {
  char ssl_object, buf[256] = "x";
  (void)arg;
  while (!g_stop) {
    g_write(&ssl_object, buf, 1);
    g_read(&ssl_object, buf, (int)sizeof buf);
    __atomic_add_fetch(&g_calls, 1, __ATOMIC_RELAXED);
  }
  return NULL;
}

/* The executable's definitions: the first in the global scope. */
__attribute__((constructor)) static void start(void) {
  g_write = (ssl_io_fn)dlsym(RTLD_DEFAULT, "SSL_write");
  g_read = (ssl_io_fn)dlsym(RTLD_DEFAULT, "SSL_read");
  g_started = g_write && g_read && pthread_create(&g_thread, NULL, spin, NULL) == 0;
  if (!g_started) return;
  while (__atomic_load_n(&g_calls, __ATOMIC_RELAXED) == 0) sched_yield();  /* it is calling them */
}

long spinning_ssl_stop(void) {
  if (!g_started) return 0;
  g_stop = 1;
  pthread_join(g_thread, NULL);
  return g_calls;
}
