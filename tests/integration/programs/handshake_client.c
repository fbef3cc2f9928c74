/* A client that does, while the shim's CONNECT handshake is in progress, what applications do
 * while a kernel connect is: take signals, jump out, close from another thread, give up after
 * SO_SNDTIMEO, half-close; and one that runs where the shim cannot start its pump thread.
 *
 *   handshake_client MODE HOST PORT [--gate PATH] [--restart] [--sndtimeo-ms MS] [--deny WHAT]
 *
 * Resolves HOST with getaddrinfo (IPv4) and connects a TCP socket to it. Prints one JSON line.
 * "ms" fields count from just before the first connect(). --gate PATH: the fixture proxy holds
 * its reply to CONNECT until the file PATH exists (gate=PATH); the program creates it where a
 * MODE says so. An exchange ("echo") writes "PING\n" and expects it back (an echo upstream).
 *
 * interrupt: a SIGALRM handler (installed without SA_RESTART, or with it: --restart) fires 1 s
 *   into a blocking connect. Without --restart: reports the connect ("first", "first_ms"), opens
 *   the gate, connects again ("again": the handshake went on) and once more ("third"), then the
 *   exchange ("echo"). With --restart the handler itself opens the gate, and the one connect
 *   must succeed (the kernel restarts a connect after such a handler).
 * longjmp: the SIGALRM handler siglongjmp()s out of a blocking connect 1 s in; then close() on
 *   the fd ("close", "close_ms": a held lock would hang here), and a non-blocking connect of a
 *   fresh socket to HOST ("after": EINPROGRESS when the shim still routes it).
 * close-thread: another thread closes the fd 1 s into a blocking connect ("close", "close_ms");
 *   the connect's own result ("connect", "connect_ms").
 * sndtimeo: SO_SNDTIMEO of --sndtimeo-ms on the socket; a blocking connect ("first",
 *   "first_ms") and a second one ("again", "again_ms").
 * no-pump: first installs a seccomp filter that refuses what the shim's pump needs — --deny
 *   threads (clone3 ENOSYS, clone with CLONE_THREAD EAGAIN) or --deny epoll (epoll_create*
 *   EMFILE) — then drives a non-blocking connect the way event loops do: poll for POLLOUT,
 *   SO_ERROR, write "PING\n", poll for POLLIN, read; each poll gives up after 30 s. Reports
 *   "connect", then "failed" (the errno name) with "at" (connect, so_error, write, read), or
 *   "received" (the bytes read), or "stalled" (a poll gave up: nothing ever woke it); "ms".
 * shutdown: a non-blocking connect; once writable with SO_ERROR 0, writes "PING\n", then
 *   shutdown(SHUT_WR) ("shutdown") and a send() after it ("send_after"); opens the gate, then
 *   reads until the end of the stream ("received", "end": "eof" or the errno name). */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double started_ms;
static const char *gate;
static struct sockaddr_storage target;
static socklen_t target_len;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double since_start(void) { return now_ms() - started_ms; }

static const char *result(int rc, int err) {
  if (rc == 0) return "ok";
  const char *name = strerrorname_np(err);
  return name ? name : "?";
}

static void die(const char *what) {
  printf("{\"error\":\"%s: %s\"}\n", what, strerror(errno));
  exit(2);
}

/* Progress on stderr, so that the test can say where a hang happened. */
static void step(const char *what) { fprintf(stderr, "%.0f ms: %s\n", since_start(), what); }

static void open_gate(void) {
  if (!gate) return;
  int fd = open(gate, O_WRONLY | O_CREAT | O_CLOEXEC, 0644); /* async-signal-safe */
  if (fd >= 0) close(fd);
}

static int new_socket(bool nonblocking) {
  int fd = socket(target.ss_family, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) die("socket");
  return fd;
}

static int connect_target(int fd) { return connect(fd, (struct sockaddr *)&target, target_len); }

static bool wait_for(int fd, short events) {
  struct pollfd p = {fd, events, 0};
  int n;
  do {
    n = poll(&p, 1, 30000);
  } while (n < 0 && errno == EINTR);
  return n > 0;
}

/* Blocking exchange on a connected fd. */
static bool echo(int fd) {
  if (write(fd, "PING\n", 5) != 5) return false;
  char buf[16];
  size_t got = 0;
  while (got < 5) {
    ssize_t n = read(fd, buf + got, sizeof buf - got);
    if (n <= 0) return false;
    got += (size_t)n;
  }
  return got == 5 && memcmp(buf, "PING\n", 5) == 0;
}

