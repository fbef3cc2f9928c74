/* An executable that defines and exports OpenSSL's entry points itself, as Node.js does, with
 * bodies the TLS tap can patch. A fake OpenSSL with no network: SSL_write takes anything,
 * SSL_read answers every request with a canned response, so that a patched tap traces an `http`
 * exchange. Non-PIE (loaded at 0x400000), for seccomp_exec's address filter.
 *
 *   patchable_ssl exchange      one request and its response; prints what the calls returned and
 *                               whether SSL_read's entry holds a jump (patched) or its own code
 *   patchable_ssl fork-stress N worker threads call SSL_write/SSL_read/SSL_free on fresh SSL*s
 *                               while the main thread forks N times; each child calls them too
 *                               (on the workers' current SSL*s) and exits; a child stuck for 5 s
 *                               is killed by SIGALRM and ends the run. Prints "forks=N hung=H
 *                               failed=F".
 *
 * Built twice: patchable_ssl_threaded also needs libspinning_ssl.so, whose constructor starts a
 * thread calling SSL_write/SSL_read before the shim's constructor runs. */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "entry_jumps.h"

#ifdef WITH_SPINNER
#include "spinning_ssl.h"
#endif

/* noipa: callers must not rely on what GCC knows of the body (IPA-RA would keep values in
 * registers the function happens not to touch, which the tap's hooks do touch). */
#ifdef __clang__
#define EXPORT __attribute__((visibility("default"), used, noinline))
#else
#define EXPORT __attribute__((visibility("default"), used, noipa))
#endif

static const char kResponse[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
static volatile long written;

EXPORT int SSL_write(void *ssl, const void *buf, int num) {
  written += num;
  (void)buf;
  return ssl ? num : -1;
}

EXPORT int SSL_write_ex(void *ssl, const void *buf, size_t num, size_t *done) {
  written += (long)num;
  (void)buf;
  *done = ssl ? num : 0;
  return ssl != NULL;
}

EXPORT int SSL_read(void *ssl, void *buf, int num) {
  if (!ssl || num < (int)sizeof kResponse - 1) return -1;
  memcpy(buf, kResponse, sizeof kResponse - 1);
  return (int)sizeof kResponse - 1;
}

EXPORT int SSL_read_ex(void *ssl, void *buf, size_t num, size_t *done) {
  *done = 0;
  if (!ssl || num < sizeof kResponse - 1) return 0;
  memcpy(buf, kResponse, sizeof kResponse - 1);
  *done = sizeof kResponse - 1;
  return 1;
}

EXPORT void SSL_free(void *ssl) { written += ssl != NULL; }

EXPORT const char *SSL_get_servername(const void *ssl, int type) { return ssl && type == 0 ? "tap.test" : NULL; }

static const char kRequest[] = "GET /patched HTTP/1.1\r\nHost: tap.test\r\n\r\n";

static int exchange(void) {
  char ssl_object, buf[256];
  int w = SSL_write(&ssl_object, kRequest, (int)sizeof kRequest - 1);
  int r = SSL_read(&ssl_object, buf, (int)sizeof buf);
  SSL_free(&ssl_object);
  printf("SSL_write=%d SSL_read=%d SSL_read-entry=%s\n", w, r, entry_jumps((const void *)(uintptr_t)&SSL_read) ? "jmp" : "own");
  return w == (int)sizeof kRequest - 1 && r == (int)sizeof kResponse - 1 ? 0 : 1;
}

enum { kWorkers = 4 };
static char g_objects[kWorkers][64];  /* each worker's SSL*s: g_objects[w] + 0..63 */
static void *volatile g_current[kWorkers];
static volatile int g_stop;

/* Never completes a request head, nor reads a response (the buffer is too small): an `http` event
 * per iteration would fill the trace. */
static void *worker(void *arg) {
  char *base = g_objects[(intptr_t)arg];
  char buf[8];
  for (unsigned i = 0; !g_stop; i++) {
    void *ssl = base + i % 64;
    g_current[(intptr_t)arg] = ssl;
    SSL_write(ssl, "GET /w HTTP/1.1\r\n", 17);
    SSL_read(ssl, buf, (int)sizeof buf);
    SSL_free(ssl);
  }
  return NULL;
}

static int fork_stress(int forks) {
  pthread_t threads[kWorkers];
  for (intptr_t i = 0; i < kWorkers; i++) pthread_create(&threads[i], NULL, worker, (void *)i);
  int hung = 0, failed = 0, done = 0;
  for (; done < forks && !hung; done++) {
    pid_t pid = fork();
    if (pid == 0) {
      alarm(5);
      char buf[8];
      for (int w = 0; w < kWorkers; w++) {
        SSL_write(g_current[w], "x", 1);
        SSL_read(g_current[w], buf, (int)sizeof buf);
        SSL_free(g_current[w]);
      }
      _exit(0);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
      failed++;
    } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
      hung++;
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      failed++;
    }
  }
  g_stop = 1;
  for (int i = 0; i < kWorkers; i++) pthread_join(threads[i], NULL);
  printf("forks=%d hung=%d failed=%d\n", done, hung, failed);
  return hung || failed;
}

int main(int argc, char **argv) {
  int rc = 2;
  if (argc == 2 && strcmp(argv[1], "exchange") == 0) rc = exchange();
  if (argc == 3 && strcmp(argv[1], "fork-stress") == 0) rc = fork_stress(atoi(argv[2]));
#ifdef WITH_SPINNER
  printf("spinner calls: %s\n", spinning_ssl_stop() > 0 ? "some" : "none");
#endif
  return rc;
}
