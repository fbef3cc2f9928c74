/* A small TCP client that drives a socket the way event loops do, for the routing tests.
 *
 *   netclient MODE HOST PORT [--server-first] [--ticks]
 *
 * MODE: blocking | poll | epoll (edge-triggered, EPOLLIN|EPOLLOUT|EPOLLET).
 * Resolves HOST with getaddrinfo, connects, then either writes "PING\n" and expects it echoed
 * (client speaks first), or with --server-first expects "HELLO awf\n" before doing so.
 * --ticks: a 10 ms timerfd in the same loop counts ticks while waiting (epoll only), to show the
 * loop never stalls. Prints one JSON line: {"ok":..,"ticks":..,"ms":..,"error":..}. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static long ticks;
static double started_ms;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int finish(bool ok, const char *error) {
  printf("{\"ok\":%s,\"ticks\":%ld,\"ms\":%.1f,\"error\":\"%s\"}\n", ok ? "true" : "false", ticks,
         now_ms() - started_ms, error ? error : "");
  return ok ? 0 : 1;
}

static int fail_errno(const char *what) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s: %s", what, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
  return finish(false, buf);
}

/* Waits until fd is ready for `events`, counting timer ticks; edge-triggered: the caller must
 * have drained the fd (seen EAGAIN) before calling. */
static int ep = -1, tfd = -1;
static bool wait_ready(int fd, uint32_t events, const char *mode) {
  if (strcmp(mode, "poll") == 0) {
    struct pollfd p = {fd, (short)((events & EPOLLIN ? POLLIN : 0) | (events & EPOLLOUT ? POLLOUT : 0)), 0};
    return poll(&p, 1, 20000) == 1;
  }
  for (;;) {
    struct epoll_event evs[4];
    int n = epoll_wait(ep, evs, 4, 20000);
    if (n <= 0) return false;
    bool ready = false;
    for (int i = 0; i < n; i++) {
      if (evs[i].data.fd == tfd) {
        uint64_t count;
        if (read(tfd, &count, sizeof count) == sizeof count) ticks += (long)count;
      } else if (evs[i].events & (events | EPOLLERR | EPOLLHUP)) {
        ready = true;
      }
    }
    if (ready) return true;
  }
}

static bool send_all(int fd, const char *data, size_t len, const char *mode) {
  while (len > 0) {
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    if (n > 0) {
      data += n;
      len -= (size_t)n;
    } else if (n < 0 && errno == EAGAIN) {
      if (!wait_ready(fd, EPOLLOUT, mode)) return false;
    } else {
      return false;
    }
  }
  return true;
}

/* Reads until `want` has arrived in full. */
static bool expect(int fd, const char *want, const char *mode) {
  char buf[256];
  size_t have = 0, len = strlen(want);
  while (have < len) {
    ssize_t n = recv(fd, buf + have, len - have, 0);
    if (n > 0) {
      have += (size_t)n;
    } else if (n < 0 && errno == EAGAIN) {
      if (!wait_ready(fd, EPOLLIN, mode)) return false;
    } else {
      return false;
    }
  }
  return memcmp(buf, want, len) == 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s blocking|poll|epoll HOST PORT [--server-first] [--ticks]\n", argv[0]);
    return 2;
  }
  const char *mode = argv[1];
  bool server_first = false, with_ticks = false;
  for (int i = 4; i < argc; i++) {
    if (strcmp(argv[i], "--server-first") == 0) server_first = true;
    if (strcmp(argv[i], "--ticks") == 0) with_ticks = true;
  }
  started_ms = now_ms();
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
  int rc = getaddrinfo(argv[2], argv[3], &hints, &res);
  if (rc != 0) return finish(false, gai_strerror(rc));
  bool blocking = strcmp(mode, "blocking") == 0;
  int fd = socket(res->ai_family, SOCK_STREAM | (blocking ? 0 : SOCK_NONBLOCK), 0);
  if (!blocking && strcmp(mode, "epoll") == 0) {
    ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    if (with_ticks) {
      tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
      struct itimerspec its = {{0, 10000000}, {0, 10000000}};
      timerfd_settime(tfd, 0, &its, NULL);
      struct epoll_event tev = {.events = EPOLLIN, .data.fd = tfd};
      epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);
    }
  }
  if (connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    if (blocking || errno != EINPROGRESS) return fail_errno("connect");
    if (!wait_ready(fd, EPOLLOUT, mode)) return finish(false, "connect: never writable");
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
      errno = err;
      return fail_errno("connect (SO_ERROR)");
    }
  }
  freeaddrinfo(res);
  if (server_first && !expect(fd, "HELLO awf\n", mode)) return fail_errno("greeting");
  if (!send_all(fd, "PING\n", 5, mode)) return fail_errno("send");
  if (!expect(fd, "PING\n", mode)) return fail_errno("echo");
  close(fd);
  return finish(true, NULL);
}
