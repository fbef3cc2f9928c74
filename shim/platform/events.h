// Trace events about names and connections, kept out of the hooks so they stay thin.
#pragma once

#include <netdb.h>

#include "absl/strings/string_view.h"
#include "awfshim/http1.h"
#include "conn.h"

namespace awfshim {

void TraceDns(absl::string_view host, int family, absl::string_view mode, const addrinfo* answers, int rc);
void TraceConnect(int fd, const sockaddr* addr, absl::string_view host, absl::string_view decision,
                  absl::string_view reason, bool nonblocking);
// The end of a handshake, open or failed (from c's fields).
void TraceTunnel(const Conn& c);
// An application that proxies itself: the target it asked for and what the proxy answered.
void TraceAppTunnel(const Conn& c);
void TraceTls(const Conn& c, absl::string_view sni, const std::vector<std::string>& alpn);
// `at_exit`: the process is exiting with the connection still open (it never closed it).
void TraceClose(const Conn& c, bool at_exit = false);

// One HTTP/1.1 exchange seen through the TLS tap; `sni` names the host when Host is missing; `fd`
// is the connection's socket, -1 when not known (memory BIOs).
void TraceHttp(const HttpExchange& x, absl::string_view sni, int fd);
// The connection speaks HTTP/2: the tap reports it once and looks no further.
void TraceHttp2(absl::string_view sni, int fd);

// "ECONNREFUSED" for ECONNREFUSED.
const char* ErrnoName(int err);
std::string FormatAddr(const sockaddr* addr);

}  // namespace awfshim
