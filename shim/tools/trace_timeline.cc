#include "trace_timeline.h"


namespace awfshim::tracetool {
namespace {

constexpr size_t kProcWidth = 22;
constexpr size_t kEvWidth = 7;

// Strings of an array field joined by sep.
std::string Joined(const Event& e, std::string_view key, std::string_view sep) {
  simdjson::dom::array a;
  std::string out;
  if (e.obj.at_key(key).get(a) != simdjson::SUCCESS) return out;
  for (auto x : a) {
    std::string_view s;
    if (x.get(s) == simdjson::SUCCESS) Append(&out, out.empty() ? "" : sep, s);
  }
  return out;
}

size_t ArraySize(const Event& e, std::string_view key) {
  simdjson::dom::array a;
  return e.obj.at_key(key).get(a) == simdjson::SUCCESS ? a.size() : 0;
}

std::string Fd(const Event& e) {
  std::optional<int64_t> fd = Int(e, "fd");
  return fd ? Cat("fd=", *fd, " ") : std::string();
}

std::string Bytes(std::optional<int64_t> n) { return n ? Cat(*n, " B") : std::string("? B"); }

std::string DescribeInit(const Event& e) {
  std::string s = Cat("version ", Str(e, "version", "?"));
  simdjson::dom::object settings;
  if (e.obj.at_key("settings").get(settings) == simdjson::SUCCESS) {
    Event inner = e;
    inner.obj = settings;
    std::string_view proxy = Str(inner, "proxy");
    Append(&s, ", proxy ", proxy.empty() ? "none" : proxy);
    if (std::string_view src = Str(inner, "proxy_source"); !src.empty()) Append(&s, " (", src, ")");
    Append(&s, ", dns ", Str(inner, "dns", "?"), ", route ", Joined(inner, "route", ","));
    if (std::string_view config = Str(inner, "config"); !config.empty()) Append(&s, ", config ", config);
  }
  if (Bool(e, "refuse_routed")) {
    size_t n = ArraySize(e, "errors");
    Append(&s, "; refusing routed connections (", n, n == 1 ? " configuration error)" : " configuration errors)");
  }
  if (size_t n = ArraySize(e, "warnings")) Append(&s, "; ", n, n == 1 ? " warning" : " warnings");
  return s;
}

std::string DescribeTunnel(const Event& e) {
  const bool app = Str(e, "by") == "application";
  const bool ok = Str(e, "result") == "open";
  std::string s = Fd(e);
  if (app) s += "application's CONNECT ";
  Append(&s, Str(e, "target", "?"));
  if (std::string_view proxy = Str(e, "proxy"); !proxy.empty()) Append(&s, " via ", proxy);
  s += ok ? " → " : " → FAILED ";
  std::string_view line = Str(e, "status_line");
  if (!line.empty()) {
    s += line;
  } else if (std::optional<int64_t> st = Int(e, "status")) {
    Append(&s, *st);
  }
  if (std::string_view sq = Str(e, "squid_error"); !sq.empty()) Append(&s, " (", sq, ")");
  if (std::string_view err = Str(e, "errno"); !err.empty()) Append(&s, line.empty() ? "" : ", ", err);
  if (std::string_view r = Str(e, "reason"); !r.empty()) Append(&s, ": ", r);
  if (std::optional<double> ms = Duration(e, "ms")) Append(&s, ok ? " in " : ", after ", FormatMs(*ms), " ms");
  return s;
}

std::string DescribeHttp(const Event& e) {
  if (UnparsedHttp(e)) {
    std::string s = Cat(Fd(e), Str(e, "protocol", "?"), " ", Str(e, "host"));
    if (std::string_view p = Str(e, "problem"); !p.empty()) Append(&s, "; ", p);
    return s;
  }
  std::string s = Cat(Fd(e), Str(e, "method", "?"), " ", Str(e, "host"), Str(e, "path"), " → ");
  std::optional<int64_t> st = Int(e, "status");
  s += st && *st > 0 ? Cat(*st) : "no response";
  if (InterruptedHttp(e)) s += " (interrupted)";
  if (std::string_view ct = Str(e, "content_type"); !ct.empty()) Append(&s, " ", ct);
  if (Has(e, "req_bytes") || Has(e, "resp_bytes")) {
    Append(&s, ", ", Bytes(Int(e, "req_bytes")), " out, ", Bytes(Int(e, "resp_bytes")), " in");
  }
  if (std::optional<double> t = Duration(e, "ttfb_ms")) Append(&s, ", ttfb ", FormatMs(*t), " ms");
  if (std::optional<double> ms = Duration(e, "ms")) Append(&s, ", ", FormatMs(*ms), " ms");
  if (std::string_view p = Str(e, "problem"); !p.empty()) Append(&s, "; ", p);
  return s;
}

}  // namespace

std::string ProcLabel(const Event& e) { return Cat(e.exe, "[", e.pid, "/", e.tid, "]"); }

std::string Describe(const Event& e) {
  switch (e.ev) {
    case Ev::kInit:
      return DescribeInit(e);
    case Ev::kTap:
      return Str(e, "outcome") == "patched" ? Cat("patched ", Str(e, "functions"))
                                            : Cat("patch refused: ", Str(e, "reason"));
    case Ev::kError: {
      std::string s = Cat(Str(e, "where", "?"), ": ", Str(e, "message"));
      if (std::string_view effect = Str(e, "effect"); !effect.empty()) Append(&s, " → ", effect);
      return s;
    }
    case Ev::kDns: {
      std::string s = Cat(Str(e, "host", "?"), " ", Str(e, "family", "?"), " ", Str(e, "mode", "?"), " → ");
      if (std::string_view err = Str(e, "error"); !err.empty()) {
        Append(&s, "error: ", err);
      } else {
        std::string addrs = Joined(e, "addrs", " ");
        s += addrs.empty() ? "no addresses" : addrs;
      }
      return s;
    }
    case Ev::kConnect: {
      std::string s = Cat(Fd(e), Str(e, "addr", "?"), " → ", Str(e, "decision", "?"));
      if (std::string_view host = Str(e, "host"); !host.empty()) Append(&s, " ", host);
      if (std::string_view r = Str(e, "reason"); !r.empty()) Append(&s, " (", r, ")");
      return s;
    }
    case Ev::kTunnel:
      return DescribeTunnel(e);
    case Ev::kTls: {
      std::string s = Cat(Fd(e), "sni=", Str(e, "sni", "-"));
      std::string_view host = Str(e, "host");
      if (!host.empty() && host != Str(e, "sni")) Append(&s, " host=", host);
      std::string alpn = Joined(e, "alpn", ",");
      Append(&s, " alpn=", alpn.empty() ? "-" : alpn);
      return s;
    }
    case Ev::kClose: {
      const HostPort hp = EventHost(e);  // an application's CONNECT: host:port in host, the proxy's port
      std::string s = Cat(Fd(e), JoinHostPort(hp.host.empty() ? "?" : hp.host, hp.port));
      Append(&s, " ", Str(e, "kind", "?"), ", ", Bytes(Int(e, "bytes_out")), " out, ",
                      Bytes(Int(e, "bytes_in")), " in");
      if (std::optional<double> ms = Duration(e, "ms")) Append(&s, ", ", FormatMs(*ms), " ms");
      if (Bool(e, "open_at_exit")) s += ", open at exit";
      if (Bool(e, "inherited")) s += ", the fork child's copy";
      return s;
    }
    case Ev::kHttp:
      return DescribeHttp(e);
    case Ev::kTraceDropped:
      return Cat(Int(e, "dropped").value_or(0), " events lost: ", Str(e, "reason", "?"));
    default:
      return std::string();
  }
}

std::string TimelineLine(const Event& e) {
  std::string proc = Clean(ProcLabel(e));
  std::string s = Cat(TimeOfDay(e.ts_us), " ", proc);
  s.append(proc.size() < kProcWidth ? kProcWidth - proc.size() : 0, ' ');
  std::string ev = Clean(e.ev_name);
  Append(&s, " ", ev);
  s.append(ev.size() < kEvWidth ? kEvWidth - ev.size() : 0, ' ');
  Append(&s, " ", Clean(Describe(e)), "\n");
  return s;
}

}  // namespace awfshim::tracetool
