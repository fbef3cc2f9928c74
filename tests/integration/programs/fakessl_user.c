/* A module linked against libfakessl, loaded RTLD_LOCAL by two_openssl as Python loads a wheel's
 * extension: its SSL_* calls must reach libfakessl, never the system's libssl. */
#include <stddef.h>
#include <stdio.h>

int SSL_write(void *ssl, const void *buf, int num);
int SSL_read(void *ssl, void *buf, int num);
int SSL_write_ex(void *ssl, const void *buf, size_t num, size_t *written);
int SSL_read_ex(void *ssl, void *buf, size_t num, size_t *readbytes);
void SSL_free(void *ssl);
extern int fakessl_freed;

/* Calls each function on a fake SSL object; prints what came back. */
void fakessl_user_run(void) {
  char object[64] = {0}, buf[16] = "x";
  size_t written = 0, readbytes = 0;
  int w = SSL_write(object, buf, 1), r = SSL_read(object, buf, 1);
  int wx = SSL_write_ex(object, buf, 1, &written), rx = SSL_read_ex(object, buf, 1, &readbytes);
  SSL_free(object);
  printf("write=%d read=%d write_ex=%d/%zu read_ex=%d/%zu freed=%d\n", w, r, wx, written, rx, readbytes, fakessl_freed);
}
