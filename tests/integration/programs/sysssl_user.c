/* A module linked against the system's libssl, loaded RTLD_LOCAL by two_openssl as Python loads
 * its _ssl: its SSL_* calls must reach the system's copy. */
#include <openssl/ssl.h>
#include <stdio.h>

/* Writes on an SSL that has not shaken hands: the real library refuses (<= 0), and frees it. */
void sysssl_user_run(void) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  SSL *ssl = ctx ? SSL_new(ctx) : NULL;
  char byte = 0;
  int n = ssl ? SSL_write(ssl, &byte, 1) : 1;
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  printf("system %s\n", n <= 0 ? "ok" : "wrong");
}
