#include "trace_summary.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"

namespace awfshim::tracetool {
namespace {

std::string_view PathOnly(std::string_view path) { return path.substr(0, path.find_first_of("?#")); }

}  // namespace

std::string Summary::Outcome::Label() const {
  std::string s;
  if (status != 0) s = Cat(status);
  if (!squid_error.empty()) Append(&s, s.empty() ? "" : " ", squid_error);
  if (!ok && status == 0) Append(&s, s.empty() ? "" : " ", err.empty() ? "failed" : err);
  if (app) s += " (application's CONNECT)";
  return s;
}

double Summary::HttpGroup::Percentile(double p) const {
  if (ms.empty()) return NAN;
  std::vector<float> v(ms);
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  size_t i = rank == 0 ? 0 : rank - 1;
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(i), v.end());
  return v[i];
}

Summary::Proc& Summary::ProcFor(const Event& e) {
  if (last_proc_ != UINT32_MAX && procs_[last_proc_].pid == e.pid && procs_[last_proc_].exe == e.exe) {
    return procs_[last_proc_];
  }
  auto it = proc_index_.find(e.pid);
  const uint32_t first = it == proc_index_.end() ? UINT32_MAX : it->second;
  for (uint32_t i = first; i != UINT32_MAX; i = procs_[i].next_same_pid) {
    if (procs_[i].exe == e.exe) return procs_[last_proc_ = i];
  }
  if (procs_.size() >= kMaxProcs) {  // the rest share one row
    if (other_proc_ == UINT32_MAX) {
      other_proc_ = static_cast<uint32_t>(procs_.size());
      Proc& p = procs_.emplace_back();
      p.pid = -1;
      p.exe = "(other processes)";
      p.first_us = p.last_us = e.ts_us;
    }
    return procs_[other_proc_];
  }
  last_proc_ = static_cast<uint32_t>(procs_.size());
  proc_index_[e.pid] = last_proc_;
  Proc& p = procs_.emplace_back();
  p.pid = e.pid;
  p.exe = std::string(e.exe);
  p.first_us = p.last_us = e.ts_us;
  p.next_same_pid = first;
  return p;
}

Summary::Host& Summary::HostFor(const Event& e) {
  const HostPort hp = EventHost(e);
  host_.assign(hp.host.empty() ? "?" : hp.host);
  absl::AsciiStrToLower(&host_);
  Host* h;
  if (last_host_ != UINT32_MAX && hosts_[last_host_].name == host_) {
    h = &hosts_[last_host_];
  } else if (auto it = host_index_.find(host_); it != host_index_.end()) {
    h = &hosts_[last_host_ = it->second];
  } else if (hosts_.size() >= kMaxHosts) {  // the rest share one row
    if (other_host_ == UINT32_MAX) {
      other_host_ = static_cast<uint32_t>(hosts_.size());
      hosts_.emplace_back().name = "(other hosts)";
    }
    h = &hosts_[other_host_];
  } else {
    last_host_ = static_cast<uint32_t>(hosts_.size());
    host_index_.emplace(host_, last_host_);
    h = &hosts_.emplace_back();
    h->name = host_;
  }
  if (hp.port > 0 && hp.port <= 65535) {
    const auto port = static_cast<uint16_t>(hp.port);
    auto at = std::lower_bound(h->ports.begin(), h->ports.end(), port);
    if (at == h->ports.end() || *at != port) {
      if (h->ports.size() < kMaxPorts) {
        h->ports.insert(at, port);
      } else {
        h->more_ports = true;
      }
    }
  }
  return *h;
}

void Summary::AddError(const Event& e, std::string what) {
  key_ = Cat(e.exe, "\n", what);
  auto it = error_index_.find(key_);
  if (it != error_index_.end()) {
    ++error_groups_[it->second].count;
    return;
  }
  if (error_groups_.size() >= kMaxErrorGroups) {
    ++errors_dropped_;
    return;
  }
  error_index_.emplace(key_, static_cast<uint32_t>(error_groups_.size()));
  error_groups_.push_back(ErrorGroup{std::string(e.exe), std::move(what), e.pid, 1});
}

void Summary::AddTunnel(const Event& e, Proc& p) {
  const Event::Hot& f = e.hot;
  std::string_view target = f.target;
  Host& h = HostFor(e);
  const bool ok = f.result == "open";
  const bool app = f.by == "application";
  const int64_t status = f.status.value_or(0);
  const std::string_view squid = SquidErrorName(f.squid_error);
  const std::string_view err = f.err;
  ok ? (++h.open, ++p.open) : (++h.failed, ++p.failed);
  Outcome* o = nullptr;
  for (Outcome& x : h.outcomes) {
    if (x.ok == ok && x.app == app && x.status == status && x.squid_error == squid && x.err == err) o = &x;
  }
  if (o == nullptr && h.outcomes.size() < kMaxOutcomes) {
    o = &h.outcomes.emplace_back();
    *o = Outcome{ok, app, status, std::string(squid), std::string(err), 0};
  }
  if (o == nullptr) {  // too many distinct outcomes: lump the rest together
    o = &h.outcomes.back();
  }
  ++o->count;
  if (!ok) {
    std::string what = Cat(app ? "the application's CONNECT " : "tunnel ", target, ": ");
    std::string_view line = Str(e, "status_line");
    if (!line.empty()) Append(&what, line);
    if (std::string_view s = Str(e, "squid_error"); !s.empty()) Append(&what, " (", s, ")");
    if (!err.empty()) Append(&what, line.empty() ? "" : ", ", err);
    if (std::string_view r = Str(e, "reason"); !r.empty()) Append(&what, ": ", r);
    AddError(e, std::move(what));
  }
}

