// Where the proxy is: its address resolved once, and in the form each socket can connect to.
#pragma once

#include <sys/socket.h>

#include <string>

namespace awfshim {

struct ProxyEndpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string error;  // non-empty: could not be resolved
};

// The proxy's address, resolved once (through the real getaddrinfo when it is a name).
const ProxyEndpoint& ResolveProxy();

// The proxy's address in a form `fd` can connect to; may replace the socket behind fd with one
// of the proxy's family (same fd number, same flags).
bool ProxyAddressFor(int fd, int socket_family, const ProxyEndpoint& p, sockaddr_storage* out, socklen_t* len,
                     std::string* why);

// The lock ResolveProxy takes, around fork().
void ProxyLockForFork();
void ProxyUnlockAfterFork();

}  // namespace awfshim
