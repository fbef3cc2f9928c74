/* Cost of hooked calls on fds the shim does not follow, in the process it runs in: run it with
 * and without the front preloaded and compare. With AWF_SHIM=1 it first looks up a name, so the
 * engine is loaded and every fd hook goes through its slot check.
 *
 *   hook_cost ROUNDS
 *
 * Prints, as the best of ROUNDS, ns per write+read pair on a socketpair and µs per unrouted
 * loopback connect (connect + accept + two closes). */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 20;
  struct addrinfo *res;
  if (getaddrinfo("localhost", "80", NULL, &res) == 0) freeaddrinfo(res);

  int sv[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  char byte = 'x';
  enum { kPairs = 200000, kConnects = 2000 };
  double best_io = 1e18, best_connect = 1e18;

  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  bind(listener, (struct sockaddr *)&addr, sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(listener, (struct sockaddr *)&addr, &len);
  listen(listener, 64);

  for (int r = 0; r < rounds; r++) {
    double start = now_ns();
    for (int i = 0; i < kPairs; i++) {
      if (write(sv[0], &byte, 1) != 1 || read(sv[1], &byte, 1) != 1) return 1;
    }
    double io = (now_ns() - start) / kPairs;
    if (io < best_io) best_io = io;

    start = now_ns();
    for (int i = 0; i < kConnects; i++) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) return 1;
      int peer = accept(listener, NULL, NULL);
      close(peer);
      close(fd);
    }
    double c = (now_ns() - start) / kConnects / 1000.0;
    if (c < best_connect) best_connect = c;
  }
  printf("%.1f %.2f\n", best_io, best_connect);
  return 0;
}
