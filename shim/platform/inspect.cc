#include "inspect.h"

#include <algorithm>

#include "awfshim/tls_hello.h"
#include "engine.h"
#include "events.h"

namespace awfshim {
namespace {

constexpr size_t kMaxConnectHead = 8192;

// Appends the first n bytes of iov to `out`, keeping it within `cap`.
void Gather(std::string& out, const iovec* iov, int iovcnt, size_t n, size_t cap) {
  for (int i = 0; i < iovcnt && n > 0 && out.size() < cap; i++) {
    size_t take = std::min({iov[i].iov_len, n, cap - out.size()});
    out.append(static_cast<const char*>(iov[i].iov_base), take);
    n -= take;
  }
}

bool HasBlankLine(const std::string& s) {
  return s.find("\r\n\r\n") != std::string::npos || s.find("\n\n") != std::string::npos;
}

void Finish(Conn& c) {
  bool proxied_done = c.kind != ConnKind::kAppProxied || (c.request_done && c.reply_done);
  c.inspecting = !(c.hello_done && proxied_done);
  if (!c.inspecting) {
    std::string().swap(c.first_out);
    std::string().swap(c.first_in);
  }
}

void LookForHello(Conn& c) {
  TlsHello hello = ParseTlsHello(c.first_out);
  if (hello.result == TlsHello::Result::kIncomplete && c.first_out.size() < kMaxClientHello) return;
  if (hello.result == TlsHello::Result::kClientHello) engine().events.Tls(c, hello.sni, hello.alpn);
  c.hello_done = true;
}

}  // namespace

bool WantsInspection(ConnKind kind, uint16_t port) {
  if (!engine().trace.on()) return false;
  return kind == ConnKind::kAppProxied || port == 443;
}

void InspectOut(Conn& c, const iovec* iov, int iovcnt, size_t n) {
  if (!c.inspecting) return;
  if (c.kind == ConnKind::kAppProxied && !c.request_done) {
    Gather(c.first_out, iov, iovcnt, n, kMaxConnectHead);
    if (!HasBlankLine(c.first_out) && c.first_out.size() < kMaxConnectHead) return;
    ConnectRequest req = ParseConnectRequest(c.first_out);
    c.request_done = true;
    c.first_out.clear();
    if (req.is_connect) {
      c.host = req.authority;
    } else {
      c.reply_done = c.hello_done = true;  // plain HTTP through the proxy: nothing more to see
    }
  } else if (!c.hello_done && (c.kind != ConnKind::kAppProxied || c.reply_done)) {
    Gather(c.first_out, iov, iovcnt, n, kMaxClientHello);
    LookForHello(c);
  }
  Finish(c);
}

void InspectIn(Conn& c, const iovec* iov, int iovcnt, size_t n) {
  if (!c.inspecting || c.kind != ConnKind::kAppProxied || !c.request_done || c.reply_done) return;
  Gather(c.first_in, iov, iovcnt, n, kMaxProxyHead);
  ProxyReply reply = ParseProxyReply(c.first_in);
  if (reply.result == ProxyReply::Result::kIncomplete) return;
  c.reply = reply;
  c.reply_done = true;
  engine().events.AppTunnel(c);
  if (reply.status != 200) c.hello_done = true;
  Finish(c);
}

}  // namespace awfshim