void Summary::AddHttp(const Event& e, Proc& p) {
  ++p.http;
  std::string_view host = e.hot.host.empty() ? "?" : e.hot.host;
  std::string_view method = e.hot.method;
  std::string_view path = PathOnly(e.hot.path);
  int64_t status = e.hot.status.value_or(0);
  Host& h = HostFor(e);  // the request groups go by the same host as the Hosts rows
  ++h.http;
  const bool unparsed = method.empty();
  if (unparsed) {  // e.g. HTTP/2: the tap saw the connection, not its requests
    ++http_unparsed_;
    method = Str(e, "protocol", "?");
    path = "(not parsed)";
  } else {
    ++http_;
  }
  if (InterruptedHttp(e)) {
    ++http_interrupted_;
    AddError(e, Cat("http ", method, " ", host, path, ": ", status <= 0 ? "no response" : Cat(status),
                    " (interrupted)"));
  } else if (FailedHttp(e)) {
    ++http_failed_;
    AddError(e, Cat("http ", method, " ", host, path, ": ", status <= 0 ? "no response" : Cat(status)));
  }
  key_.clear();
  Append(&key_, h.name, "\n", method, "\n", path, "\n", status);
  auto it = http_index_.find(key_);
  HttpGroup* g;
  if (it != http_index_.end()) {
    g = &http_groups_[it->second];
  } else if (http_groups_.size() >= kMaxHttpGroups) {  // the rest share one group
    if (other_http_ == UINT32_MAX) {
      other_http_ = static_cast<uint32_t>(http_groups_.size());
      g = &http_groups_.emplace_back();
      // append, not operator=: GCC 12 -O3 reports a false -Wrestrict in string::_M_replace.
      g->host.append("(other requests)");
      g->method.push_back('*');
    }
    g = &http_groups_[other_http_];
  } else {
    http_index_.emplace(key_, static_cast<uint32_t>(http_groups_.size()));
    g = &http_groups_.emplace_back();
    g->host = h.name;
    g->method = std::string(method);
    g->path = std::string(path);
    g->status = status;
  }
  ++g->count;
  std::optional<double> ms = Duration(e.hot.ms);
  if (ms && !unparsed) {  // no request, no latency: the tap writes 0 for a connection it could not parse
    ++g->timed;
    if (g->ms.size() < kMaxSamples) {
      g->ms.push_back(static_cast<float>(*ms));
    } else {  // reservoir sampling (algorithm R), deterministic
      g->rng ^= g->rng << 13;
      g->rng ^= g->rng >> 7;
      g->rng ^= g->rng << 17;
      uint64_t j = g->rng % g->timed;
      if (j < kMaxSamples) g->ms[j] = static_cast<float>(*ms);
    }
  }
}

void Summary::Add(const Event& e) {
  ++events_;
  Proc& p = ProcFor(e);
  ++p.events;
  p.first_us = std::min(p.first_us, e.ts_us);
  p.last_us = std::max(p.last_us, e.ts_us);
  switch (e.ev) {
    case Ev::kConnect: {
      ++p.connects;
      ++HostFor(e).connects;
      std::string_view d = e.hot.decision;
      if (d == "tunnel") {
        ++p.tunnel;
      } else if (d == "direct") {
        ++p.direct;
      } else if (d == "bypass") {
        ++p.bypass;
      } else if (d == "refuse") {
        ++p.refuse;
        AddError(e, Cat("connect ", Str(e, "host", Str(e, "addr")), " refused by the shim: ",
                                 Str(e, "reason")));
      } else {
        ++p.other;
      }
      break;
    }
    case Ev::kTunnel:
      AddTunnel(e, p);
      break;
    case Ev::kClose: {
      Host& h = HostFor(e);
      // A fork child's copy closing ends nothing: only its bytes count.
      if (!Bool(e, "inherited")) ++h.closes;
      h.bytes_out += static_cast<uint64_t>(std::max<int64_t>(0, e.hot.bytes_out.value_or(0)));
      h.bytes_in += static_cast<uint64_t>(std::max<int64_t>(0, e.hot.bytes_in.value_or(0)));
      if (e.hot.open_at_exit) ++h.open_at_exit;
      break;
    }
    case Ev::kDns:
      if (e.hot.has_error) {
        ++dns_failures_;
        AddError(e, Cat("name lookup ", Str(e, "host"), ": ", Str(e, "error")));
      }
      break;
    case Ev::kTap:
      if (Str(e, "outcome") != "patched") AddError(e, Cat("TLS tap off: ", Str(e, "reason")));
      break;
    case Ev::kError:
      ++config_errors_;
      ++p.errors;
      AddError(e, Cat("configuration error: ", Str(e, "where"), ": ", Str(e, "message"),
                               Has(e, "effect") ? Cat(" (", Str(e, "effect"), ")") : ""));
      break;
    case Ev::kInit: {
      simdjson::dom::array warnings;
      if (e.obj.at_key("warnings").get(warnings) == simdjson::SUCCESS) {
        for (auto w : warnings) {
          std::string_view s;
          if (w.get(s) == simdjson::SUCCESS) AddError(e, Cat("warning: ", s));
        }
      }
      break;
    }
    case Ev::kHttp:
      AddHttp(e, p);
      break;
    case Ev::kTraceDropped:
      events_lost_ += static_cast<uint64_t>(std::max<int64_t>(0, Int(e, "dropped").value_or(0)));
      AddError(e, Cat("trace events lost: ", Str(e, "reason", "?")));
      break;
    default:
      break;
  }
}

}  // namespace awfshim::tracetool
