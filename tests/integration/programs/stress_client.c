/* Stress client for the shim: many connections, each exchanging a distinct payload with an echo
 * server (tests/integration/programs/stress_echo.c) end to end, and the process's fds and
 * resident memory measured before and after.
 *
 *   stress_client threads HOST PORT blocking|nonblocking THREADS CONNS WARMUP
 *     THREADS threads, each making CONNS connections one after the other (getaddrinfo, socket,
 *     connect, send the payload, read it back, close). First a warm-up round of WARMUP
 *     connections per thread, with the same threads count and mode.
 *
 *   stress_client epoll HOST PORT CONNS ROUNDS
 *     One thread, one epoll loop: opens CONNS non-blocking connections, then drives every one
 *     of them through EPOLLOUT (send) and EPOLLIN (read the echo) until all have exchanged
 *     their payload, and only then closes them all. Round 0 is the warm-up; ROUNDS more follow.
 *
 * The baseline (fds, RSS) is taken after the warm-up, the final numbers after the last round;
 * before each, malloc_trim(0) hands free heap back, so that what stays resident is what is still
 * allocated. Payloads are 32..543 bytes, distinct per connection; a connection fails unless it
 * gets back exactly what it sent. Every wait is bounded (30 s: poll, epoll_wait, SO_RCVTIMEO and
 * SO_SNDTIMEO on blocking sockets), so a stall is a failure, not a hang. Prints one JSON line:
 *   {"ok":..,"connections":..,"failures":..,"first_error":"..","engine_loaded":..,
 *    "fds_baseline":..,"fds_after":..,"fd_diff":"..","rss_baseline_kb":..,"rss_after_kb":..,
 *    "rss_peak_kb":..}
 * "ok" covers the exchanges only; the test judges the fd and RSS numbers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define WAIT_MS 30000
#define MAX_PAYLOAD 544
#define MAX_FDS 4096
#define MAX_THREADS 256

static const char *host, *port;
static bool nonblocking;
static atomic_long failures, connections;
static pthread_mutex_t error_mu = PTHREAD_MUTEX_INITIALIZER;
static char first_error[256];

static void fail(const char *what, int err, long id) {
  atomic_fetch_add(&failures, 1);
  pthread_mutex_lock(&error_mu);
  if (!first_error[0]) {
    snprintf(first_error, sizeof first_error, "connection %ld: %s: %s", id, what,
             err ? (strerrorname_np(err) ? strerrorname_np(err) : "?") : "-");
  }
  pthread_mutex_unlock(&error_mu);
}

/* The payload of connection `id`: a header naming it, then bytes from a per-connection
 * xorshift sequence, then a newline; 32..543 bytes. */
static size_t payload(long id, char *out) {
  uint64_t x = 0x9e3779b97f4a7c15ull ^ (uint64_t)id * 0xbf58476d1ce4e5b9ull;
  x ^= x >> 31;
  size_t len = 32 + (size_t)(x % 512);
  int head = snprintf(out, len, "conn %ld ", id);
  for (size_t i = (size_t)head; i < len - 1; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = (char)('!' + x % 94);
  }
  out[len - 1] = '\n';
  return len;
}

static struct addrinfo *resolve(long id) {
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) {
    fail(gai_strerror(rc), rc == EAI_SYSTEM ? errno : 0, id);
    return NULL;
  }
  return res;
}

static bool wait_for(int fd, short events, long id) {
  struct pollfd p = {fd, events, 0};
  int n = poll(&p, 1, WAIT_MS);
  if (n == 1) return true;
  fail(n == 0 ? "no progress within 30 s" : "poll", n == 0 ? 0 : errno, id);
  return false;
}

/* After EAGAIN: a non-blocking socket waits for readiness; a blocking one has already waited
 * out its SO_RCVTIMEO/SO_SNDTIMEO. */
static bool wait_again(int fd, short events, long id) {
  if (nonblocking) return wait_for(fd, events, id);
  fail("no progress within 30 s", 0, id);
  return false;
}

