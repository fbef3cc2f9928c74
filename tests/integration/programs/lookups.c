/* Makes trace events without writing anything itself: N name lookups of NAME.
 *   lookups NAME N   exits 0 after the last one (stdout/stderr untouched). */
#include <netdb.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  for (long i = atol(argv[2]); i > 0; i--) {
    struct addrinfo *res = NULL;
    if (getaddrinfo(argv[1], "443", NULL, &res) == 0) freeaddrinfo(res);
  }
  return 0;
}
