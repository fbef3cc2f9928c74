/* The front without its engine. An active process whose engine cannot be loaded (missing,
 * truncated, another architecture or ABI, a library it needs absent) does not know the routes, so
 * anything could be one: it connects TCP sockets only to loopback and to the proxy — never a
 * routed host directly — and says so on stderr (the front) and in the trace (here). */
#include "fail_closed.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* One JSON string: quotes, backslashes and control characters escaped; cut to fit. */
static size_t json_string(char *out, size_t cap, const char *text) {
  static const char hex[] = "0123456789abcdef";
  size_t n = 0;
  out[n++] = '"';
  for (const unsigned char *p = (const unsigned char *)text; *p && n + 8 < cap; p++) {
    if (*p == '"' || *p == '\\') {
      out[n++] = '\\';
      out[n++] = (char)*p;
    } else if (*p < 0x20) {
      memcpy(out + n, "\\u00", 4);
      out[n + 4] = hex[*p >> 4];
      out[n + 5] = hex[*p & 15];
      n += 6;
    } else {
      out[n++] = (char)*p;
    }
  }
  out[n++] = '"';
  return n;
}

/* Opens the trace file for appending as the engine's sink does: through no symbolic link in any
 * component (each directory is opened with O_NOFOLLOW), never blocking on a FIFO, only a regular
 * file. -1 if it cannot. */
static int open_trace_file(char *path) {
  int dir = path[0] == '/' ? open("/", O_PATH | O_DIRECTORY | O_CLOEXEC) : AT_FDCWD;
  char *part = path, *slash;
  while ((slash = strchr(part, '/'))) {
    *slash = '\0';
    int next = *part ? openat(dir, part, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : dup(dir);
    if (dir != AT_FDCWD) close(dir);
    if (next < 0) return -1;
    dir = next;
    part = slash + 1;
  }
  int fd = openat(dir, part, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0600);
  if (dir != AT_FDCWD) close(dir);
  struct stat st;
  if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
    close(fd);
    fd = -1;
  }
  return fd;
}

/* The trace's `error` event for a failed load, written by the front (the engine that would write
 * it is what failed): same file rules as the engine's sink — O_APPEND, O_NOFOLLOW, 0600, one write. */
void awf_trace_load_failure(const struct awf_functions *real, char *const *env, const char *what, const char *detail) {
  const char *target = awf_env_lookup(env, "AWF_SHIM_TRACE");
  if (!target || !*target || !real->write) return;
  char path[4096], message[1024], line[4096];
  size_t n = 0;
  for (const char *p = target; *p && n + 24 < sizeof path; p++) {
    if (p[0] == '%' && p[1] == 'p') {
      n += (size_t)snprintf(path + n, sizeof path - n, "%d", (int)getpid());
      p++;
    } else {
      path[n++] = *p;
    }
  }
  path[n] = '\0';
  int fd = strcmp(path, "stderr") == 0 ? 2 : open_trace_file(path);
  if (fd < 0) return;
  struct timespec now;
  struct tm utc;
  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &utc);
  snprintf(message, sizeof message, "%s%s", what, detail ? detail : "");
  n = (size_t)snprintf(line, sizeof line, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\",\"pid\":%d,\"tid\":%d,\"exe\":",
                       utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                       now.tv_nsec / 1000, (int)getpid(), (int)gettid());
  n += json_string(line + n, sizeof line - n - 200, program_invocation_short_name);
  n += (size_t)snprintf(line + n, sizeof line - n, ",\"ev\":\"error\",\"where\":\"engine\",\"message\":");
  n += json_string(line + n, sizeof line - n - 120, message);
  n += (size_t)snprintf(line + n, sizeof line - n,
                        ",\"effect\":\"TCP connections other than to loopback and the proxy are refused\"}\n");
  (void)!real->write(fd, line, n);
  if (fd != 2) real->close(fd);
}

/* Where the proxy is, from the first of the variables the engine would read (AWF_SHIM_CONFIG's
 * `proxy` needs the engine's JSON parser: with only that set, nothing but loopback is allowed). */
static const struct awf_functions *g_real;

#define AWF_MAX_PROXY_ADDRS 8
static struct sockaddr_storage g_proxy_addrs[AWF_MAX_PROXY_ADDRS];
static size_t g_proxy_addr_count;

