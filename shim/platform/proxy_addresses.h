// The proxy's addresses, as its name resolved, and which of them a socket can connect to as it is.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <string>
#include <vector>

#include "awfshim/abi.h"

namespace awfshim {

struct ProxyAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

struct ProxyEndpoint {
  static constexpr size_t kMaxAddresses = 8;

  // In getaddrinfo's order, each once. A tunnel tries them in turn from `preferred` on, as
  // `curl -x` goes through a proxy name's addresses (localhost: ::1, then 127.0.0.1).
  std::vector<ProxyAddress> addrs;
  std::string error;  // non-empty: could not be resolved
  // The address the last tunnel reached the proxy at: the next one starts there.
  mutable std::atomic<unsigned> preferred{0};

  // Where a tunnel starts (addrs must not be empty: it is not when error is).
  unsigned PreferredIndex() const { return preferred.load(std::memory_order_relaxed) % addrs.size(); }
  const ProxyAddress& Preferred() const { return addrs[PreferredIndex()]; }
};

// `a` in a form the socket `fd` (of family `socket_family`) can connect to without being replaced:
// its own family, or IPv4 mapped into a dual-stack IPv6 socket. False when it would take another
// socket.
bool AddressForSocket(const awf_functions& real, int fd, int socket_family, const ProxyAddress& a,
                      sockaddr_storage* out, socklen_t* len);

}  // namespace awfshim
