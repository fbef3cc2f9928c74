/* Starts, looks up one name, exits: process start plus the first name lookup, which is where an
 * active shim loads its engine. The name comes from AWF_BENCH_NAME (default "localhost") so that
 * spawn_bench can give each configuration its own. Exits 0 whether or not the name resolves. */
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  const char *name = getenv("AWF_BENCH_NAME");
  struct addrinfo hints, *res;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(name && *name ? name : "localhost", "443", &hints, &res) == 0) freeaddrinfo(res);
  return 0;
}