static void on_alarm(int sig) { (void)sig; }
static void on_alarm_open_gate(int sig) {
  (void)sig;
  open_gate();
}

static void install(int sig, void (*handler)(int), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, NULL) != 0) die("sigaction");
}

static int mode_interrupt(bool restart) {
  install(SIGALRM, restart ? on_alarm_open_gate : on_alarm, restart ? SA_RESTART : 0);
  int fd = new_socket(false);
  alarm(1);
  int rc = connect_target(fd);
  int err = errno;
  double first_ms = since_start();
  step("first connect returned");
  alarm(0);
  printf("{\"first\":\"%s\",\"first_ms\":%.0f", result(rc, err), first_ms);
  if (rc != 0 && err == EINTR) {
    open_gate();
    rc = connect_target(fd);
    err = errno;
    printf(",\"again\":\"%s\"", result(rc, err));
    rc = connect_target(fd);
    printf(",\"third\":\"%s\"", result(rc, errno));
    rc = 0;
  }
  printf(",\"echo\":%s}\n", rc == 0 && echo(fd) ? "true" : "false");
  return 0;
}

static sigjmp_buf jump;
static void on_alarm_jump(int sig) {
  (void)sig;
  siglongjmp(jump, 1);
}

static int mode_longjmp(void) {
  install(SIGALRM, on_alarm_jump, 0);
  int fd = new_socket(false);
  if (sigsetjmp(jump, 1) == 0) {
    alarm(1);
    int rc = connect_target(fd);
    printf("{\"jumped\":false,\"connect\":\"%s\"}\n", result(rc, errno));
    return 1;
  }
  step("jumped out of connect; closing");
  double t = now_ms();
  int rc = close(fd);
  double close_ms = now_ms() - t;
  step("closed");
  int again = new_socket(true);
  int rc2 = connect_target(again);
  printf("{\"jumped\":true,\"close\":\"%s\",\"close_ms\":%.0f,\"after\":\"%s\"}\n", result(rc, errno), close_ms,
         result(rc2, errno));
  return 0;
}

struct closer {
  int fd;
  int rc, err;
  double ms;
};

static void *close_later(void *arg) {
  struct closer *c = arg;
  usleep(1000 * 1000);
  step("closing from another thread");
  double t = now_ms();
  c->rc = close(c->fd);
  c->err = errno;
  c->ms = now_ms() - t;
  step("closed");
  return NULL;
}

static int mode_close_thread(void) {
  struct closer c = {new_socket(false), 0, 0, 0};
  pthread_t thread;
  if (pthread_create(&thread, NULL, close_later, &c) != 0) die("pthread_create");
  int rc = connect_target(c.fd);
  int err = errno;
  double connect_ms = since_start();
  step("connect returned");
  pthread_join(thread, NULL);
  printf("{\"connect\":\"%s\",\"connect_ms\":%.0f,\"close\":\"%s\",\"close_ms\":%.0f}\n", result(rc, err), connect_ms,
         result(c.rc, c.err), c.ms);
  return 0;
}

static int mode_sndtimeo(long ms) {
  int fd = new_socket(false);
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) die("setsockopt");
  int rc = connect_target(fd);
  int err = errno;
  double first_ms = since_start();
  double t = now_ms();
  int rc2 = connect_target(fd);
  int err2 = errno;
  printf("{\"first\":\"%s\",\"first_ms\":%.0f,\"again\":\"%s\",\"again_ms\":%.0f}\n", result(rc, err), first_ms,
         result(rc2, err2), now_ms() - t);
  return 0;
}

/* What a process that cannot make threads (seccomp, RLIMIT_NPROC) or epoll instances sees. */
static void deny(const char *what) {
#if defined(__x86_64__)
  const unsigned arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  const unsigned arch = AUDIT_ARCH_AARCH64;
#else
#error "handshake_client: unsupported architecture"
#endif
  struct sock_filter threads[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS), /* glibc falls back to clone */
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])), /* flags, low half */
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAGAIN),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_filter epoll[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_epoll_create1, 1, 0),
#ifdef __NR_epoll_create
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_epoll_create, 0, 1),
#else
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_epoll_create1, 0, 1),
#endif
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EMFILE),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  bool t = strcmp(what, "threads") == 0;
  if (!t && strcmp(what, "epoll") != 0) {
    fprintf(stderr, "--deny threads|epoll\n");
    exit(2);
  }
  struct sock_fprog prog = {t ? sizeof threads / sizeof threads[0] : sizeof epoll / sizeof epoll[0],
                            t ? threads : epoll};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("PR_SET_NO_NEW_PRIVS");
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) die("seccomp");
}

