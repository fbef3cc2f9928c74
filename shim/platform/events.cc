#include "events.h"

#include <arpa/inet.h>
#include <string.h>

#include "absl/strings/str_cat.h"

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

void Events::Dns(absl::string_view host, int family, absl::string_view mode, const addrinfo* answers, int rc) const {
  if (!trace_.on()) return;
  JsonWriter w = trace_.Event("dns");
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
  trace_.Emit(w);
}

void Events::Connect(int fd, const sockaddr* addr, absl::string_view host, absl::string_view decision,
                  absl::string_view reason, bool nonblocking) const {
  if (!trace_.on()) return;
  JsonWriter w = trace_.Event("connect");
  w.Field("fd", fd).Field("addr", FormatAddr(addr));
  if (!host.empty()) w.Field("host", host);
  w.Field("decision", decision).Field("reason", reason).Field("nonblocking", nonblocking);
  trace_.Emit(w);
}

// The proxy's answer, as both kinds of tunnel event report it.
static void AddReply(JsonWriter& w, const ProxyReply& reply) {
  if (reply.result != ProxyReply::Result::kComplete) return;
  w.Field("status", reply.status).Field("status_line", absl::StrCat(reply.status, " ", reply.reason));
  if (!reply.squid_error.empty()) w.Field("squid_error", reply.squid_error);
}

void Events::Tunnel(const Conn& c) const {
  if (!trace_.on()) return;
  JsonWriter w = trace_.Event("tunnel");
  w.Field("fd", c.fd).Field("target", HostPort(c.host, c.port));
  if (settings_.proxy) w.Field("proxy", settings_.proxy->Authority());
  w.Field("result", c.phase.load() == Phase::kFailed ? "failed" : "open");
  AddReply(w, c.reply);
  if (c.error) w.Field("errno", ErrnoName(c.error)).Field("reason", c.failure);
  w.Key("ms").Millis(MonotonicMicros() - c.started_us);
  trace_.Emit(w);
}

void Events::AppTunnel(const Conn& c) const {
  if (!trace_.on()) return;
  JsonWriter w = trace_.Event("tunnel");
  w.Field("fd", c.fd).Field("target", c.host).Field("by", "application");
  AddReply(w, c.reply);
  w.Field("result", c.reply.status == 200 ? "open" : "failed");
  trace_.Emit(w);
}

void Events::Tls(const Conn& c, absl::string_view sni, const std::vector<std::string>& alpn) const {
  if (!trace_.on()) return;
  JsonWriter w = trace_.Event("tls");
  w.Field("fd", c.fd).Field("host", c.host).Field("sni", sni).Key("alpn").BeginArray();
  for (const std::string& p : alpn) w.String(p);
  w.EndArray();
  trace_.Emit(w);
}

void Events::Close(const Conn& c, bool at_exit) const {
  if (!trace_.on()) return;
  JsonWriter w = trace_.Event("close");
  w.Field("fd", c.fd).Field("host", c.host).Field("port", static_cast<int>(c.port));
  w.Field("kind", c.kind == ConnKind::kTunnel ? "tunnel" : c.kind == ConnKind::kAppProxied ? "application-proxied" : "direct");
  w.Field("bytes_out", c.bytes_out.load()).Field("bytes_in", c.bytes_in.load());
  if (at_exit) w.Field("open_at_exit", true);
  if (c.inherited) w.Field("inherited", true);
  w.Key("ms").Millis(MonotonicMicros() - c.started_us);
  trace_.Emit(w);
}

}  // namespace awfshim

namespace awfshim {

// In microseconds, for JsonWriter::Millis; -1 ms when either end is missing.
static int64_t Span(int64_t from_us, int64_t to_us) { return from_us && to_us >= from_us ? to_us - from_us : -1000; }

void Events::Http(const HttpExchange& x, absl::string_view sni, int fd) const {
  if (!trace_.on()) return;
  JsonWriter w = trace_.Event("http");
  if (fd >= 0) w.Field("fd", fd);
  w.Field("host", x.host.empty() ? std::string(sni) : x.host).Field("sni", sni);
  w.Field("method", x.method).Field("path", x.path).Field("status", x.status);
  if (!x.content_type.empty()) w.Field("content_type", x.content_type);
  if (!x.request_content_type.empty()) w.Field("request_content_type", x.request_content_type);
  w.Field("req_bytes", x.request_body_bytes).Field("resp_bytes", x.response_body_bytes);
  w.Key("ttfb_ms").Millis(Span(x.request_start_us, x.first_response_byte_us));
  w.Key("ms").Millis(Span(x.request_start_us, x.end_us));
  if (x.sse) w.Field("sse", true);
  if (!x.body_summary_json.empty()) w.Key("request_summary").Raw(x.body_summary_json);
  if (x.usage) {
    w.Key("usage").BeginObject();
    if (x.usage->input_tokens >= 0) w.Field("input_tokens", x.usage->input_tokens);
    if (x.usage->output_tokens >= 0) w.Field("output_tokens", x.usage->output_tokens);
    if (x.usage->total_tokens >= 0) w.Field("total_tokens", x.usage->total_tokens);
    w.EndObject();
  }
  if (!x.problem.empty()) w.Field("problem", x.problem);
  if (x.incomplete) w.Field("incomplete", true);
  trace_.Emit(w);
}

void Events::Http2(absl::string_view sni, int fd) const {
  if (!trace_.on()) return;
  JsonWriter w = trace_.Event("http");
  if (fd >= 0) w.Field("fd", fd);
  w.Field("host", sni).Field("sni", sni).Field("protocol", "h2").Field("problem", "HTTP/2 is not parsed");
  trace_.Emit(w);
}

}  // namespace awfshim
