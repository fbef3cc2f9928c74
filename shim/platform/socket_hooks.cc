// connect, getsockopt(SO_ERROR), getpeername, shutdown.
//
// Where a connect goes (written down where it is decided):
//  - a synthetic address: the routed name behind it is tunnelled; an unknown one is refused;
//  - the proxy itself: direct; the application speaks CONNECT on its own (traced, untouched);
//  - a bypassed address (loopback, NO_PROXY, AWF_SHIM_BYPASS): direct;
//  - an address remembered for a routed name (AWF_SHIM_DNS=system): tunnelled by that name;
//  - any other address when AWF_SHIM_ROUTE has `*`: tunnelled by the address literal (the proxy
//    may refuse raw addresses: that is its decision);
//  - otherwise direct.
// A routed destination is never connected directly: a configuration error, an unresolvable
// proxy or a non-stream socket refuses it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine.h"
#include "events.h"
#include "hooks.h"
#include "inspect.h"
#include "proxy_endpoint.h"
#include "pump.h"
#include "tracking.h"
#include "tunnel.h"

namespace awfshim {
namespace {

enum class Decision { kTunnel, kDirect, kBypass, kAppProxied, kRefuse };

struct Route {
  Decision decision = Decision::kDirect;
  std::string host;    // CONNECT target host for kTunnel
  std::string reason;  // for the trace
  int refuse_errno = ECONNREFUSED;  // what the application sees if it is refused
};

const char* DecisionName(Decision d) {
  switch (d) {
    case Decision::kTunnel:
      return "tunnel";
    case Decision::kDirect:
      return "direct";
    case Decision::kBypass:
      return "bypass";
    case Decision::kAppProxied:
      return "direct";
    case Decision::kRefuse:
      return "refuse";
  }
  return "?";
}

uint16_t PortOf(const sockaddr* addr) {
  return ntohs(addr->sa_family == AF_INET ? reinterpret_cast<const sockaddr_in*>(addr)->sin_port
                                          : reinterpret_cast<const sockaddr_in6*>(addr)->sin6_port);
}

bool SameEndpoint(const sockaddr* a, const ProxyEndpoint& p) {
  auto ka = AddrKey::From(a);
  if (!ka || !p.error.empty()) return false;
  for (const ProxyAddress& pa : p.addrs) {
    const sockaddr* s = reinterpret_cast<const sockaddr*>(&pa.addr);
    if (auto kp = AddrKey::From(s); kp && *ka == *kp && PortOf(a) == PortOf(s)) return true;
  }
  return false;
}

Route Decide(const sockaddr* addr) {
  const Engine& e = engine();
  std::optional<AddrKey> key = AddrKey::From(addr);
  if (NameBook::IsSynthetic(*key)) {
    if (std::optional<std::string> name = e.book.NameFor(*key)) return {Decision::kTunnel, *name, "routed name"};
    return {Decision::kRefuse, "", "synthetic address unknown to this process", EHOSTUNREACH};
  }
  if (e.settings.proxy && SameEndpoint(addr, ResolveProxy())) {
    return {Decision::kAppProxied, "", "the application talks to the proxy itself"};
  }
  std::optional<std::string> name = e.book.NameFor(*key);  // the name looked up for it, if routed
  if (e.settings.rules.BypassesAddress(addr, name)) return {Decision::kBypass, "", "bypassed address"};
  if (name && e.settings.rules.RoutesName(*name)) return {Decision::kTunnel, *name, "address of a routed name"};
  if (e.settings.rules.RoutesEverything()) return {Decision::kTunnel, key->ToString(), "route '*'"};
  return {Decision::kDirect, "", "not routed"};
}

bool IsStreamSocket(int fd) {
  int type = 0;
  socklen_t len = sizeof type;
  return real().getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

int Refuse(int fd, const sockaddr* addr, const Route& r, bool nonblocking) {
  engine().events.Connect(fd, addr, r.host, "refuse", r.reason, nonblocking);
  errno = r.refuse_errno;
  return -1;
}

// What connect() returns for tunnel c after `wait`, as the kernel would: the `first` connect
// says EINPROGRESS where a later one says EALREADY (pending; SO_SNDTIMEO passed). c.mu held.
int ConnectResult(Conn& c, Wait wait, bool first) {
  if (wait == Wait::kClosed) {
    errno = EBADF;  // another thread closed the fd meanwhile: c is someone else's now
    return -1;
  }
  c.RefreshFast();
  Phase phase = c.phase.load();
  if (wait == Wait::kInterrupted) {
    errno = EINTR;
  } else if (phase == Phase::kFailed) {
    errno = c.error;
  } else if (wait == Wait::kTimedOut || phase != Phase::kOpen || (first && c.nonblocking)) {
    errno = first ? EINPROGRESS : EALREADY;
  } else if (c.connect_reported) {
    errno = EISCONN;
  } else {
    c.connect_reported = true;
    return 0;
  }
  return -1;
}

int StartTunnel(int fd, const sockaddr* addr, Route route, bool nonblocking) {
  // A blocking connect is bounded by the socket's SO_SNDTIMEO too (read before the socket may be
  // replaced), and lets the application's signals in while it waits, and only then.
  int64_t own_deadline_us = nonblocking ? -1 : engine().tunnels.OwnDeadline(fd, SO_SNDTIMEO);
  SignalsHeld signals(!nonblocking);
  const Settings& s = engine().settings;
  if (s.refuse_routed()) {
    route.reason = s.proxy ? "configuration errors: routed connections are refused (see the init event)"
                           : "no usable proxy configured: routed connections are refused";
    return Refuse(fd, addr, route, nonblocking);
  }
  if (!IsStreamSocket(fd)) {
    route.reason = "not a stream socket: only TCP can be tunnelled";
    route.refuse_errno = ENETUNREACH;
    return Refuse(fd, addr, route, nonblocking);
  }
  if (!engine().fds.in_range(fd)) {  // only where fs.nr_open was raised past the table
    route.reason = absl::StrCat("fd ", fd, " is past the ", engine().fds.size(),
                                " fds the shim follows: a tunnel on it would go unwatched");
    return Refuse(fd, addr, route, nonblocking);
  }
  const ProxyEndpoint& proxy = ResolveProxy();
  sockaddr_storage proxy_addr;
  socklen_t proxy_len = 0;
  std::string why = proxy.error;
  const unsigned proxy_at = why.empty() ? proxy.PreferredIndex() : 0;
  if (!why.empty() || !ProxyAddressFor(fd, addr->sa_family, proxy.addrs[proxy_at], &proxy_addr, &proxy_len, &why)) {
    route.reason = why;
    return Refuse(fd, addr, route, nonblocking);
  }
  Conn* c = engine().pool.Acquire();
  std::unique_lock<std::mutex> lock(c->mu);
  c->fd = fd;
  c->kind = ConnKind::kTunnel;
  c->host = route.host;
  c->port = PortOf(addr);
  c->peer_len = addr->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  std::memcpy(&c->peer, addr, c->peer_len);
  c->nonblocking = nonblocking;
  c->proxy = &proxy;
  c->proxy_at = proxy_at;
  c->proxy_tries = 1;
  c->request = BuildConnectRequest(HostPort(route.host, c->port), s.proxy->user, s.proxy->password);
  c->phase.store(Phase::kProxyConnecting);
  c->inspecting = WantsInspection(ConnKind::kTunnel, c->port);
  c->deadline_us = c->started_us + int64_t{s.timeout_ms} * 1000;
  TrackConn(fd, c);
  engine().events.Connect(fd, addr, route.host, "tunnel", route.reason, nonblocking);

  // The TCP connect to the proxy never blocks; it goes on in the kernel while the socket is back
  // in the application's mode, and every later step is non-blocking on its own.
  int err = engine().tunnels.ConnectNonBlocking(fd, reinterpret_cast<sockaddr*>(&proxy_addr), proxy_len);
  Wait wait = Wait::kSettled;
  if (err != 0 && err != EINPROGRESS) engine().tunnels.ProxyUnreachable(*c, err);  // the next address, or failed
  if (c->phase.load() == Phase::kFailed) {
    // ConnectResult reports the failure
  } else if (!nonblocking) {
    wait = WaitForHandshake(*c, lock, own_deadline_us, signals.mask());
  } else {
    engine().tunnels.Advance(*c);
    // Without a pump nothing would wake an application that waits in poll() for input at the
    // deadline (poll is not hooked): the handshake is finished here, bounded by the timeout. A
    // handler cannot make a non-blocking connect fail with EINTR, so the wait goes on after one.
    if (!Settled(*c) && !engine().pump.Watch(*c)) {
      while ((wait = WaitForHandshake(*c, lock, -1, nullptr)) == Wait::kInterrupted) {
      }
    }
  }
  return ConnectResult(*c, wait, /*first=*/true);
}

// Follows a direct connection for the trace (application-proxied, or a ClientHello on 443).
void Observe(int fd, const sockaddr* addr, ConnKind kind) {
  uint16_t port = PortOf(addr);
  if (!WantsInspection(kind, port)) return;
  Conn* c = engine().pool.Acquire();
  std::lock_guard<std::mutex> lock(c->mu);
  c->fd = fd;
  c->kind = kind;
  c->port = port;
  c->host = FormatAddr(addr);
  c->host = c->host.substr(0, c->host.rfind(':'));
  c->phase.store(Phase::kOpen);
  c->inspecting = true;
  c->RefreshFast();
  TrackConn(fd, c);
}

int ConnectRouted(int fd, const sockaddr* addr, socklen_t len, const Route& route) {
  int fl = real().fcntl(fd, F_GETFL, nullptr);
  bool nonblocking = fl >= 0 && (fl & O_NONBLOCK);
  if (route.decision == Decision::kTunnel) return StartTunnel(fd, addr, route, nonblocking);
  if (route.decision == Decision::kRefuse) return Refuse(fd, addr, route, nonblocking);
  engine().events.Connect(fd, addr, route.host, DecisionName(route.decision), route.reason, nonblocking);
  int rc = real().connect(fd, addr, len);
  if (rc == 0 || errno == EINPROGRESS) {
    int saved = errno;
    Observe(fd, addr, route.decision == Decision::kAppProxied ? ConnKind::kAppProxied : ConnKind::kObserved);
    errno = saved;
  }
  return rc;
}

// A second connect() on a tunnelled fd: an event loop polling a pending connect, or a blocking
// connect again after EINTR or SO_SNDTIMEO. As the kernel answers it: a blocking one waits again
// (EALREADY when SO_SNDTIMEO passes first), a non-blocking one says EALREADY while the handshake
// is pending; the first to find the tunnel open succeeds, later ones get EISCONN.
int ConnectAgain(Conn& c, int fd) {
  int fl = real().fcntl(fd, F_GETFL, nullptr);
  bool blocking = fl >= 0 && !(fl & O_NONBLOCK) && !Settled(c);
  int64_t own_deadline_us = blocking ? engine().tunnels.OwnDeadline(fd, SO_SNDTIMEO) : -1;
  SignalsHeld signals(blocking);
  std::unique_lock<std::mutex> lock(c.mu);
  Wait wait = Wait::kSettled;
  if (blocking) {
    wait = WaitForHandshake(c, lock, own_deadline_us, signals.mask());
  } else {
    engine().tunnels.Advance(c);
  }
  return ConnectResult(c, wait, /*first=*/false);
}

// The kernel takes an AF_INET6 address from 24 bytes on (RFC 2133's sockaddr_in6, without
// sin6_scope_id): shorter ones it refuses, so only those may pass untouched.
constexpr socklen_t kMinSockaddrIn6 = offsetof(sockaddr_in6, sin6_scope_id);

int Connect(int fd, const sockaddr* addr, socklen_t len) {
  if (tl_in_shim || len < sizeof(sockaddr_in) || (addr->sa_family == AF_INET6 && len < kMinSockaddrIn6)) {
    return real().connect(fd, addr, len);
  }
  if (Conn* c = CheckedConnFor(fd); c && c->kind == ConnKind::kTunnel) return ConnectAgain(*c, fd);
  sockaddr_in6 full{};  // a short AF_INET6 address, completed (scope 0) so nothing reads past it
  if (addr->sa_family == AF_INET6 && len < sizeof full) {
    std::memcpy(&full, addr, len);
    addr = reinterpret_cast<const sockaddr*>(&full);
    len = sizeof full;
  }
  ShimScope scope;
  return ConnectRouted(fd, addr, len, Decide(addr));
}

int Getsockopt(int fd, int level, int opt, void* val, socklen_t* len) {
  Conn* c = level == SOL_SOCKET && opt == SO_ERROR ? CheckedConnFor(fd) : nullptr;
  if (!c || c->kind != ConnKind::kTunnel || !val || !len || *len < sizeof(int)) {
    return real().getsockopt(fd, level, opt, val, len);
  }
  std::lock_guard<std::mutex> lock(c->mu);
  // The application asks whether its connect finished: the first sign of writability, so the
  // CONNECT request goes out now if it has not already.
  engine().tunnels.Advance(*c);
  if (c->watched) engine().pump.Rearm(*c);
  c->RefreshFast();
  if (c->phase.load() == Phase::kFailed) {
    *static_cast<int*>(val) = c->error;
    *len = sizeof(int);
    return 0;
  }
  return real().getsockopt(fd, level, opt, val, len);
}

int Getpeername(int fd, sockaddr* addr, socklen_t* len) {
  Conn* c = CheckedConnFor(fd);
  if (!c || c->kind != ConnKind::kTunnel || !addr || !len) return real().getpeername(fd, addr, len);
  std::lock_guard<std::mutex> lock(c->mu);
  if (c->phase.load() == Phase::kFailed) {
    errno = ENOTCONN;
    return -1;
  }
  std::memcpy(addr, &c->peer, std::min<socklen_t>(*len, c->peer_len));
  *len = c->peer_len;
  return 0;
}

// shutdown() during the handshake: the FIN would reach the proxy before the bytes the
// application wrote meanwhile, which the shim holds until the proxy's 200 (Node's socket.end()
// right after 'connect' lost its request). It is carried out once they are flushed (Advance),
// and reported done now, as the kernel reports it on the connected socket the application sees.
int Shutdown(int fd, int how) {
  Conn* c = CheckedConnFor(fd);
  if (!c || c->kind != ConnKind::kTunnel || (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)) {
    return real().shutdown(fd, how);
  }
  std::lock_guard<std::mutex> lock(c->mu);
  engine().tunnels.Advance(*c);
  Phase phase = c->phase.load();
  if (phase == Phase::kFailed || (phase == Phase::kOpen && c->held.empty())) return real().shutdown(fd, how);
  if (how != SHUT_WR) c->shut_rd = true;
  if (how != SHUT_RD) c->shut_wr = true;
  if (c->watched) engine().pump.Rearm(*c);
  return 0;
}

}  // namespace

bool ConnectIfRouted(int fd, const sockaddr* addr, socklen_t len) {
  ShimScope scope;
  Route route = Decide(addr);
  if (route.decision != Decision::kTunnel && route.decision != Decision::kRefuse) return false;
  ConnectRouted(fd, addr, len, route);
  return true;
}

bool RefusedDatagram(int fd, const sockaddr* addr, socklen_t len) {
  if (!addr || (addr->sa_family != AF_INET && addr->sa_family != AF_INET6) || len < sizeof(sockaddr_in) ||
      (addr->sa_family == AF_INET6 && len < kMinSockaddrIn6) || IsStreamSocket(fd)) {
    return false;
  }
  sockaddr_in6 full{};
  if (addr->sa_family == AF_INET6 && len < sizeof full) {
    std::memcpy(&full, addr, len);
    addr = reinterpret_cast<const sockaddr*>(&full);
  }
  ShimScope scope;
  Route route = Decide(addr);
  if (route.decision != Decision::kTunnel && route.decision != Decision::kRefuse) return false;
  route.reason = "a datagram to a routed destination: only TCP can be tunnelled";
  route.refuse_errno = ENETUNREACH;
  Refuse(fd, addr, route, /*nonblocking=*/false);
  return true;
}

void InstallSocketHooks(awf_functions& hooks) {
  hooks.connect = Connect;
  hooks.getsockopt = Getsockopt;
  hooks.getpeername = Getpeername;
  hooks.shutdown = Shutdown;
}

}  // namespace awfshim