static int mode_no_pump(int fd) {
  double t = now_ms();
  const char *at = "connect";
  int rc = connect_target(fd);
  int err = errno;
  printf("{\"connect\":\"%s\"", result(rc, err));
  if (rc < 0 && err != EINPROGRESS) goto failed;
  if (!wait_for(fd, POLLOUT)) goto stalled;
  at = "so_error";
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err) goto failed;
  at = "write";
  if (write(fd, "PING\n", 5) != 5) {
    err = errno;
    goto failed;
  }
  if (!wait_for(fd, POLLIN)) goto stalled;
  at = "read";
  char buf[64];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n < 0) {
    err = errno;
    goto failed;
  }
  printf(",\"received\":\"%.*s\",\"ms\":%.0f}\n", (int)(n > 0 && buf[n - 1] == '\n' ? n - 1 : n), buf, now_ms() - t);
  return 0;
failed:
  printf(",\"failed\":\"%s\",\"at\":\"%s\",\"ms\":%.0f}\n", result(-1, err), at, now_ms() - t);
  return 0;
stalled:
  printf(",\"stalled\":true,\"ms\":%.0f}\n", now_ms() - t);
  return 0;
}

static int mode_shutdown(void) {
  int fd = new_socket(true);
  int rc = connect_target(fd);
  if (rc < 0 && errno != EINPROGRESS) die("connect");
  if (!wait_for(fd, POLLOUT)) die("poll");
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) die("SO_ERROR");
  if (write(fd, "PING\n", 5) != 5) die("write");
  rc = shutdown(fd, SHUT_WR);
  printf("{\"shutdown\":\"%s\"", result(rc, errno));
  rc = (int)send(fd, "late\n", 5, MSG_NOSIGNAL);
  printf(",\"send_after\":\"%s\"", rc == 5 ? "sent" : result(-1, errno));
  open_gate();
  char buf[64];
  size_t got = 0;
  const char *end = "eof";
  for (;;) {
    if (!wait_for(fd, POLLIN)) {
      end = "stalled";
      break;
    }
    ssize_t n = read(fd, buf + got, sizeof buf - got);
    if (n == 0) break;
    if (n < 0 && errno == EAGAIN) continue;
    if (n < 0) {
      end = result(-1, errno);
      break;
    }
    got += (size_t)n;
    if (got == sizeof buf) break;
  }
  printf(",\"received\":\"%.*s\",\"end\":\"%s\"}\n", (int)(got > 0 && buf[got - 1] == '\n' ? got - 1 : got), buf,
         end);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: handshake_client MODE HOST PORT [--gate PATH] [--restart] [--sndtimeo-ms MS] "
                    "[--deny WHAT]\n");
    return 2;
  }
  const char *mode = argv[1], *denied = NULL;
  bool restart = false;
  long sndtimeo_ms = 500;
  for (int i = 4; i < argc; i++) {
    if (strcmp(argv[i], "--gate") == 0 && i + 1 < argc) {
      gate = argv[++i];
    } else if (strcmp(argv[i], "--restart") == 0) {
      restart = true;
    } else if (strcmp(argv[i], "--sndtimeo-ms") == 0 && i + 1 < argc) {
      sndtimeo_ms = atol(argv[++i]);
    } else if (strcmp(argv[i], "--deny") == 0 && i + 1 < argc) {
      denied = argv[++i];
    } else {
      fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (denied) deny(denied);
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
  int rc = getaddrinfo(argv[2], argv[3], &hints, &res);
  if (rc != 0) {
    printf("{\"error\":\"getaddrinfo: %s\"}\n", gai_strerror(rc));
    return 2;
  }
  memcpy(&target, res->ai_addr, res->ai_addrlen);
  target_len = res->ai_addrlen;
  freeaddrinfo(res);
  started_ms = now_ms();
  if (strcmp(mode, "interrupt") == 0) return mode_interrupt(restart);
  if (strcmp(mode, "longjmp") == 0) return mode_longjmp();
  if (strcmp(mode, "close-thread") == 0) return mode_close_thread();
  if (strcmp(mode, "sndtimeo") == 0) return mode_sndtimeo(sndtimeo_ms);
  if (strcmp(mode, "no-pump") == 0) return mode_no_pump(new_socket(true));
  if (strcmp(mode, "shutdown") == 0) return mode_shutdown();
  fprintf(stderr, "unknown mode %s\n", mode);
  return 2;
}
