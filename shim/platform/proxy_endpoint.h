// Where the proxy is: its address resolved once, and in the form each socket can connect to.
#pragma once

#include <sys/socket.h>

#include <string>

#include "proxy_addresses.h"

namespace awfshim {

// The proxy's addresses, resolved once (through the real getaddrinfo when it is a name).
const ProxyEndpoint& ResolveProxy();

// `a` in a form `fd` can connect to; may replace the socket behind fd with one of a's family
// (same fd number, same flags).
bool ProxyAddressFor(int fd, int socket_family, const ProxyAddress& a, sockaddr_storage* out, socklen_t* len,
                     std::string* why);

// The lock ResolveProxy takes, around fork().
void ProxyLockForFork();
void ProxyUnlockAfterFork();

}  // namespace awfshim
