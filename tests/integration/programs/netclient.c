/* A small TCP client that drives a socket the way event loops do, for the routing tests.
 *
 *   netclient MODE HOST PORT [--server-first] [--ticks]
 *             [--drain | --abandon[=early] [--repeat N] [--settle-ms MS] | --fork-exec GATE]
 *   netclient fdcheck FD
 *
 * MODE: blocking | poll | epoll (edge-triggered, EPOLLIN|EPOLLOUT|EPOLLET).
 * Resolves HOST with getaddrinfo, connects, then either writes "PING\n" and expects it echoed
 * (client speaks first), or with --server-first expects "HELLO awf\n" before doing so.
 * --ticks: a 10 ms timerfd in the same loop counts ticks while waiting (epoll only), to show the
 * loop never stalls. Prints one JSON line: {"ok":..,"ticks":..,"ms":..,"error":..}; the modes
 * below add fields to it.
 *
 * --drain: writes "PING\n" (with --server-first: nothing), then reads until EOF or an error,
 *   checking that byte i of what arrives is i % 256; closes, and checks that socket() gets the fd number back.
 *   Adds "received", "intact", "end" ("eof" or the errno name), "fd", "reused_fd", "fds_before",
 *   "fds_after".
 * --abandon (non-blocking MODE): gives up on the connection mid-handshake. Once writable and
 *   SO_ERROR is 0 it writes "PING\n" and reads once (adds "read": the errno name, or the byte
 *   count), then closes; --abandon=early closes as soon as connect() says EINPROGRESS. The freed
 *   number must come back from socket(): that socket is connected to a loopback listener of our
 *   own and kept; --repeat N abandons N connections this way. After --settle-ms (let anything the
 *   shim still had in mind for the old fds happen), every such connection must have nothing
 *   pending on either end and exchange "fresh\n"/"back\n" exactly. Adds "fds" (the abandoned
 *   numbers), "reused", "clean" (counts), "fds_before", "fds_after".
 * --fork-exec GATE (non-blocking MODE): right after connect() says EINPROGRESS, forks; the child
 *   execs `netclient fdcheck FD`, the parent waits for it to exit, creates the file GATE (the
 *   fixture proxy holds its reply until then: gate=GATE) and completes the exchange.
 *   Adds "fd" and "child_status" (the child's exit code, or -signal).
 * fdcheck FD: what an exec'd child sees: its open fds, whether FD is a socket and its peer, bytes
 *   unread on it, whether the shim's engine is mapped and whether a pump thread runs. Prints one
 *   JSON line of its own. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long ticks;
static double started_ms;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static char more[4096];  /* extra ,"key":value fields for the JSON line */

static void add(const char *fmt, ...) {
  size_t used = strlen(more);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(more + used, sizeof more - used, fmt, ap);
  va_end(ap);
}

static int finish(bool ok, const char *error) {
  printf("{\"ok\":%s,\"ticks\":%ld,\"ms\":%.1f,\"error\":\"%s\"%s}\n", ok ? "true" : "false", ticks,
         now_ms() - started_ms, error ? error : "", more);
  return ok ? 0 : 1;
}

static const char *errno_name(int err) {
  const char *name = strerrorname_np(err);
  return name ? name : "?";
}

static int fail_errno(const char *what) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s: %s", what, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
  return finish(false, buf);
}

/* A finished non-blocking connect's outcome: 0, or non-zero with errno set to its error. */
static int connect_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  errno = err;
  return err;
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

/* Open fds, not counting epoll instances (the shim's pump has one). */
static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) {
    if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d)) continue;
    char path[300], target[256] = "";
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    if (readlink(path, target, sizeof target - 1) < 0 || strcmp(target, "anon_inode:[eventpoll]") != 0) n++;
  }
  if (d) closedir(d);
  return n;
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

/* --drain: reads until EOF or an error; byte i must be i % 256. */
static int drain(int fd, const char *mode, int family, int fds_before, bool server_first) {
  if (!server_first && !send_all(fd, "PING\n", 5, mode)) return fail_errno("send");
  unsigned char buf[65536];
  unsigned long received = 0;
  bool intact = true;
  const char *end;
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      for (ssize_t i = 0; i < n; i++) intact = intact && buf[i] == (unsigned char)((received + (size_t)i) % 256);
      received += (unsigned long)n;
    } else if (n == 0) {
      end = "eof";
      break;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN) {
      if (!wait_ready(fd, EPOLLIN, mode)) {
        end = "never readable";
        break;
      }
    } else {
      end = errno_name(errno);
      break;
    }
  }
  close(fd);
  int again = socket(family, SOCK_STREAM, 0);
  if (again >= 0) close(again);
  int fds_after = count_fds();
  add(",\"received\":%lu,\"intact\":%s,\"end\":\"%s\",\"fd\":%d,\"reused_fd\":%d,\"fds_before\":%d,"
      "\"fds_after\":%d",
      received, intact ? "true" : "false", end, fd, again, fds_before, fds_after);
  return finish(received > 0 && intact && again == fd && fds_after == fds_before, NULL);
}

