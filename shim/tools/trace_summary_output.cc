// Summary output: the verdict, the human tables and the JSON document.
#include <algorithm>
#include <cmath>
#include <tuple>

#include "absl/strings/str_join.h"
#include "awfshim/json_writer.h"
#include "text_table.h"
#include "trace_summary.h"

namespace awfshim::tracetool {
namespace {

std::string Plural(uint64_t n, std::string_view one, std::string_view many) {
  return Cat(n, " ", n == 1 ? one : many);
}

}  // namespace

std::vector<const Summary::Host*> Summary::SortedHosts() const {
  // Every row: an event made it (a fork child's copy closing may be its only one, with bytes).
  std::vector<const Host*> v;
  for (const Host& h : hosts_) v.push_back(&h);
  std::sort(v.begin(), v.end(), [](const Host* a, const Host* b) { return a->name < b->name; });
  return v;
}

std::vector<const Summary::HttpGroup*> Summary::SortedHttp() const {
  std::vector<const HttpGroup*> v;
  for (const HttpGroup& g : http_groups_) v.push_back(&g);
  std::sort(v.begin(), v.end(), [](const HttpGroup* a, const HttpGroup* b) {
    return std::tie(a->host, a->path, a->method, a->status) < std::tie(b->host, b->path, b->method, b->status);
  });
  return v;
}

std::vector<const Summary::Outcome*> Summary::SortedOutcomes(const Host& h) {
  std::vector<const Outcome*> os;
  for (const Outcome& o : h.outcomes) os.push_back(&o);
  std::stable_sort(os.begin(), os.end(), [](const Outcome* a, const Outcome* b) { return a->count > b->count; });
  return os;
}

std::string Summary::Verdict(Quote quote) const {
  if (events_ == 0) return "no events";
  uint64_t tunnelled = 0, shim_refused = 0;
  std::vector<std::string> refused, unreachable;
  size_t refused_hosts = 0, unreachable_hosts = 0;
  for (const Host* h : SortedHosts()) {
    tunnelled += h->open > 0;
    bool r = false, u = false;
    for (const Outcome& o : h->outcomes) {
      if (o.ok) continue;
      (o.status != 0 ? r : u) = true;
      (o.status != 0 ? refused : unreachable).push_back(Cat(quote(h->name), " ", quote(o.Label())));
    }
    refused_hosts += r;
    unreachable_hosts += u;
  }
  for (const Proc& p : procs_) shim_refused += p.refuse;
  auto list = [](const std::vector<std::string>& v) {
    std::vector<std::string> shown(v.begin(), v.begin() + static_cast<ptrdiff_t>(std::min<size_t>(v.size(), 5)));
    std::string s = absl::StrJoin(shown, ", ");
    if (v.size() > 5) Append(&s, " and ", v.size() - 5, " more");
    return s;
  };
  std::string s = tunnelled == 0 ? "no host tunnelled" : Plural(tunnelled, "host tunnelled", "hosts tunnelled");
  if (refused_hosts) Append(&s, ", ", refused_hosts, " refused by the proxy: ", list(refused));
  if (unreachable_hosts) Append(&s, ", ", unreachable_hosts, " not reached through the proxy: ", list(unreachable));
  if (shim_refused) {
    Append(&s, ", ", Plural(shim_refused, "connection", "connections"), " refused by the shim");
  }
  if (config_errors_) Append(&s, ", ", Plural(config_errors_, "configuration error", "configuration errors"));
  if (dns_failures_) Append(&s, ", ", Plural(dns_failures_, "failed name lookup", "failed name lookups"));
  if (http_) {
    Append(&s, ", ", Plural(http_, "HTTP request", "HTTP requests"));
    if (http_failed_ && http_interrupted_) {
      Append(&s, " (", http_failed_, " failed, ", http_interrupted_, " interrupted)");
    } else if (http_failed_) {
      Append(&s, " (", http_failed_, " failed)");
    } else if (http_interrupted_) {
      Append(&s, " (", http_interrupted_, " interrupted)");
    }
  }
  if (http_unparsed_) {
    Append(&s, ", ", Plural(http_unparsed_, "HTTP connection", "HTTP connections"), " not parsed");
  }
  if (events_lost_) Append(&s, ", ", Plural(events_lost_, "trace event", "trace events"), " lost");
  return s;
}

std::string Summary::Human(const std::vector<std::unique_ptr<Source>>& sources) const {
  std::string out = Verdict() + "\n";
  auto more = [&out](size_t total) {
    if (total > kMaxRows) Append(&out, "  … ", total - kMaxRows, " more (see --json)\n");
  };
  if (!procs_.empty()) {
    TextTable t({"pid", "exe", "started", "connects", "tunnel", "direct", "bypass", "refused", "failed", "errors"},
                "rllrrrrrrr");
    for (size_t i = 0; i < procs_.size() && i < kMaxRows; ++i) {
      const Proc& p = procs_[i];
      t.Row({p.pid < 0 ? std::string("…") : Cat(p.pid), Clean(p.exe), TimeOfDay(p.first_us), Cat(p.connects),
             Cat(p.tunnel), Cat(p.direct), Cat(p.bypass), Cat(p.refuse),
             Cat(p.failed), Cat(p.errors)});
    }
    out += "\nProcesses\n" + t.Render();
    more(procs_.size());
  }
  std::vector<const Host*> hosts = SortedHosts();
  if (!hosts.empty()) {
    TextTable t({"host", "ports", "connects", "open", "failed", "bytes out", "bytes in", "tunnels by outcome"},
                "llrrrrrl");
    for (size_t i = 0; i < hosts.size() && i < kMaxRows; ++i) {
      const Host& h = *hosts[i];
      std::string outcomes;
      for (const Outcome* o : SortedOutcomes(h)) {
        Append(&outcomes, outcomes.empty() ? "" : ", ", Clean(o->Label()), " ×", o->count);
      }
      std::string ports = absl::StrJoin(h.ports, ", ");
      if (h.more_ports) ports += ", …";
      t.Row({Clean(h.name), ports.empty() ? "-" : ports, Cat(h.connects), Cat(h.open), Cat(h.failed),
             Cat(h.bytes_out), Cat(h.bytes_in), outcomes});
    }
    out += "\nHosts\n" + t.Render();
    more(hosts.size());
  }
  if (events_ != 0) {
    std::vector<const HttpGroup*> groups = SortedHttp();
    if (groups.empty()) {
      out += "\nHTTP requests: none (no http events in the trace)\n";
    } else {
      TextTable t({"host", "method", "path", "status", "count", "p50 ms", "p90 ms", "p99 ms"}, "lllrrrrr");
      auto pct = [](const HttpGroup& g, double p) { return g.ms.empty() ? std::string("-") : FormatMs(g.Percentile(p)); };
      for (size_t i = 0; i < groups.size() && i < kMaxRows; ++i) {
        const HttpGroup& g = *groups[i];
        t.Row({Clean(g.host), Clean(g.method), Clean(g.path), g.status > 0 ? Cat(g.status) : std::string("-"), Cat(g.count),
               pct(g, 50), pct(g, 90), pct(g, 99)});
      }
      out += "\nHTTP requests\n" + t.Render();
      more(groups.size());
    }
    if (error_groups_.empty()) {
      out += "\nErrors: none\n";
    } else {
      TextTable t({"count", "exe", "what"}, "rll");
      for (size_t i = 0; i < error_groups_.size() && i < kMaxRows; ++i) {
        const ErrorGroup& g = error_groups_[i];
        t.Row({Cat(g.count), Clean(g.exe), Clean(g.what)});
      }
      out += "\nErrors\n" + t.Render();
      more(error_groups_.size());
      if (errors_dropped_) {
        Append(&out, "  … and ", errors_dropped_, " more of further kinds (only the first ", kMaxErrorGroups,
               " kinds are kept)\n");
      }
    }
  }
  out += "\nInput\n";
  for (const auto& src : sources) {
    const InputStats& s = src->stats();
    Append(&out, "  ", Clean(src->name()), ": ", Plural(s.lines, "line", "lines"), ", ",
                    Plural(s.events, "event", "events"));
    if (s.unreadable) Append(&out, ", ", s.unreadable, " unreadable");
    if (s.truncated_last) out += " (truncated last line)";
    if (s.other_schema) Append(&out, ", ", s.other_schema, " of another schema");
    if (s.unknown) Append(&out, ", ", Plural(s.unknown, "unknown event", "unknown events"));
    out += "\n";
  }
  return out;
}

std::string Summary::Json(const std::vector<std::unique_ptr<Source>>& sources) const {
  JsonWriter w;
  w.BeginObject().Field("verdict", Verdict());
  w.Key("processes").BeginArray();
  for (const Proc& p : procs_) {
    w.BeginObject().Key("pid");
    p.pid < 0 ? w.Null() : w.Int(p.pid);
    w.Field("exe", A(p.exe));
    w.Field("first_ts", Iso(p.first_us, 6)).Field("last_ts", Iso(p.last_us, 6)).Field("events", p.events);
    w.Key("connects").BeginObject().Field("total", p.connects).Field("tunnel", p.tunnel).Field("direct", p.direct);
    w.Field("bypass", p.bypass).Field("refuse", p.refuse).Field("other", p.other).EndObject();
    w.Key("tunnels").BeginObject().Field("open", p.open).Field("failed", p.failed).EndObject();
    w.Field("errors", p.errors).Field("http_requests", p.http).EndObject();
  }
  w.EndArray().Key("hosts").BeginArray();
  for (const Host* h : SortedHosts()) {
    w.BeginObject().Field("host", A(h->name)).Key("ports").BeginArray();
    for (uint16_t port : h->ports) w.Int(port);
    w.EndArray();
    if (h->more_ports) w.Field("more_ports", true);  // past kMaxPorts
    w.Field("connects", h->connects);
    w.Key("tunnels").BeginObject().Field("open", h->open).Field("failed", h->failed).EndObject();
    w.Key("outcomes").BeginArray();
    for (const Outcome& o : h->outcomes) {
      w.BeginObject().Field("outcome", o.Label()).Field("result", o.ok ? "open" : "failed");
      if (o.status) w.Field("status", o.status);
      if (!o.squid_error.empty()) w.Field("squid_error", A(o.squid_error));
      if (!o.err.empty()) w.Field("errno", A(o.err));
      if (o.app) w.Field("by", "application");
      w.Field("count", o.count).EndObject();
    }
    w.EndArray().Field("bytes_out", h->bytes_out).Field("bytes_in", h->bytes_in).Field("closes", h->closes);
    w.Field("open_at_exit", h->open_at_exit).Field("http_requests", h->http).EndObject();
  }
  w.EndArray().Key("http").BeginArray();
  for (const HttpGroup* g : SortedHttp()) {
    w.BeginObject().Field("host", A(g->host)).Field("method", A(g->method)).Field("path", A(g->path));
    w.Field("status", g->status).Field("count", g->count);
    for (auto [key, p] : {std::pair{"p50_ms", 50.0}, {"p90_ms", 90.0}, {"p99_ms", 99.0}}) {
      w.Key(key);
      g->ms.empty() ? w.Null() : w.Double(g->Percentile(p), 3);
    }
    w.Field("samples", static_cast<uint64_t>(g->ms.size())).EndObject();
  }
  w.EndArray().Key("errors").BeginArray();
  for (const ErrorGroup& g : error_groups_) {
    w.BeginObject().Field("exe", A(g.exe)).Field("first_pid", g.first_pid).Field("what", A(g.what));
    w.Field("count", g.count).EndObject();
  }
  w.EndArray().Field("errors_not_grouped", errors_dropped_).Field("http_interrupted", http_interrupted_);
  w.Field("trace_events_lost", events_lost_).Key("input").BeginArray();
  for (const auto& src : sources) {
    const InputStats& s = src->stats();
    w.BeginObject().Field("file", A(src->name())).Field("lines", s.lines).Field("events", s.events);
    w.Field("unreadable", s.unreadable).Field("truncated_last_line", s.truncated_last);
    w.Field("other_schema", s.other_schema).Key("unknown_events").BeginObject();
    for (const auto& [name, n] : s.unknown_names) w.Field(A(name), n);
    w.EndObject().EndObject();
  }
  w.EndArray().EndObject();
  return w.str() + "\n";
}

}  // namespace awfshim::tracetool
