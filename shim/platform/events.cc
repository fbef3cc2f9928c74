#include "events.h"

#include <arpa/inet.h>
#include <string.h>

#include "absl/strings/str_cat.h"
#include "engine.h"

namespace awfshim {

const char* ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : "E?";
}

std::string FormatAddr(const sockaddr* addr) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (addr->sa_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(addr);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    return absl::StrCat(buf, ":", ntohs(a->sin_port));
  }
  if (addr->sa_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(addr);
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    return absl::StrCat("[", buf, "]:", ntohs(a->sin6_port));
  }
  return "?";
}

static const char* FamilyName(int family) {
  return family == AF_INET ? "inet" : family == AF_INET6 ? "inet6" : "any";
}

void TraceDns(absl::string_view host, int family, absl::string_view mode, const addrinfo* answers, int rc) {
  const Trace& t = engine().trace;
  if (!t.on()) return;
  JsonWriter w = t.Event("dns");
  w.Field("host", host).Field("family", FamilyName(family)).Field("mode", mode);
  if (rc != 0) {
    w.Field("error", gai_strerror(rc));
  } else {
    w.Key("addrs").BeginArray();
    std::string last;
    for (const addrinfo* ai = answers; ai; ai = ai->ai_next) {
      std::string a = FormatAddr(ai->ai_addr);
      a = a.substr(0, a.rfind(':'));
      if (a != last) w.String(a);  // one per address, not per socket type
      last = a;
    }
    w.EndArray();
  }
  t.Emit(w);
}

void TraceConnect(int fd, const sockaddr* addr, absl::string_view host, absl::string_view decision,
                  absl::string_view reason, bool nonblocking) {
  const Trace& t = engine().trace;
  if (!t.on()) return;
  JsonWriter w = t.Event("connect");
  w.Field("fd", fd).Field("addr", FormatAddr(addr));
  if (!host.empty()) w.Field("host", host);
  w.Field("decision", decision).Field("reason", reason).Field("nonblocking", nonblocking);
  t.Emit(w);
}

static std::string Target(const Conn& c) {
  return c.host.find(':') != std::string::npos ? absl::StrCat("[", c.host, "]:", c.port)
                                                : absl::StrCat(c.host, ":", c.port);
}

void TraceTunnel(const Conn& c) {
  const Trace& t = engine().trace;
  if (!t.on()) return;
  JsonWriter w = t.Event("tunnel");
  w.Field("fd", c.fd).Field("target", Target(c));
  if (engine().settings.proxy) w.Field("proxy", engine().settings.proxy->Authority());
  w.Field("result", c.phase.load() == Phase::kFailed ? "failed" : "open");
  if (c.reply.result == ProxyReply::Result::kComplete) {
    w.Field("status", c.reply.status).Field("status_line", absl::StrCat(c.reply.status, " ", c.reply.reason));
    if (!c.reply.squid_error.empty()) w.Field("squid_error", c.reply.squid_error);
  }
  if (c.error) w.Field("errno", ErrnoName(c.error)).Field("reason", c.failure);
  w.Key("ms").Double(static_cast<double>(MonotonicMicros() - c.started_us) / 1000.0, 3);
  t.Emit(w);
}

void TraceAppTunnel(const Conn& c) {
  const Trace& t = engine().trace;
  if (!t.on()) return;
  JsonWriter w = t.Event("tunnel");
  w.Field("fd", c.fd).Field("target", c.host).Field("by", "application");
  if (c.reply.result == ProxyReply::Result::kComplete) {
    w.Field("status", c.reply.status).Field("status_line", absl::StrCat(c.reply.status, " ", c.reply.reason));
    if (!c.reply.squid_error.empty()) w.Field("squid_error", c.reply.squid_error);
  }
  w.Field("result", c.reply.status == 200 ? "open" : "failed");
  t.Emit(w);
}

void TraceTls(const Conn& c, absl::string_view sni, const std::vector<std::string>& alpn) {
  const Trace& t = engine().trace;
  if (!t.on()) return;
  JsonWriter w = t.Event("tls");
  w.Field("fd", c.fd).Field("host", c.host).Field("sni", sni).Key("alpn").BeginArray();
  for (const std::string& p : alpn) w.String(p);
  w.EndArray();
  t.Emit(w);
}

void TraceClose(const Conn& c, bool at_exit) {
  const Trace& t = engine().trace;
  if (!t.on()) return;
  JsonWriter w = t.Event("close");
  w.Field("fd", c.fd).Field("host", c.host).Field("port", static_cast<int>(c.port));
  w.Field("kind", c.kind == ConnKind::kTunnel ? "tunnel" : c.kind == ConnKind::kAppProxied ? "application-proxied" : "direct");
  w.Field("bytes_out", c.bytes_out.load()).Field("bytes_in", c.bytes_in.load());
  if (at_exit) w.Field("open_at_exit", true);
  w.Key("ms").Double(static_cast<double>(MonotonicMicros() - c.started_us) / 1000.0, 3);
  t.Emit(w);
}

}  // namespace awfshim