/* One connection of a `threads` run. */
static void exchange(long id) {
  char out[MAX_PAYLOAD], in[MAX_PAYLOAD];
  size_t len = payload(id, out), sent = 0, got = 0;
  atomic_fetch_add(&connections, 1);
  struct addrinfo *res = resolve(id);
  if (!res) return;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) {
    fail("socket", errno, id);
    freeaddrinfo(res);
    return;
  }
  if (connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
    if (!nonblocking || errno != EINPROGRESS) {
      fail("connect", errno, id);
      goto out;
    }
    if (!wait_for(fd, POLLOUT, id)) goto out;
    int err = 0;
    socklen_t l = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err != 0) {
      fail("connect (SO_ERROR)", err ? err : errno, id);
      goto out;
    }
  }
  if (!nonblocking) {
    /* A blocking send or recv that stalls returns EAGAIN after 30 s instead of hanging. */
    struct timeval tv = {.tv_sec = WAIT_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  while (sent < len) {
    ssize_t n = send(fd, out + sent, len - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += (size_t)n;
    } else if (n < 0 && errno == EAGAIN) {
      if (!wait_again(fd, POLLOUT, id)) goto out;
    } else {
      fail("send", n < 0 ? errno : 0, id);
      goto out;
    }
  }
  while (got < len) {
    ssize_t n = recv(fd, in + got, len - got, 0);
    if (n > 0) {
      got += (size_t)n;
    } else if (n < 0 && errno == EAGAIN) {
      if (!wait_again(fd, POLLIN, id)) goto out;
    } else {
      fail(n == 0 ? "recv: EOF before the whole echo" : "recv", n < 0 ? errno : 0, id);
      goto out;
    }
  }
  if (memcmp(in, out, len) != 0) fail("echo differs from what was sent", 0, id);
out:
  close(fd);
  freeaddrinfo(res);
}

struct worker_arg {
  long thread, conns, base;
};

static void *worker(void *p) {
  struct worker_arg *a = p;
  for (long i = 0; i < a->conns; i++) exchange(a->base + a->thread * a->conns + i);
  return NULL;
}

static void run_threads(long threads, long conns, long base) {
  pthread_t t[MAX_THREADS];
  struct worker_arg args[MAX_THREADS];
  for (long i = 0; i < threads; i++) {
    args[i] = (struct worker_arg){i, conns, base};
    int err = pthread_create(&t[i], NULL, worker, &args[i]);
    if (err != 0) {
      fail("pthread_create", err, -1);
      threads = i;
      break;
    }
  }
  for (long i = 0; i < threads; i++) pthread_join(t[i], NULL);
}

/* ---- epoll: every connection of a round open at once, one loop ---------------------------- */

enum state { SENDING, READING, DONE };
struct econn {
  int fd;
  enum state state;
  size_t len, sent, got;
  char out[MAX_PAYLOAD], in[MAX_PAYLOAD];
};
static struct econn *econns; /* allocated once, before the baseline */

static void efail(struct econn *c, int ep, const char *what, int err, long id) {
  fail(what, err, id);
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  c->state = DONE;
}

/* Returns true when the connection is finished (done or failed). */
static bool estep(struct econn *c, int ep, uint32_t events, long id) {
  if (c->state == SENDING) {
    if (c->sent == 0) {
      int err = 0;
      socklen_t l = sizeof err;
      if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err != 0) {
        efail(c, ep, "connect (SO_ERROR)", err ? err : errno, id);
        return true;
      }
      if (!(events & EPOLLOUT)) return false; /* spurious */
    }
    while (c->sent < c->len) {
      ssize_t n = send(c->fd, c->out + c->sent, c->len - c->sent, MSG_NOSIGNAL);
      if (n > 0) {
        c->sent += (size_t)n;
      } else if (n < 0 && errno == EAGAIN) {
        return false;
      } else {
        efail(c, ep, "send", n < 0 ? errno : 0, id);
        return true;
      }
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)(c - econns)};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
      efail(c, ep, "epoll_ctl(MOD)", errno, id);
      return true;
    }
    c->state = READING;
    return false;
  }
  for (;;) {
    ssize_t n = recv(c->fd, c->in + c->got, c->len - c->got, 0);
    if (n > 0) {
      c->got += (size_t)n;
      if (c->got < c->len) continue;
      if (memcmp(c->in, c->out, c->len) != 0) {
        efail(c, ep, "echo differs from what was sent", 0, id);
      } else {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        c->state = DONE;
      }
      return true;
    }
    if (n < 0 && errno == EAGAIN) return false;
    efail(c, ep, n == 0 ? "recv: EOF before the whole echo" : "recv", n < 0 ? errno : 0, id);
    return true;
  }
}

static void run_epoll_round(long conns, long base) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    fail("epoll_create1", errno, -1);
    return;
  }
  long pending = 0;
  for (long i = 0; i < conns; i++) {
    struct econn *c = &econns[i];
    long id = base + i;
    c->len = payload(id, c->out);
    c->sent = c->got = 0;
    c->state = DONE;
    c->fd = -1;
    atomic_fetch_add(&connections, 1);
    struct addrinfo *res = resolve(id);
    if (!res) continue;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
      fail("socket", errno, id);
    } else if (connect(c->fd, res->ai_addr, res->ai_addrlen) < 0 && errno != EINPROGRESS) {
      fail("connect", errno, id);
    } else {
      struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)i};
      if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        fail("epoll_ctl(ADD)", errno, id);
      } else {
        c->state = SENDING;
        pending++;
      }
    }
    freeaddrinfo(res);
  }
  while (pending > 0) {
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, WAIT_MS);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      char what[96];
      snprintf(what, sizeof what, "epoll loop: no progress within 30 s, %ld connections unfinished", pending);
      fail(what, n < 0 ? errno : 0, -1);
      atomic_fetch_add(&failures, pending - 1);
      break;
    }
    for (int k = 0; k < n; k++) {
      long i = (long)evs[k].data.u64;
      if (econns[i].state != DONE && estep(&econns[i], ep, evs[k].events, base + i)) pending--;
    }
  }
  for (long i = 0; i < conns; i++) {
    if (econns[i].fd >= 0) close(econns[i].fd);
  }
  close(ep);
}