/* Nothing waiting on fd right now (no byte, no EOF). */
static bool quiet(int fd) {
  char c;
  ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
  return n < 0 && errno == EAGAIN;
}

static bool read_exact(int fd, const char *want) {
  char buf[64];
  size_t have = 0, len = strlen(want);
  while (have < len) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 20000) != 1) return false;
    ssize_t n = recv(fd, buf + have, len - have, MSG_DONTWAIT);
    if (n <= 0) return false;
    have += (size_t)n;
  }
  return memcmp(buf, want, len) == 0;
}

/* --abandon[=early]: see the top of the file. */
static int abandon(const struct addrinfo *res, bool early, int repeat, int settle_ms) {
  enum { kMax = 64 };
  if (repeat < 1 || repeat > kMax) return finish(false, "--repeat: 1..64");
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in la = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t llen = sizeof la;
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&la, sizeof la) != 0 || listen(lfd, kMax) != 0 ||
      getsockname(lfd, (struct sockaddr *)&la, &llen) != 0) {
    return fail_errno("listener");
  }
  int fds_before = count_fds();
  int abandoned[kMax], fresh[kMax], accepted[kMax];
  const char *read_result = "";
  char read_buf[32];
  int reused = 0, clean = 0;
  for (int i = 0; i < repeat; i++) {
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    abandoned[i] = fd;
    if (connect(fd, res->ai_addr, res->ai_addrlen) == 0 || errno != EINPROGRESS) return fail_errno("connect");
    if (!early) {
      struct pollfd p = {fd, POLLOUT, 0};
      if (poll(&p, 1, 20000) != 1) return finish(false, "connect: never writable");
      if (connect_error(fd)) return fail_errno("connect (SO_ERROR)");
      if (send(fd, "PING\n", 5, MSG_NOSIGNAL) != 5) return fail_errno("send");
      char c;
      ssize_t n = recv(fd, &c, 1, 0);
      if (n < 0) {
        read_result = errno_name(errno);
      } else {
        snprintf(read_buf, sizeof read_buf, "%zd bytes", n);
        read_result = read_buf;
      }
    }
    if (close(fd) != 0) return fail_errno("close");
    fresh[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (fresh[i] == fd) reused++;
    if (connect(fresh[i], (struct sockaddr *)&la, sizeof la) != 0) return fail_errno("connect to our listener");
    accepted[i] = accept(lfd, NULL, NULL);
    if (accepted[i] < 0) return fail_errno("accept");
  }
  if (settle_ms > 0) usleep((useconds_t)settle_ms * 1000);
  for (int i = 0; i < repeat; i++) {
    bool ok = quiet(fresh[i]) && quiet(accepted[i]) && send(fresh[i], "fresh\n", 6, MSG_NOSIGNAL) == 6 &&
              read_exact(accepted[i], "fresh\n") && send(accepted[i], "back\n", 5, MSG_NOSIGNAL) == 5 &&
              read_exact(fresh[i], "back\n") && quiet(fresh[i]) && quiet(accepted[i]);
    if (ok) clean++;
    close(fresh[i]);
    close(accepted[i]);
  }
  int fds_after = count_fds();
  close(lfd);
  add(",\"fds\":[");
  for (int i = 0; i < repeat; i++) add("%s%d", i ? "," : "", abandoned[i]);
  add("],\"reused\":%d,\"clean\":%d,\"fds_before\":%d,\"fds_after\":%d", reused, clean, fds_before, fds_after);
  if (!early) add(",\"read\":\"%s\"", read_result);
  return finish(reused == repeat && clean == repeat && fds_after == fds_before, NULL);
}

