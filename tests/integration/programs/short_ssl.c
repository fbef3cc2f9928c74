/* An executable that defines and exports OpenSSL's entry points itself, as Node.js does, but whose
 * SSL_write is too short to patch (x86-64: 3 bytes, `xor eax, eax; ret`; aarch64: 4, a lone `ret`,
 * which no entry patch can replace). The TLS tap must refuse the whole patch — SSL_read and
 * SSL_free stay untouched too — say why in the trace, and leave the program working.
 * Prints SSL_write's result, whether SSL_read's entry still holds its own code, and a lookup. */
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "entry_jumps.h"

#define EXPORT __attribute__((visibility("default"), used))

#define UNUSED __attribute__((unused))
#if defined(__x86_64__)
EXPORT __attribute__((naked)) int SSL_write(UNUSED void *ssl, UNUSED const void *buf, UNUSED int num) {
  __asm__("xor %eax, %eax\n\tret\n");
}
#elif defined(__aarch64__)
/* Returns its first argument (NULL below: 0). At file scope: GCC has no naked functions here. */
EXPORT int SSL_write(void *ssl, const void *buf, int num);
__asm__(".text\n.globl SSL_write\n.type SSL_write, %function\nSSL_write:\n\tret\n.size SSL_write, .-SSL_write\n");
#else
#error "short_ssl: unsupported architecture"
#endif

static volatile int sink;

EXPORT __attribute__((noinline)) int SSL_read(void *ssl, UNUSED void *buf, int num) {
  sink += num;
  return ssl ? num : -1;
}

EXPORT __attribute__((noinline)) void SSL_free(void *ssl) { sink += ssl != NULL; }

int main(void) {
  int patched = entry_jumps((const void *)&SSL_read);
  struct addrinfo *ai = NULL;
  int rc = getaddrinfo("localhost", "80", NULL, &ai);
  if (ai) freeaddrinfo(ai);
  printf("SSL_write=%d SSL_read-entry=%s lookup=%d\n", SSL_write(NULL, "x", 1), patched ? "jmp" : "own", rc);
  SSL_free(NULL);
  return 0;
}