/* ---- measurements ------------------------------------------------------------------------ */

struct fds {
  int count;
  char target[MAX_FDS][48]; /* readlink of /proc/self/fd/N, "" when not open */
};
static struct fds fds_baseline, fds_after;

static void snapshot_fds(struct fds *s) {
  memset(s, 0, sizeof *s);
  DIR *d = opendir("/proc/self/fd");
  for (struct dirent *e; (e = readdir(d));) {
    int fd = atoi(e->d_name);
    if (e->d_name[0] == '.' || fd == dirfd(d)) continue;
    s->count++;
    if (fd < MAX_FDS) {
      char path[64];
      snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
      if (readlink(path, s->target[fd], sizeof s->target[fd] - 1) < 0) strcpy(s->target[fd], "?");
    }
  }
  closedir(d);
}

static long rss_kb(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  size_t n = strlen(field);
  while (f && fgets(line, sizeof line, f)) {
    if (strncmp(line, field, n) == 0 && line[n] == ':') kb = atol(line + n + 1);
  }
  if (f) fclose(f);
  return kb;
}

static long measure_rss(void) {
  malloc_trim(0);
  return rss_kb("VmRSS");
}

/* Both snapshots are filled here first, so that their pages are resident before the baseline. */
static long baseline(void) {
  snapshot_fds(&fds_after);
  snapshot_fds(&fds_baseline);
  return measure_rss();
}

static bool engine_loaded(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  bool found = false;
  while (f && !found && fgets(line, sizeof line, f)) found = strstr(line, "libawfshim-core.so") != NULL;
  if (f) fclose(f);
  return found;
}

static void describe_fd_diff(char *out, size_t size) {
  out[0] = '\0';
  for (int fd = 0; fd < MAX_FDS; fd++) {
    if (strcmp(fds_baseline.target[fd], fds_after.target[fd]) == 0) continue;
    size_t used = strlen(out);
    snprintf(out + used, size - used, "%s%d:%s->%s", used ? " " : "", fd,
             fds_baseline.target[fd][0] ? fds_baseline.target[fd] : "-",
             fds_after.target[fd][0] ? fds_after.target[fd] : "-");
  }
}

static void json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') putchar('\\');
    putchar((unsigned char)*s < 0x20 ? '?' : *s);
  }
  putchar('"');
}

int main(int argc, char **argv) {
  bool threads_mode = argc == 8 && strcmp(argv[1], "threads") == 0;
  bool epoll_mode = argc == 6 && strcmp(argv[1], "epoll") == 0;
  if (!threads_mode && !epoll_mode) {
    fprintf(stderr,
            "usage: stress_client threads HOST PORT blocking|nonblocking THREADS CONNS WARMUP\n"
            "       stress_client epoll HOST PORT CONNS ROUNDS\n");
    return 2;
  }
  host = argv[2];
  port = argv[3];
  /* Room for a thousand sockets at once whatever the inherited soft limit. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < MAX_FDS) {
    rl.rlim_cur = rl.rlim_max < MAX_FDS ? rl.rlim_max : MAX_FDS;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  long rss_baseline;
  if (threads_mode) {
    nonblocking = strcmp(argv[4], "nonblocking") == 0;
    long threads = atol(argv[5]), conns = atol(argv[6]), warmup = atol(argv[7]);
    if (threads < 1 || threads > MAX_THREADS) return 2;
    run_threads(threads, warmup, 0);
    rss_baseline = baseline();
    run_threads(threads, conns, threads * warmup);
  } else {
    long conns = atol(argv[4]), rounds = atol(argv[5]);
    if (conns < 1 || conns > MAX_FDS - 64) return 2;
    econns = calloc((size_t)conns, sizeof *econns);
    run_epoll_round(conns, 0);
    rss_baseline = baseline();
    for (long r = 1; r <= rounds; r++) run_epoll_round(conns, r * conns);
  }
  snapshot_fds(&fds_after);
  long rss_after = measure_rss();
  char diff[1024];
  describe_fd_diff(diff, sizeof diff);
  bool ok = failures == 0;
  printf("{\"ok\":%s,\"connections\":%ld,\"failures\":%ld,\"first_error\":", ok ? "true" : "false",
         (long)connections, (long)failures);
  json_string(first_error);
  printf(",\"engine_loaded\":%s,\"fds_baseline\":%d,\"fds_after\":%d,\"fd_diff\":", engine_loaded() ? "true" : "false",
         fds_baseline.count, fds_after.count);
  json_string(diff);
  printf(",\"rss_baseline_kb\":%ld,\"rss_after_kb\":%ld,\"rss_peak_kb\":%ld}\n", rss_baseline, rss_after,
         rss_kb("VmHWM"));
  return ok ? 0 : 1;
}
