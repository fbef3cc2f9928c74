// The CONNECT handshake's steps on a tunnelled fd (tunnel.h), through the real functions handed in.
#include "tunnel.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "proxy_addresses.h"
#include "shim_scope.h"

namespace awfshim {
namespace {

constexpr int kSendFlags = MSG_NOSIGNAL | MSG_DONTWAIT;

// A handler interrupted the wait. The kernel restarts a blocking socket call after a handler
// installed with SA_RESTART, unless the socket has a timeout of its own (signal(7)). Which signal
// it was is not known here: the call restarts only when every handler that could run restarts.
// Fault signals are left out: they come from the faulting instruction, never to a thread asleep
// in ppoll, and runtimes (V8, the JVM, sanitizers) handle them without SA_RESTART.
bool Restarts(bool own_timeout, const sigset_t* mask) {
  if (own_timeout) return false;
  sigset_t current;
  if (!mask) {
    pthread_sigmask(SIG_SETMASK, nullptr, &current);
    mask = &current;
  }
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGTRAP || sig == SIGSYS) continue;
    struct sigaction sa;
    if (sigismember(mask, sig) == 1 || sigaction(sig, nullptr, &sa) != 0) continue;
    if (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN && !(sa.sa_flags & SA_RESTART)) return false;
  }
  return true;
}

// Errors that say the address was wrong, not the proxy: another of its addresses may do.
bool AnotherAddressMayDo(int err) {
  return err == ECONNREFUSED || err == ENETUNREACH || err == EHOSTUNREACH || err == EADDRNOTAVAIL ||
         err == EAFNOSUPPORT || err == ETIMEDOUT;
}

}  // namespace

