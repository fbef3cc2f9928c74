// Which of the proxy's addresses a socket can connect to as it is (proxy_addresses.h).
#include "proxy_addresses.h"

#include <netinet/in.h>

#include <cstring>

namespace awfshim {

bool AddressForSocket(const awf_functions& real, int fd, int socket_family, const ProxyAddress& a,
                      sockaddr_storage* out, socklen_t* len) {
  const sockaddr* pa = reinterpret_cast<const sockaddr*>(&a.addr);
  if (pa->sa_family == socket_family) {
    std::memcpy(out, &a.addr, a.len);
    *len = a.len;
    return true;
  }
  if (socket_family != AF_INET6 || pa->sa_family != AF_INET) return false;
  int v6only = 0;
  socklen_t l = sizeof v6only;
  if (real.getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &l) != 0 || v6only) return false;
  auto* m = reinterpret_cast<sockaddr_in6*>(out);
  std::memset(out, 0, sizeof *out);
  m->sin6_family = AF_INET6;
  m->sin6_port = reinterpret_cast<const sockaddr_in*>(pa)->sin_port;
  m->sin6_addr.s6_addr[10] = m->sin6_addr.s6_addr[11] = 0xff;
  std::memcpy(m->sin6_addr.s6_addr + 12, &reinterpret_cast<const sockaddr_in*>(pa)->sin_addr, 4);
  *len = sizeof(sockaddr_in6);
  return true;
}

}  // namespace awfshim
