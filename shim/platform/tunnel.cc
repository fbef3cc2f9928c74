#include "tunnel.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine.h"
#include "events.h"

namespace awfshim {
namespace {

constexpr int kSendFlags = MSG_NOSIGNAL | MSG_DONTWAIT;

bool ProxyConnected(Conn& c) {
  struct pollfd p = {c.fd, POLLOUT, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  int err = 0;
  socklen_t len = sizeof err;
  if (real().getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err) {
    FailTunnel(c, err, absl::StrCat("cannot reach the proxy: ", std::strerror(err)));
    return false;
  }
  return true;
}

bool SendRequest(Conn& c) {
  while (c.request_sent < c.request.size()) {
    ssize_t n = real().send(c.fd, c.request.data() + c.request_sent, c.request.size() - c.request_sent, kSendFlags);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    if (n < 0) {
      FailTunnel(c, errno, absl::StrCat("sending CONNECT failed: ", std::strerror(errno)));
      return false;
    }
    c.request_sent += static_cast<size_t>(n);
  }
  return true;
}

// Reads the proxy's reply head and nothing after it: bytes of an incomplete head are consumed
// into c.reply_head (they cannot be anything else), the rest is peeked at first, so exactly the
// head's remainder is taken and whatever the target sent after it stays in the socket.
void ReadReply(Conn& c) {
  char buf[kMaxProxyHead];
  size_t room = kMaxProxyHead - c.reply_head.size();
  ssize_t n;
  do {
    n = real().recv(c.fd, buf, room, MSG_PEEK | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      FailTunnel(c, errno, absl::StrCat("reading the proxy's reply failed: ", std::strerror(errno)));
    }
    return;
  }
  if (n == 0) {
    FailTunnel(c, ECONNRESET, "the proxy closed the connection before answering CONNECT");
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
      FailTunnel(c, ECONNRESET, absl::StrCat("unusable proxy reply: ", reply.problem));
      return;
    case ProxyReply::Result::kComplete:
      take = reply.head_length - c.reply_head.size();
      break;
  }
  ssize_t consumed;
  do {
    consumed = real().recv(c.fd, buf, take, MSG_DONTWAIT);
  } while (consumed < 0 && errno == EINTR);
  if (consumed != static_cast<ssize_t>(take)) {
    FailTunnel(c, ECONNRESET, "the proxy's reply head could not be consumed");
    return;
  }
  if (reply.result == ProxyReply::Result::kIncomplete) {
    c.reply_head.append(buf, take);
    return;
  }
  c.reply = reply;
  std::string().swap(c.reply_head);
  if (reply.status != 200) {
    FailTunnel(c, ECONNREFUSED, absl::StrCat("the proxy refused CONNECT: ", reply.status, " ", reply.reason));
    return;
  }
  c.handshake_us = MonotonicMicros() - c.started_us;
  c.phase.store(Phase::kOpen, std::memory_order_release);
  TraceTunnel(c);
}

}  // namespace

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

void FailTunnel(Conn& c, int err, std::string why) {
  c.error = err;
  c.failure = std::move(why);
  c.held.clear();
  c.phase.store(Phase::kFailed, std::memory_order_release);
  shutdown(c.fd, SHUT_RDWR);
  TraceTunnel(c);
}

void Advance(Conn& c) {
  if (c.phase.load() == Phase::kProxyConnecting) {
    if (!ProxyConnected(c)) return;
    c.phase.store(Phase::kRequestSending);
  }
  if (c.phase.load() == Phase::kRequestSending) {
    if (!SendRequest(c)) return;
    c.phase.store(Phase::kReplyWaiting);
  }
  if (c.phase.load() == Phase::kReplyWaiting) ReadReply(c);
  if (c.phase.load() == Phase::kOpen && !c.held.empty()) FlushHeld(c);
}

void AdvanceUntilSettled(Conn& c) {
  for (;;) {
    Advance(c);
    if (Settled(c) && (c.phase.load() == Phase::kFailed || c.held.empty())) return;
    int64_t left_us = c.deadline_us - MonotonicMicros();
    if (left_us <= 0) {
      if (Settled(c)) {
        FailTunnel(c, ETIMEDOUT, "timed out sending the bytes held during the handshake");
      } else {
        FailTunnel(c, ETIMEDOUT, absl::StrCat("no answer from the proxy within ", engine().settings.timeout_ms, " ms"));
      }
      return;
    }
    struct pollfd p = {c.fd, WantedEvents(c), 0};
    poll(&p, 1, static_cast<int>((left_us + 999) / 1000));
  }
}

bool FlushHeld(Conn& c) {
  while (!c.held.empty()) {
    ssize_t n = real().send(c.fd, c.held.data(), c.held.size(), kSendFlags);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    if (n < 0) {
      FailTunnel(c, errno, absl::StrCat("sending held bytes failed: ", std::strerror(errno)));
      return false;
    }
    c.held.erase(0, static_cast<size_t>(n));
  }
  return true;
}

}  // namespace awfshim