bool Tunnels::ProxyConnected(Conn& c) const {
  struct pollfd p = {c.fd, POLLOUT, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  int err = 0;
  socklen_t len = sizeof err;
  if (real_.getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err) {
    ProxyUnreachable(c, err);
    return false;
  }
  if (c.proxy) c.proxy->preferred.store(c.proxy_at, std::memory_order_relaxed);
  return true;
}

int Tunnels::ConnectNonBlocking(int fd, const sockaddr* to, socklen_t len) const {
  int status = real_.fcntl(fd, F_GETFL, nullptr);
  bool blocking = status >= 0 && !(status & O_NONBLOCK);
  if (blocking) real_.fcntl(fd, F_SETFL, reinterpret_cast<void*>(static_cast<intptr_t>(status | O_NONBLOCK)));
  int err = real_.connect(fd, to, len) == 0 ? 0 : errno;
  if (blocking) real_.fcntl(fd, F_SETFL, reinterpret_cast<void*>(static_cast<intptr_t>(status)));
  return err;
}

void Tunnels::ProxyUnreachable(Conn& c, int err) const {
  const ProxyEndpoint* p = c.proxy;
  int family = 0;
  socklen_t flen = sizeof family;
  if (p && real_.getsockopt(c.fd, SOL_SOCKET, SO_DOMAIN, &family, &flen) != 0) family = 0;
  while (p && family && AnotherAddressMayDo(err) && c.proxy_tries < p->addrs.size()) {
    c.proxy_at = (c.proxy_at + 1) % p->addrs.size();
    c.proxy_tries++;
    sockaddr_storage to;
    socklen_t to_len = 0;
    if (!AddressForSocket(real_, c.fd, family, p->addrs[c.proxy_at], &to, &to_len)) continue;
    const sockaddr* next = reinterpret_cast<const sockaddr*>(&to);
    err = ConnectNonBlocking(c.fd, next, to_len);
    // After a connect that failed on its own, Linux first answers ECONNABORTED, then connects.
    if (err == ECONNABORTED) err = ConnectNonBlocking(c.fd, next, to_len);
    if (err == 0 || err == EINPROGRESS) return;  // still kProxyConnecting: Advance goes on
  }
  std::string where = c.proxy_tries > 1 ? absl::StrCat(" at any of its ", c.proxy_tries, " addresses") : "";
  Fail(c, err, absl::StrCat("cannot reach the proxy", where, ": ", std::strerror(err)));
}

bool Tunnels::SendRequest(Conn& c) const {
  while (c.request_sent < c.request.size()) {
    ssize_t n = real_.send(c.fd, c.request.data() + c.request_sent, c.request.size() - c.request_sent, kSendFlags);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    if (n < 0) {
      Fail(c, errno, absl::StrCat("sending CONNECT failed: ", std::strerror(errno)));
      return false;
    }
    c.request_sent += static_cast<size_t>(n);
  }
  return true;
}

// Reads the proxy's reply head and nothing after it: bytes of an incomplete head are consumed
// into c.reply_head (they cannot be anything else), the rest is peeked at first, so exactly the
// head's remainder is taken and whatever the target sent after it stays in the socket.
void Tunnels::ReadReply(Conn& c) const {
  char buf[kMaxProxyHead];
  size_t room = kMaxProxyHead - c.reply_head.size();
  ssize_t n;
  do {
    n = real_.recv(c.fd, buf, room, MSG_PEEK | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      Fail(c, errno, absl::StrCat("reading the proxy's reply failed: ", std::strerror(errno)));
    }
    return;
  }
  if (n == 0) {
    Fail(c, ECONNRESET, "the proxy closed the connection before answering CONNECT");
    return;
  }
  std::string head = c.reply_head;
  head.append(buf, static_cast<size_t>(n));
  ProxyReply reply = ParseProxyReply(head);
  size_t take = static_cast<size_t>(n);
  switch (reply.result) {
    case ProxyReply::Result::kIncomplete:
      break;
    case ProxyReply::Result::kMalformed:
    case ProxyReply::Result::kOversized:
      c.reply = reply;
      Fail(c, ECONNRESET, absl::StrCat("unusable proxy reply: ", reply.problem));
      return;
    case ProxyReply::Result::kComplete:
      take = reply.head_length - c.reply_head.size();
      break;
  }
  ssize_t consumed;
  do {
    consumed = real_.recv(c.fd, buf, take, MSG_DONTWAIT);
  } while (consumed < 0 && errno == EINTR);
  if (consumed != static_cast<ssize_t>(take)) {
    Fail(c, ECONNRESET, "the proxy's reply head could not be consumed");
    return;
  }
  if (reply.result == ProxyReply::Result::kIncomplete) {
    c.reply_head.append(buf, take);
    return;
  }
  c.reply = reply;
  std::string().swap(c.reply_head);
  if (reply.status != 200) {
    Fail(c, ECONNREFUSED, absl::StrCat("the proxy refused CONNECT: ", reply.status, " ", reply.reason));
    return;
  }
  c.handshake_us = MonotonicMicros() - c.started_us;
  c.phase.store(Phase::kOpen, std::memory_order_release);
  events_.Tunnel(c);
}

// Sends held application bytes, counting them out only now (a refused tunnel sent none); true
// when none are left.
bool Tunnels::FlushHeld(Conn& c) const {
  while (!c.held.empty()) {
    ssize_t n = real_.send(c.fd, c.held.data(), c.held.size(), kSendFlags);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    if (n < 0) {
      Fail(c, errno, absl::StrCat("sending held bytes failed: ", std::strerror(errno)));
      return false;
    }
    c.held.erase(0, static_cast<size_t>(n));
    c.bytes_out.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  }
  return true;
}

// The shutdown the application asked for during the handshake, now that its bytes are out.
void Tunnels::ShutDownAsAsked(Conn& c) const {
  int how = c.shut_rd && c.shut_wr ? SHUT_RDWR : c.shut_wr ? SHUT_WR : SHUT_RD;
  c.shut_rd = c.shut_wr = false;
  real_.shutdown(c.fd, how);
}

// The tunnel's deadline has passed.
void Tunnels::Expire(Conn& c) const {
  if (Settled(c)) {
    Fail(c, ETIMEDOUT, "timed out sending the bytes held during the handshake");
  } else {
    Fail(c, ETIMEDOUT, absl::StrCat("no answer from the proxy within ", (c.deadline_us - c.started_us) / 1000, " ms"));
  }
}


bool Settled(const Conn& c) {
  Phase p = c.phase.load(std::memory_order_acquire);
  return p == Phase::kOpen || p == Phase::kFailed;
}

short WantedEvents(const Conn& c) {
  switch (c.phase.load(std::memory_order_acquire)) {
    case Phase::kProxyConnecting:
    case Phase::kRequestSending:
      return POLLOUT;
    case Phase::kReplyWaiting:
      return POLLIN;
    default:
      return c.held.empty() ? 0 : POLLOUT;
  }
}

void Tunnels::Fail(Conn& c, int err, std::string why) const {
  c.error = err;
  c.failure = std::move(why);
  c.held.clear();
  c.phase.store(Phase::kFailed, std::memory_order_release);
  real_.shutdown(c.fd, SHUT_RDWR);
  events_.Tunnel(c);
}

void Tunnels::Advance(Conn& c) const {
  if (c.phase.load() == Phase::kProxyConnecting && ProxyConnected(c)) c.phase.store(Phase::kRequestSending);
  if (c.phase.load() == Phase::kRequestSending && SendRequest(c)) c.phase.store(Phase::kReplyWaiting);
  if (c.phase.load() == Phase::kReplyWaiting) ReadReply(c);
  if (c.phase.load() == Phase::kOpen && FlushHeld(c) && (c.shut_rd || c.shut_wr)) ShutDownAsAsked(c);
  // Whoever looks next enforces the deadline: the pump, or the application itself without one.
  if (!Settled(c) && MonotonicMicros() >= c.deadline_us) Expire(c);
}

Wait Tunnels::AdvanceUntilSettled(Conn& c, std::unique_lock<std::mutex>& lock, int64_t own_deadline_us,
                                  const sigset_t* mask) const {
  const uint32_t generation = c.generation;
  for (;;) {
    Advance(c);
    int64_t now = MonotonicMicros();
    bool settled = c.phase.load() == Phase::kFailed || (Settled(c) && c.held.empty());
    if (!settled && now >= c.deadline_us) {
      Expire(c);
      settled = true;
    }
    if (settled) return Wait::kSettled;
    if (own_deadline_us >= 0 && now >= own_deadline_us) return Wait::kTimedOut;
    int64_t left_us = std::min(c.deadline_us, own_deadline_us >= 0 ? own_deadline_us : c.deadline_us) - now;
    struct timespec left = {static_cast<time_t>(left_us / 1000000), static_cast<long>(left_us % 1000000 * 1000)};
    struct pollfd p = {c.fd, WantedEvents(c), 0};
    // The wait is the application's: its handlers run here, and what they call goes through the
    // shim as any call of theirs would (a handler that jumps out leaves no lock and no scope).
    bool in_shim = tl_in_shim;
    tl_in_shim = false;
    c.waiters++;
    lock.unlock();
    int rc = ppoll(&p, 1, &left, mask);
    int err = errno;
    lock.lock();
    tl_in_shim = in_shim;
    if (c.generation != generation) return Wait::kClosed;
    c.waiters--;
    if (rc < 0 && err == EINTR && !Restarts(own_deadline_us >= 0, mask)) return Wait::kInterrupted;
  }
}

int64_t Tunnels::OwnDeadline(int fd, int opt) const {
  struct timeval tv {};
  socklen_t len = sizeof tv;
  if (real_.getsockopt(fd, SOL_SOCKET, opt, &tv, &len) != 0 || (tv.tv_sec == 0 && tv.tv_usec == 0)) return -1;
  return MonotonicMicros() + int64_t{tv.tv_sec} * 1000000 + tv.tv_usec;
}

bool WaitedOn(Conn& c, int fd) {
  std::lock_guard<std::mutex> lock(c.mu);
  return c.waiters > 0 && c.fd == fd && !c.inherited && c.fd_refs.load() == 1;
}

}  // namespace awfshim
