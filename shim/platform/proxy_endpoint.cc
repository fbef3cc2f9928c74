// Where the proxy is: its address resolved once, and in the form each socket can connect to.
#include "proxy_endpoint.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "engine.h"

namespace awfshim {
namespace {

std::mutex g_mu;  // guards g_endpoint's making
ProxyEndpoint* g_endpoint = nullptr;

}  // namespace

const ProxyEndpoint& ResolveProxy() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_endpoint) return *g_endpoint;
  auto* p = new ProxyEndpoint;  // never freed: hooks may run after static destructors
  const ProxyUrl& url = *engine().settings.proxy;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = absl::StrCat(url.port);
  int rc;
  {
    ShimScope scope;
    rc = real().getaddrinfo(url.host.c_str(), port.c_str(), &hints, &res);
  }
  if (rc != 0 || !res) {
    p->error = absl::StrCat("cannot resolve the proxy '", url.host, "': ", gai_strerror(rc));
  } else {
    std::memcpy(&p->addr, res->ai_addr, res->ai_addrlen);
    p->len = res->ai_addrlen;
    freeaddrinfo(res);
  }
  g_endpoint = p;
  return *g_endpoint;
}

bool ProxyAddressFor(int fd, int socket_family, const ProxyEndpoint& p, sockaddr_storage* out, socklen_t* len,
                     std::string* why) {
  const sockaddr* pa = reinterpret_cast<const sockaddr*>(&p.addr);
  if (pa->sa_family == socket_family) {
    std::memcpy(out, &p.addr, p.len);
    *len = p.len;
    return true;
  }
  if (socket_family == AF_INET6 && pa->sa_family == AF_INET) {
    int v6only = 0;
    socklen_t l = sizeof v6only;
    if (real().getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &l) == 0 && !v6only) {
      auto* m = reinterpret_cast<sockaddr_in6*>(out);
      std::memset(out, 0, sizeof *out);
      m->sin6_family = AF_INET6;
      m->sin6_port = reinterpret_cast<const sockaddr_in*>(pa)->sin_port;
      m->sin6_addr.s6_addr[10] = m->sin6_addr.s6_addr[11] = 0xff;
      std::memcpy(m->sin6_addr.s6_addr + 12, &reinterpret_cast<const sockaddr_in*>(pa)->sin_addr, 4);
      *len = sizeof(sockaddr_in6);
      return true;
    }
  }
  // Another family: a fresh socket takes over the fd number.
  int status = real().fcntl(fd, F_GETFL, nullptr);
  int fdflags = real().fcntl(fd, F_GETFD, nullptr);
  int fresh = socket(pa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fresh < 0 || status < 0 || fdflags < 0) {
    *why = absl::StrCat("cannot make a socket for the proxy's address family: ", std::strerror(errno));
    if (fresh >= 0) real().close(fresh);
    return false;
  }
  real().fcntl(fresh, F_SETFL, reinterpret_cast<void*>(static_cast<intptr_t>(status & O_NONBLOCK)));
  int rc = real().dup3(fresh, fd, (fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0);
  real().close(fresh);
  if (rc < 0) {
    *why = absl::StrCat("cannot replace the socket: ", std::strerror(errno));
    return false;
  }
  std::memcpy(out, &p.addr, p.len);
  *len = p.len;
  return true;
}

void ProxyLockForFork() { g_mu.lock(); }
void ProxyUnlockAfterFork() { g_mu.unlock(); }

}  // namespace awfshim