static void resolve_proxy(char *const *env) {
  static const char *const vars[] = {"AWF_SHIM_PROXY", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"};
  const char *url = NULL;
  for (size_t i = 0; i < sizeof vars / sizeof vars[0] && !(url && *url); i++) url = awf_env_lookup(env, vars[i]);
  if (!url || !*url) return;
  const char *p = strstr(url, "://");
  p = p ? p + 3 : url;
  const char *end = p + strcspn(p, "/?#");
  for (const char *at = p; at < end; at++)
    if (*at == '@') p = at + 1; /* credentials end at the last '@' of the authority */
  char host[256], port[8] = "80";
  const char *host_end;
  if (*p == '[') {
    host_end = memchr(p, ']', (size_t)(end - p));
    if (!host_end) return;
    p++;
  } else {
    host_end = memchr(p, ':', (size_t)(end - p));
    if (!host_end) host_end = end;
  }
  if ((size_t)(host_end - p) >= sizeof host) return;
  memcpy(host, p, (size_t)(host_end - p));
  host[host_end - p] = '\0';
  const char *colon = memchr(host_end, ':', (size_t)(end - host_end));
  if (colon && (size_t)(end - colon - 1) < sizeof port) {
    memcpy(port, colon + 1, (size_t)(end - colon - 1));
    port[end - colon - 1] = '\0';
  }
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
  if (g_real->getaddrinfo(host, port, &hints, &res) != 0) return;
  for (struct addrinfo *a = res; a && g_proxy_addr_count < AWF_MAX_PROXY_ADDRS; a = a->ai_next)
    if (a->ai_addrlen <= sizeof g_proxy_addrs[0]) memcpy(&g_proxy_addrs[g_proxy_addr_count++], a->ai_addr, a->ai_addrlen);
  freeaddrinfo(res);
}

static bool same_endpoint(const struct sockaddr *a, const struct sockaddr_storage *b) {
  if (a->sa_family != b->ss_family) return false;
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
  return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

/* Without the engine: may this socket connect to addr? Datagram sockets (DNS) and loopback yes,
 * the proxy yes, anything else no — it could be a routed host. */
static bool allowed_without_engine(int fd, const struct sockaddr *addr, socklen_t len) {
  int type = 0;
  socklen_t type_len = sizeof type;
  if (g_real->getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) == 0 && type != SOCK_STREAM) return true;
  if (addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *in = (const void *)addr;
    if ((ntohl(in->sin_addr.s_addr) >> 24) == 127) return true;
  } else if (addr->sa_family == AF_INET6 && len >= offsetof(struct sockaddr_in6, sin6_scope_id)) {
    const struct sockaddr_in6 *in6 = (const void *)addr;
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127) return true;
  } else {
    return false; /* too short to say where it goes */
  }
  for (size_t i = 0; i < g_proxy_addr_count; i++)
    if (same_endpoint(addr, &g_proxy_addrs[i])) return true;
  return false;
}

static int closed_connect(int fd, const struct sockaddr *addr, socklen_t len) {
  if (allowed_without_engine(fd, addr, len)) return g_real->connect(fd, addr, len);
  errno = ECONNREFUSED;
  return -1;
}

static ssize_t closed_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr, socklen_t len) {
  if (allowed_without_engine(fd, addr, len)) return g_real->sendto(fd, buf, n, flags, addr, len);
  errno = ECONNREFUSED;
  return -1;
}

static ssize_t closed_sendmsg(int fd, const struct msghdr *msg, int flags) {
  if (allowed_without_engine(fd, msg->msg_name, msg->msg_namelen)) return g_real->sendmsg(fd, msg, flags);
  errno = ECONNREFUSED;
  return -1;
}

static int closed_sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags) {
  for (unsigned int i = 0; i < vlen; i++) {
    const struct msghdr *m = &vec[i].msg_hdr;
    if (m->msg_name && !allowed_without_engine(fd, m->msg_name, m->msg_namelen)) {
      errno = ECONNREFUSED;
      return -1;
    }
  }
  return g_real->sendmmsg(fd, vec, vlen, flags);
}

/* Stands in for the engine when it cannot be loaded: every hook forwards, but for the connects
 * (connect, and sendto/sendmsg with MSG_FASTOPEN) that fail closed. It tracks no fd and taps
 * nothing, so the other hooks never reach it but for name lookups. */
static struct awf_engine g_fail_closed;

const struct awf_engine *awf_fail_closed_engine(const struct awf_functions *real, char *const *env) {
  g_real = real;
  resolve_proxy(env);
  g_fail_closed.hooks = *real;
  g_fail_closed.hooks.connect = closed_connect;
  g_fail_closed.hooks.sendto = closed_sendto;
  g_fail_closed.hooks.sendmsg = closed_sendmsg;
  g_fail_closed.hooks.sendmmsg = closed_sendmmsg;
  return &g_fail_closed;
}

