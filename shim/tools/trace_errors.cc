#include "trace_errors.h"

#include "awfshim/json_writer.h"
#include "trace_timeline.h"

namespace awfshim::tracetool {

std::string ErrorsReport::Location(int source, uint64_t line) const {
  std::string_view name = "?";
  if (source >= 0 && static_cast<size_t>(source) < names_.size()) name = names_[source];
  return Cat(name, ":", line);
}

const ErrorsReport::Context* ErrorsReport::ConnectFor(const Event& e) const {
  std::optional<int64_t> fd = Int(e, "fd");
  if (!fd) return nullptr;
  auto it = connects_.find(std::make_pair(e.pid, *fd));
  if (it == connects_.end() || it->second.ts_us > e.ts_us) return nullptr;
  // An http event may be written after its connection closed (an exchange open at exit).
  if (it->second.closed && e.ev != Ev::kHttp) return nullptr;
  return &it->second;
}

void ErrorsReport::Emit(const Event& e, std::string_view kind, const std::string& what,
                        const std::vector<Detail>& details, const Context* connect, const Context* config,
                        std::string* out) {
  ++count_;
  if (json_) {
    JsonWriter w;
    w.BeginObject().Field("file", A(names_[e.source])).Field("line", e.line).Field("ts", A(e.ts));
    w.Field("pid", e.pid).Field("tid", e.tid).Field("exe", A(e.exe)).Field("kind", A(kind)).Field("what", what);
    w.Key("event");
    WriteObject(w, e.obj);
    for (auto [key, c] : {std::pair{"connect", connect}, {"configuration_error", config}}) {
      if (c == nullptr) continue;
      w.Key(key).BeginObject().Field("file", A(names_[c->source])).Field("line", c->line);
      w.Field("ts", Iso(c->ts_us, 6)).Field("text", c->text).EndObject();
    }
    w.EndObject();
    *out += w.str();
    *out += '\n';
    return;
  }
  Append(out, Location(e.source, e.line), " ", TimeOfDay(e.ts_us), " ", Clean(ProcLabel(e)), " ",
                  Clean(what), "\n");
  auto line = [out](std::string_view label, const std::string& text) {
    std::string l(label);
    l.resize(std::max<size_t>(l.size(), 9), ' ');
    Append(out, "    ", l, Clean(text), "\n");
  };
  for (const Detail& d : details) line(d.label, d.text);
  if (connect != nullptr) {
    line("connect", Cat(Location(connect->source, connect->line), " ", TimeOfDay(connect->ts_us), " ",
                                 connect->text));
  }
  if (config != nullptr) {
    line("because", Cat(config->text, " (", Location(config->source, config->line), ")"));
  }
}

void ErrorsReport::Add(const Event& e, std::string* out) {
  switch (e.ev) {
    case Ev::kConnect: {
      std::optional<int64_t> fd = Int(e, "fd");
      std::string_view decision = Str(e, "decision");
      if (decision == "refuse") {
        auto cfg = config_errors_.find(e.pid);
        std::string_view host = Str(e, "host");
        std::string what = Cat("the shim refused the connection to ", Str(e, "addr", "?"));
        if (!host.empty()) Append(&what, " (", host, ")");
        std::vector<Detail> d;
        if (std::string_view r = Str(e, "reason"); !r.empty()) d.push_back({"reason", std::string(r)});
        bool config = Str(e, "reason").find("configuration") != std::string_view::npos;
        Emit(e, "connect_refused", what, d, nullptr,
             config && cfg != config_errors_.end() ? &cfg->second : nullptr, out);
      }
      if (fd) {
        if (connects_.size() >= kMaxContexts) connects_.clear();
        connects_[std::make_pair(e.pid, *fd)] = Context{e.source, e.line, e.ts_us, Describe(e)};
      }
      return;
    }
    case Ev::kClose:
      if (std::optional<int64_t> fd = Int(e, "fd")) {
        auto it = connects_.find(std::make_pair(e.pid, *fd));
        if (it != connects_.end()) it->second.closed = true;
      }
      return;
    case Ev::kTunnel: {
      if (Str(e, "result") == "open") return;
      const bool app = Str(e, "by") == "application";
      std::string_view target = Str(e, "target", "?");
      std::string_view line = Str(e, "status_line");
      std::optional<int64_t> status = Int(e, "status");
      std::string what = status ? Cat("the proxy refused ", app ? "the application's CONNECT to " : "the tunnel to ", target)
                                : Cat(app ? "the application's CONNECT to " : "the tunnel to ", target, " failed");
      std::vector<Detail> d;
      std::string_view proxy = Str(e, "proxy");
      if (status) {
        std::string answer = Cat(proxy.empty() ? "it" : proxy, " answered ", line.empty() ? Cat(*status) : std::string(line));
        if (std::string_view sq = Str(e, "squid_error"); !sq.empty()) Append(&answer, ", X-Squid-Error: ", sq);
        d.push_back({"proxy", answer});
      } else if (!proxy.empty()) {
        d.push_back({"proxy", std::string(proxy)});
      }
      std::string_view err = Str(e, "errno");
      std::string_view reason = Str(e, "reason");
      if (!err.empty() || !reason.empty()) {
        std::string text = Cat(err.empty() ? "" : err, !err.empty() && !reason.empty() ? ": " : "", reason);
        if (std::optional<double> ms = Duration(e, "ms")) Append(&text, " (after ", FormatMs(*ms), " ms)");
        d.push_back({err.empty() ? "reason" : "errno", text});
      }
      Emit(e, status ? "tunnel_refused" : "tunnel_failed", what, d, ConnectFor(e), nullptr, out);
      return;
    }
    case Ev::kError: {
      std::string text = Cat(Str(e, "where", "?"), ": ", Str(e, "message"));
      if (!config_errors_.contains(e.pid)) {
        if (config_errors_.size() >= kMaxContexts) config_errors_.clear();
        config_errors_[e.pid] = Context{e.source, e.line, e.ts_us, text};
      }
      std::vector<Detail> d;
      if (std::string_view effect = Str(e, "effect"); !effect.empty()) d.push_back({"effect", std::string(effect)});
      Emit(e, "configuration_error", Cat("configuration error: ", text), d, nullptr, nullptr, out);
      return;
    }
    case Ev::kTap:
      if (Str(e, "outcome") != "patched") {
        Emit(e, "tap_refused", Cat("TLS tap off in this process: ", Str(e, "reason", "?")), {}, nullptr, nullptr, out);
      }
      return;
    case Ev::kInit: {
      simdjson::dom::array warnings;
      if (e.obj.at_key("warnings").get(warnings) != simdjson::SUCCESS) return;
      for (auto x : warnings) {
        std::string_view s;
        if (x.get(s) == simdjson::SUCCESS) Emit(e, "warning", Cat("warning: ", s), {}, nullptr, nullptr, out);
      }
      return;
    }
    case Ev::kDns: {
      std::string_view err = Str(e, "error");
      if (err.empty()) return;
      std::vector<Detail> d = {{"lookup", Cat("family ", Str(e, "family", "?"), ", mode ", Str(e, "mode", "?"))}};
      Emit(e, "dns_error", Cat("name lookup of ", Str(e, "host", "?"), " failed: ", err), d, nullptr, nullptr, out);
      return;
    }
    case Ev::kHttp: {
      const bool interrupted = InterruptedHttp(e);
      if (!interrupted && !FailedHttp(e)) return;
      std::optional<int64_t> status = Int(e, "status");
      std::string what = Cat("http ", Str(e, "method", "?"), " ", Str(e, "host"), Str(e, "path"), " → ",
                                      status && *status > 0 ? Cat(*status) : std::string("no response"));
      if (interrupted) what += " (interrupted)";
      Emit(e, interrupted ? "http_interrupted" : "http_error", what, {{"request", Describe(e)}}, ConnectFor(e),
           nullptr, out);
      return;
    }
    case Ev::kTraceDropped: {
      std::vector<Detail> d;
      Emit(e, "trace_dropped",
           Cat("the trace lost ", Int(e, "dropped").value_or(0), " events: ", Str(e, "reason", "?")), d, nullptr,
           nullptr, out);
      return;
    }
    default:
      return;
  }
}

std::string ErrorsReport::Footer() const {
  if (count_ == 0) return "no problems found\n";
  return Cat(count_, count_ == 1 ? " problem\n" : " problems\n");
}

}  // namespace awfshim::tracetool
