/* An executable that defines and exports OpenSSL's entry points itself, as Node.js does, but whose
 * SSL_write is too short to patch (3 bytes). The TLS tap must refuse the whole patch — SSL_read and
 * SSL_free stay untouched too — say why in the trace, and leave the program working.
 * Prints SSL_write's result, whether SSL_read's entry still holds its own code, and a lookup. */
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default"), used))

#define UNUSED __attribute__((unused))
EXPORT __attribute__((naked)) int SSL_write(UNUSED void *ssl, UNUSED const void *buf, UNUSED int num) {
  __asm__("xor %eax, %eax\n\tret\n");
}

static volatile int sink;

EXPORT __attribute__((noinline)) int SSL_read(void *ssl, UNUSED void *buf, int num) {
  sink += num;
  return ssl ? num : -1;
}

EXPORT __attribute__((noinline)) void SSL_free(void *ssl) { sink += ssl != NULL; }

int main(void) {
  unsigned char first;
  memcpy(&first, (const void *)&SSL_read, 1);
  struct addrinfo *ai = NULL;
  int rc = getaddrinfo("localhost", "80", NULL, &ai);
  if (ai) freeaddrinfo(ai);
  printf("SSL_write=%d SSL_read-entry=%s lookup=%d\n", SSL_write(NULL, "x", 1), first == 0xe9 ? "jmp" : "own", rc);
  SSL_free(NULL);
  return 0;
}
