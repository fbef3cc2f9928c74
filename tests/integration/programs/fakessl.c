/* A second "OpenSSL" with its own soname and version node, like the libssl a Python wheel bundles
 * beside the system's: SSL_* return values the real library never would, so a test can tell which
 * copy a call reached. */
#include <stddef.h>

int fakessl_freed;

int SSL_write(void *ssl, const void *buf, int num) { return ssl && buf && num ? 2222 : -1; }
int SSL_read(void *ssl, void *buf, int num) { return ssl && buf && num ? 3333 : -1; }
int SSL_write_ex(void *ssl, const void *buf, size_t num, size_t *written) {
  if (!ssl || !buf || !written) return 0;
  *written = num + 4444;
  return 1;
}
int SSL_read_ex(void *ssl, void *buf, size_t num, size_t *readbytes) {
  if (!ssl || !buf || !readbytes) return 0;
  *readbytes = num + 5555;
  return 1;
}
void SSL_free(void *ssl) { fakessl_freed += ssl != NULL; }
