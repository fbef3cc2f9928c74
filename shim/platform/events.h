// Trace events about names and connections, kept out of the hooks so they stay thin.
#pragma once

#include <netdb.h>

#include "absl/strings/string_view.h"
#include "awfshim/http1.h"
#include "awfshim/settings.h"
#include "awfshim/trace.h"
#include "conn.h"

namespace awfshim {

// Writes to the trace it is given; the proxy named in `tunnel` events comes from the settings.
class Events {
 public:
  Events(const Trace& trace, const Settings& settings) : trace_(trace), settings_(settings) {}

  void Dns(absl::string_view host, int family, absl::string_view mode, const addrinfo* answers, int rc) const;
  void Connect(int fd, const sockaddr* addr, absl::string_view host, absl::string_view decision,
               absl::string_view reason, bool nonblocking) const;
  // The end of a handshake, open or failed (from c's fields).
  void Tunnel(const Conn& c) const;
  // An application that proxies itself: the target it asked for and what the proxy answered.
  void AppTunnel(const Conn& c) const;
  void Tls(const Conn& c, absl::string_view sni, const std::vector<std::string>& alpn) const;
  // `at_exit`: the process is exiting with the connection still open (it never closed it).
  void Close(const Conn& c, bool at_exit = false) const;

  // One HTTP/1.1 exchange seen through the TLS tap; `sni` names the host when Host is missing;
  // `fd` is the connection's socket, -1 when not known (memory BIOs).
  void Http(const HttpExchange& x, absl::string_view sni, int fd) const;
  // The connection speaks HTTP/2: the tap reports it once and looks no further.
  void Http2(absl::string_view sni, int fd) const;

 private:
  const Trace& trace_;
  const Settings& settings_;
};

// "ECONNREFUSED" for ECONNREFUSED.
const char* ErrnoName(int err);
std::string FormatAddr(const sockaddr* addr);

}  // namespace awfshim
