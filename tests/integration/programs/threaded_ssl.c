/* One SSL* used by two threads at once, as some clients do: a reader thread sits in SSL_read while
 * the main thread writes requests with SSL_write. A filter BIO under the writes holds each
 * SSL_write back for 300 ms after its bytes are out, so every response is read before the write
 * that asked for it returns: the order the TLS tap must still pair.
 *
 *   threaded_ssl HOST PORT PATH...
 *
 * Connects to HOST:PORT (getaddrinfo, IPv4), TLS 1.2 (no session ticket arrives after the
 * handshake for the reader to meet) with SNI HOST and no certificate check; then one GET per PATH
 * on the connection, each once the previous response has been read whole (the test upstream's
 * JSON bodies end with "}\n"), the last with "Connection: close". Prints {"fd":N,"responses":N}. */
#include <netdb.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static SSL *g_ssl;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_responses; /* read whole so far */
static bool g_ended;    /* the reader met the end of the connection */

static int slow_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static int slow_write(BIO *b, const char *data, int len) {
  int n = BIO_write(BIO_next(b), data, len);
  BIO_clear_retry_flags(b);
  BIO_copy_next_retry(b);
  usleep(300 * 1000);
  return n;
}

static long slow_ctrl(BIO *b, int cmd, long num, void *ptr) { return BIO_ctrl(BIO_next(b), cmd, num, ptr); }

static void *reader(void *arg) {
  (void)arg;
  char buf[4096], prev = 0;
  int n;
  while ((n = SSL_read(g_ssl, buf, sizeof buf)) > 0) {
    for (int i = 0; i < n; prev = buf[i++]) {
      if (prev == '}' && buf[i] == '\n') {
        pthread_mutex_lock(&g_mu);
        g_responses++;
        pthread_cond_broadcast(&g_cv);
        pthread_mutex_unlock(&g_mu);
      }
    }
  }
  pthread_mutex_lock(&g_mu);
  g_ended = true;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
  return NULL;
}

static int fail(const char *what) {
  fprintf(stderr, "threaded_ssl: %s\n", what);
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 4) return fail("usage: threaded_ssl HOST PORT PATH...");
  const char *host = argv[1];
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
  if (getaddrinfo(host, argv[2], &hints, &ai) != 0) return fail("getaddrinfo");
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) return fail("connect");
  freeaddrinfo(ai);

  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
  g_ssl = SSL_new(ctx);
  SSL_set_tlsext_host_name(g_ssl, host);
  SSL_set_fd(g_ssl, fd);
  if (SSL_connect(g_ssl) != 1) return fail("SSL_connect");
  /* Only now the slow writes: the handshake goes at full speed. */
  BIO_METHOD *slow = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_FILTER, "slow writes");
  BIO_meth_set_create(slow, slow_create);
  BIO_meth_set_write(slow, slow_write);
  BIO_meth_set_ctrl(slow, slow_ctrl);
  SSL_set0_wbio(g_ssl, BIO_push(BIO_new(slow), BIO_new_socket(fd, BIO_NOCLOSE)));

  pthread_t t;
  pthread_create(&t, NULL, reader, NULL);
  int paths = argc - 3;
  for (int i = 0; i < paths; i++) {
    char request[1024];
    int len = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", argv[3 + i], host,
                       i == paths - 1 ? "Connection: close\r\n" : "");
    if (SSL_write(g_ssl, request, len) != len) return fail("SSL_write");
    pthread_mutex_lock(&g_mu);
    while (g_responses <= i && !g_ended) pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
  }
  pthread_join(t, NULL);
  printf("{\"fd\":%d,\"responses\":%d}\n", fd, g_responses);
  SSL_free(g_ssl);
  SSL_CTX_free(ctx);
  BIO_meth_free(slow);
  close(fd);
  return 0;
}
