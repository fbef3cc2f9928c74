/* The cost of patched SSL calls: an executable built like Node.js — OpenSSL linked in statically
 * and exported (-rdynamic) — so the shim patches its entries instead of interposing symbols. A
 * client and a server SSL talk through memory BIOs (as Node's do); each iteration is one HTTP/1.1
 * exchange: the client's SSL_write of a request, the server's SSL_read and SSL_write of a
 * response, the client's SSL_read. With the tap on, the client's tracker completes one exchange
 * (one `http` event written to the trace) per iteration. Prints the best of several rounds in ns
 * per exchange.
 *
 *   ssl_write_bench ROUNDS EXCHANGES   (run with the tap off and on; compare the two)
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void die(const char *what) {
  fprintf(stderr, "ssl_write_bench: %s\n", what);
  ERR_print_errors_fp(stderr);
  exit(1);
}

/* A throwaway self-signed certificate; the client does not verify it. */
static void make_identity(EVP_PKEY **key, X509 **cert) {
  *key = EVP_EC_gen("P-256");
  *cert = X509_new();
  if (!*key || !*cert) die("key generation failed");
  X509_gmtime_adj(X509_getm_notBefore(*cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(*cert), 3600);
  X509_set_pubkey(*cert, *key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(*cert), "CN", MBSTRING_ASC, (const unsigned char *)"bench", -1, -1, 0);
  X509_set_issuer_name(*cert, X509_get_subject_name(*cert));
  if (!X509_sign(*cert, *key, EVP_sha256())) die("signing failed");
}

/* Moves pending ciphertext from one side's write BIO to the other's read BIO. */
static void shuttle(BIO *from, BIO *to) {
  char buf[16384];
  int n;
  while ((n = BIO_read(from, buf, sizeof buf)) > 0) BIO_write(to, buf, n);
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 5, exchanges = argc > 2 ? atoi(argv[2]) : 100000;
  EVP_PKEY *key;
  X509 *cert;
  make_identity(&key, &cert);
  SSL_CTX *server_ctx = SSL_CTX_new(TLS_server_method()), *client_ctx = SSL_CTX_new(TLS_client_method());
  if (!SSL_CTX_use_certificate(server_ctx, cert) || !SSL_CTX_use_PrivateKey(server_ctx, key)) die("bad identity");
  SSL *server = SSL_new(server_ctx), *client = SSL_new(client_ctx);
  BIO *c_in = BIO_new(BIO_s_mem()), *c_out = BIO_new(BIO_s_mem());
  BIO *s_in = BIO_new(BIO_s_mem()), *s_out = BIO_new(BIO_s_mem());
  SSL_set_bio(client, c_in, c_out);
  SSL_set_bio(server, s_in, s_out);
  SSL_set_connect_state(client);
  SSL_set_accept_state(server);
  SSL_set_tlsext_host_name(client, "bench.example");
  for (int i = 0; i < 100 && !(SSL_is_init_finished(client) && SSL_is_init_finished(server)); i++) {
    SSL_do_handshake(client);
    shuttle(c_out, s_in);
    SSL_do_handshake(server);
    shuttle(s_out, c_in);
  }
  if (!SSL_is_init_finished(client) || !SSL_is_init_finished(server)) die("handshake did not finish");

  /* One keep-alive connection's worth of small exchanges, as the tap sees them. */
  static const char request[] = "GET /bench HTTP/1.1\r\nHost: bench.example\r\n\r\n";
  static const char response[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
  char sink[4096];
  double best = 1e30;
  for (int r = 0; r < rounds; r++) {
    double start = now_ns();
    for (int i = 0; i < exchanges; i++) {
      if (SSL_write(client, request, sizeof request - 1) != (int)sizeof request - 1) die("SSL_write failed");
      shuttle(c_out, s_in);
      if (SSL_read(server, sink, sizeof sink) != (int)sizeof request - 1) die("SSL_read (server) failed");
      if (SSL_write(server, response, sizeof response - 1) != (int)sizeof response - 1) die("SSL_write (server) failed");
      shuttle(s_out, c_in);
      if (SSL_read(client, sink, sizeof sink) != (int)sizeof response - 1) die("SSL_read (client) failed");
    }
    double per_exchange = (now_ns() - start) / exchanges;
    if (per_exchange < best) best = per_exchange;
  }
  printf("%.1f\n", best);
  SSL_free(client);
  SSL_free(server);
  SSL_CTX_free(client_ctx);
  SSL_CTX_free(server_ctx);
  X509_free(cert);
  EVP_PKEY_free(key);
  return 0;
}