/* fdcheck FD: the exec'd child of --fork-exec. */
static int fdcheck(int fd) {
  printf("{\"child\":true,\"pid\":%d,\"fds\":[", (int)getpid());
  DIR *d = opendir("/proc/self/fd");
  bool first = true;
  for (struct dirent *e; d && (e = readdir(d));) {
    if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d)) continue;
    printf("%s%s", first ? "" : ",", e->d_name);
    first = false;
  }
  if (d) closedir(d);
  struct stat st;
  bool is_socket = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
  char peer[INET6_ADDRSTRLEN + 8] = "";
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (is_socket && getpeername(fd, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
    snprintf(peer, sizeof peer, "%s:%d", ip, ntohs(a->sin_port));
  }
  int unread = -1;
  if (is_socket) ioctl(fd, FIONREAD, &unread);
  bool engine = false, front = false;
  FILE *maps = fopen("/proc/self/maps", "r");
  char line[1024];
  while (maps && fgets(line, sizeof line, maps)) {
    if (strstr(line, "/libawfshim-core.so")) engine = true;
    if (strstr(line, "/libawfshim.so")) front = true;
  }
  if (maps) fclose(maps);
  int threads = 0;
  bool pump = false;
  d = opendir("/proc/self/task");
  for (struct dirent *e; d && (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    threads++;
    char path[300], comm[64] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (f && fgets(comm, sizeof comm, f) && strncmp(comm, "awfshim-pump", 12) == 0) pump = true;
    if (f) fclose(f);
  }
  if (d) closedir(d);
  printf("],\"fd_is_socket\":%s,\"peer\":\"%s\",\"unread\":%d,\"front_loaded\":%s,\"engine_loaded\":%s,"
         "\"threads\":%d,\"pump\":%s}\n",
         is_socket ? "true" : "false", peer, unread, front ? "true" : "false", engine ? "true" : "false", threads,
         pump ? "true" : "false");
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "fdcheck") == 0) return fdcheck(atoi(argv[2]));
  if (argc < 4) {
    fprintf(stderr,
            "usage: %s blocking|poll|epoll HOST PORT [--server-first] [--ticks]\n"
            "          [--drain | --abandon[=early] [--repeat N] [--settle-ms MS] | --fork-exec GATE]\n"
            "       %s fdcheck FD\n",
            argv[0], argv[0]);
    return 2;
  }
  const char *mode = argv[1];
  bool server_first = false, with_ticks = false, with_drain = false, with_abandon = false, early = false;
  int repeat = 1, settle_ms = 0;
  const char *gate = NULL;
  for (int i = 4; i < argc; i++) {
    if (strcmp(argv[i], "--server-first") == 0) server_first = true;
    if (strcmp(argv[i], "--ticks") == 0) with_ticks = true;
    if (strcmp(argv[i], "--drain") == 0) with_drain = true;
    if (strcmp(argv[i], "--abandon") == 0) with_abandon = true;
    if (strcmp(argv[i], "--abandon=early") == 0) with_abandon = early = true;
    if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) repeat = atoi(argv[++i]);
    if (strcmp(argv[i], "--settle-ms") == 0 && i + 1 < argc) settle_ms = atoi(argv[++i]);
    if (strcmp(argv[i], "--fork-exec") == 0 && i + 1 < argc) gate = argv[++i];
  }
  started_ms = now_ms();
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
  int rc = getaddrinfo(argv[2], argv[3], &hints, &res);
  if (rc != 0) return finish(false, gai_strerror(rc));
  bool blocking = strcmp(mode, "blocking") == 0;
  if ((with_abandon || gate) && blocking) return finish(false, "--abandon and --fork-exec need a non-blocking MODE");
  if (with_abandon) return abandon(res, early, repeat, settle_ms);
  int fds_before = with_drain ? count_fds() : 0;
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
    if (gate) {
      fflush(stdout);
      pid_t pid = fork();
      if (pid < 0) return fail_errno("fork");
      if (pid == 0) {
        char fdarg[16];
        snprintf(fdarg, sizeof fdarg, "%d", fd);
        execl("/proc/self/exe", argv[0], "fdcheck", fdarg, (char *)NULL);
        _exit(127);
      }
      int status;
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      add(",\"fd\":%d,\"child_status\":%d", fd, WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
      int g = open(gate, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (g < 0) return fail_errno("gate");
      close(g);
    }
    if (!wait_ready(fd, EPOLLOUT, mode)) return finish(false, "connect: never writable");
    if (connect_error(fd)) return fail_errno("connect (SO_ERROR)");
  }
  int family = res->ai_family;
  freeaddrinfo(res);
  if (with_drain) return drain(fd, mode, family, fds_before, server_first);
  if (server_first && !expect(fd, "HELLO awf\n", mode)) return fail_errno("greeting");
  if (!send_all(fd, "PING\n", 5, mode)) return fail_errno("send");
  if (!expect(fd, "PING\n", mode)) return fail_errno("echo");
  close(fd);
  return finish(true, NULL);
}
