/* The upstream for the stress tests: an echo server in one thread around one epoll loop, so that
 * it keeps up with tens of thousands of short connections on a 2-core machine (the Python
 * fixture starts a thread per connection). Runs without the shim.
 *
 *   stress_echo PORT_FILE HOST:PORT...
 *
 * Listens on every HOST:PORT (IPv4 literal, port 0 = ephemeral), then writes one port per line
 * to PORT_FILE (atomically). Echoes every byte back; after the peer's EOF it closes once all is
 * echoed. A connection whose first bytes are "STATS\n" is not counted and gets one JSON line:
 *   {"accepted":N,"echoed":BYTES,"open":K,"peak_open":P}
 * peak_open is the most connections open at once since the previous STATS (it then restarts
 * from open). Stops on SIGTERM. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 4096
#define MAX_LISTEN 8

struct conn {
  int fd;
  bool listener, eof, first;
  size_t off, len; /* bytes buf[off, len) still to be echoed */
  char buf[BUF];
};

static int ep;
static long accepted, open_now, peak_open;
static unsigned long long echoed;

static void die(const char *what) {
  fprintf(stderr, "stress_echo: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void watch(struct conn *c, int op) {
  struct epoll_event ev = {.events = c->len > c->off ? EPOLLOUT : EPOLLIN, .data.ptr = c};
  if (epoll_ctl(ep, op, c->fd, &ev) < 0) die("epoll_ctl");
}

static void drop(struct conn *c) {
  close(c->fd);
  free(c);
  open_now--;
}

/* Writes what is pending; false once the connection is gone. */
static bool flush(struct conn *c) {
  while (c->off < c->len) {
    ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN) return true;
    if (n <= 0) {
      drop(c);
      return false;
    }
    c->off += (size_t)n;
    echoed += (unsigned long long)n;
  }
  c->off = c->len = 0;
  if (c->eof) {
    drop(c);
    return false;
  }
  return true;
}

static void on_readable(struct conn *c) {
  ssize_t n = recv(c->fd, c->buf, BUF, 0);
  if (n < 0 && errno == EAGAIN) return;
  if (n < 0) {
    drop(c);
    return;
  }
  if (n == 0) {
    c->eof = true;
    flush(c); /* nothing pending: closes */
    return;
  }
  if (c->first && n >= 6 && memcmp(c->buf, "STATS\n", 6) == 0) {
    accepted--;
    open_now--;
    c->len = (size_t)snprintf(c->buf, BUF, "{\"accepted\":%ld,\"echoed\":%llu,\"open\":%ld,\"peak_open\":%ld}\n",
                              accepted, echoed, open_now, peak_open);
    peak_open = open_now;
    open_now++; /* drop() takes it off again */
    (void)!send(c->fd, c->buf, c->len, MSG_NOSIGNAL);
    drop(c);
    return;
  }
  c->first = false;
  c->off = 0;
  c->len = (size_t)n;
  if (flush(c) && c->len > 0) watch(c, EPOLL_CTL_MOD); /* wait for room, stop reading */
}

static void on_writable(struct conn *c) {
  if (flush(c) && c->len == 0) watch(c, EPOLL_CTL_MOD); /* drained: read again */
}

static void on_accept(struct conn *l) {
  for (;;) {
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != ECONNABORTED && errno != EINTR) perror("stress_echo: accept4");
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = calloc(1, sizeof *c);
    if (!c) die("calloc");
    c->fd = fd;
    c->first = true;
    accepted++;
    if (++open_now > peak_open) peak_open = open_now;
    watch(c, EPOLL_CTL_ADD);
  }
}

int main(int argc, char **argv) {
  if (argc < 3 || argc - 2 > MAX_LISTEN) {
    fprintf(stderr, "usage: stress_echo PORT_FILE HOST:PORT...\n");
    return 2;
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  char ports[MAX_LISTEN * 8] = "";
  for (int i = 2; i < argc; i++) {
    char host[64];
    const char *colon = strrchr(argv[i], ':');
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (!colon || (size_t)(colon - argv[i]) >= sizeof host) {
      fprintf(stderr, "stress_echo: bad address %s\n", argv[i]);
      return 2;
    }
    memcpy(host, argv[i], (size_t)(colon - argv[i]));
    host[colon - argv[i]] = '\0';
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
      fprintf(stderr, "stress_echo: bad address %s\n", argv[i]);
      return 2;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4096) < 0) die(argv[i]);
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    snprintf(ports + strlen(ports), sizeof ports - strlen(ports), "%u\n", ntohs(sa.sin_port));
    struct conn *l = calloc(1, sizeof *l);
    l->fd = fd;
    l->listener = true;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  }
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
  FILE *f = fopen(tmp, "w");
  if (!f || fputs(ports, f) < 0 || fclose(f) != 0 || rename(tmp, argv[1]) != 0) die(argv[1]);

  for (;;) {
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (c->listener) {
        on_accept(c);
      } else if (c->len > c->off) {
        on_writable(c);
      } else {
        on_readable(c);
      }
    }
  }
}
