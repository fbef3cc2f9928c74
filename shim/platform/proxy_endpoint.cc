// Where the proxy is: its addresses resolved once, and in the form each socket can connect to.
#include "proxy_endpoint.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
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
    for (const addrinfo* ai = res; ai && p->addrs.size() < ProxyEndpoint::kMaxAddresses; ai = ai->ai_next) {
      if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
      ProxyAddress a;
      std::memcpy(&a.addr, ai->ai_addr, ai->ai_addrlen);
      a.len = ai->ai_addrlen;
      auto same = [&a](const ProxyAddress& b) { return b.len == a.len && std::memcmp(&b.addr, &a.addr, a.len) == 0; };
      if (std::none_of(p->addrs.begin(), p->addrs.end(), same)) p->addrs.push_back(a);
    }
    freeaddrinfo(res);
    if (p->addrs.empty()) p->error = absl::StrCat("cannot resolve the proxy '", url.host, "': no usable address");
  }
  g_endpoint = p;
  return *g_endpoint;
}

bool ProxyAddressFor(int fd, int socket_family, const ProxyAddress& a, sockaddr_storage* out, socklen_t* len,
                     std::string* why) {
  if (AddressForSocket(real(), fd, socket_family, a, out, len)) return true;
  // Another family: a fresh socket takes over the fd number.
  const sockaddr* pa = reinterpret_cast<const sockaddr*>(&a.addr);
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
  std::memcpy(out, &a.addr, a.len);
  *len = a.len;
  return true;
}

void ProxyLockForFork() { g_mu.lock(); }
void ProxyUnlockAfterFork() { g_mu.unlock(); }

}  // namespace awfshim
