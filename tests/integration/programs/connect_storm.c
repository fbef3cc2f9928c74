/* Many threads connecting at once through the shim — routed and unrouted, blocking and
 * non-blocking — with a fork() in the middle. Every connection exchanges a line with an echo
 * server. Afterwards the process must hold exactly the fds it held before.
 *
 *   connect_storm ROUTED_HOST UNROUTED_ADDR PORT THREADS ITERATIONS
 *
 * Prints {"ok":..,"failures":..,"fds_before":..,"fds_after":..,"child":..}. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *routed_host, *unrouted_addr, *port;
static int iterations;
static atomic_int failures;
static int child_status = -1;

/* Open fds other than epoll instances: this program makes none, and the shim's pump makes its
 * one when the first handshake cannot finish inside connect(), which may or may not be during
 * the warm-up. */
static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d)) continue;
    char path[300], target[64] = "";
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    if (readlink(path, target, sizeof target - 1) < 0 || strcmp(target, "anon_inode:[eventpoll]") != 0) n++;
  }
  closedir(d);
  return n;
}

static bool wait_for(int fd, short events) {
  struct pollfd p = {fd, events, 0};
  return poll(&p, 1, 30000) == 1;
}

static bool exchange(const char *host, bool nonblocking) {
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
  if (getaddrinfo(host, port, &hints, &res) != 0) return false;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  bool ok = false;
  if (connect(fd, res->ai_addr, res->ai_addrlen) == 0 || (nonblocking && errno == EINPROGRESS)) {
    char buf[8];
    size_t have = 0;
    ok = !nonblocking || wait_for(fd, POLLOUT);
    ok = ok && send(fd, "PING\n", 5, MSG_NOSIGNAL) == 5;
    while (ok && have < 5) {
      ssize_t n = recv(fd, buf + have, 5 - have, 0);
      if (n > 0) {
        have += (size_t)n;
      } else if (n < 0 && errno == EAGAIN) {
        ok = wait_for(fd, POLLIN);
      } else {
        ok = false;
      }
    }
    ok = ok && memcmp(buf, "PING\n", 5) == 0;
  }
  close(fd);
  freeaddrinfo(res);
  return ok;
}

static void *worker(void *arg) {
  long id = (long)arg;
  for (int i = 0; i < iterations; i++) {
    if (id == 0 && i == iterations / 2) {
      pid_t child = fork();
      if (child == 0) _exit(exchange(routed_host, false) ? 0 : 1);
      int status;
      waitpid(child, &status, 0);
      child_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    }
    bool routed = (i % 4) < 2, nonblocking = i % 2;
    if (!exchange(routed ? routed_host : unrouted_addr, nonblocking)) atomic_fetch_add(&failures, 1);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 6) return 2;
  routed_host = argv[1];
  unrouted_addr = argv[2];
  port = argv[3];
  int threads = atoi(argv[4]);
  iterations = atoi(argv[5]);
  /* Warm up: the engine (and its trace file) exist from here on. */
  if (!exchange(routed_host, true)) {
    puts("{\"ok\":false,\"error\":\"warm-up exchange failed\"}");
    return 1;
  }
  int before = count_fds();
  pthread_t t[256];
  for (long i = 0; i < threads && i < 256; i++) pthread_create(&t[i], NULL, worker, (void *)i);
  for (long i = 0; i < threads && i < 256; i++) pthread_join(t[i], NULL);
  int after = count_fds();
  bool ok = failures == 0 && child_status == 0 && before == after;
  printf("{\"ok\":%s,\"failures\":%d,\"fds_before\":%d,\"fds_after\":%d,\"child\":%d}\n", ok ? "true" : "false",
         failures, before, after, child_status);
  return ok ? 0 : 1;
}
