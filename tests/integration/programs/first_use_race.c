/* Loads the engine on first use from many threads at once, forks while they do, and makes the
 * child load it too: nothing may deadlock or crash. Prints "ok" and exits 0.
 * The child connects rather than resolves: glibc's resolver is not fork-safe (its own lock can be
 * held by a parent thread at fork), whereas connect() is async-signal-safe. */
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { kThreads = 16 };
static pthread_barrier_t barrier;

static int lookup(void) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  struct addrinfo *res = NULL;
  int rc = getaddrinfo("localhost", "80", &hints, &res);
  if (rc == 0) freeaddrinfo(res);
  return rc;
}

static void *worker(void *arg) {
  (void)arg;
  pthread_barrier_wait(&barrier);
  if (lookup() != 0) {
    fprintf(stderr, "lookup failed in thread\n");
    exit(1);
  }
  return NULL;
}

int main(void) {
  pthread_t threads[kThreads];
  pthread_barrier_init(&barrier, NULL, kThreads + 1);
  for (int i = 0; i < kThreads; i++) pthread_create(&threads[i], NULL, worker, NULL);
  pthread_barrier_wait(&barrier);
  pid_t child = fork(); /* while the threads race to load the engine */
  if (child == 0) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(9)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof a); /* refused: nothing listens on 9 */
    _exit(rc == -1 && errno == ECONNREFUSED ? 0 : 3);
  }
  for (int i = 0; i < kThreads; i++) pthread_join(threads[i], NULL);
  int status = 0;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "child failed: status %d\n", status);
    return 1;
  }
  puts("ok");
  return 0;
}
