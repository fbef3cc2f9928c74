// `summary`: per process, per host and per HTTP request group, aggregated while streaming.
// Memory grows with the number of distinct processes, hosts, request groups and error kinds,
// never with the number of lines: latency percentiles keep at most kMaxSamples per group
// (exact up to that, a reservoir sample beyond).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "trace_event.h"
#include "trace_reader.h"

namespace awfshim::tracetool {

class Summary {
 public:
  static constexpr size_t kMaxSamples = 10000;
  static constexpr size_t kMaxOutcomes = 16;     // distinct tunnel outcomes kept per host
  static constexpr size_t kMaxPorts = 16;        // ports listed per host
  static constexpr size_t kMaxErrorGroups = 1000;
  // Past these, further processes / hosts / request groups share one "(other …)" row each.
  static constexpr size_t kMaxProcs = 10000;
  static constexpr size_t kMaxHosts = 10000;
  static constexpr size_t kMaxHttpGroups = 10000;
  static constexpr size_t kMaxRows = 100;  // per table of the human and markdown output

  void Add(const Event& e);
  bool empty() const { return events_ == 0; }

  // quote: how a value taken from the trace (a host, an outcome) is shown in it.
  using Quote = std::string (*)(std::string_view);
  std::string Verdict(Quote quote = &Clean) const;
  std::string Human(const std::vector<std::unique_ptr<Source>>& sources) const;
  std::string Json(const std::vector<std::unique_ptr<Source>>& sources) const;
  // GitHub-flavoured markdown for $GITHUB_STEP_SUMMARY (trace_summary_markdown.cc): the facts
  // of Human, every value from the trace in a code span, so a trace cannot inject markup.
  std::string Markdown(const std::vector<std::unique_ptr<Source>>& sources) const;

 private:
  struct Proc {
    int64_t pid = 0;
    std::string exe;
    int64_t first_us = 0, last_us = 0;
    uint64_t events = 0, connects = 0, tunnel = 0, direct = 0, bypass = 0, refuse = 0, other = 0;
    uint64_t open = 0, failed = 0, errors = 0, http = 0;
    uint32_t next_same_pid = UINT32_MAX;  // another exe under the same pid (after an exec)
  };
  struct Outcome {
    bool ok = false;
    bool app = false;  // the application's own CONNECT
    int64_t status = 0;
    std::string squid_error;  // the name, e.g. ERR_ACCESS_DENIED
    std::string err;          // errno name
    uint64_t count = 0;
    std::string Label() const;
  };
  // One per host name, lowercased, whatever the port (EventHost): the ports are listed.
  struct Host {
    std::string name;
    std::vector<uint16_t> ports;  // sorted; at most kMaxPorts
    bool more_ports = false;
    uint64_t connects = 0, open = 0, failed = 0, closes = 0, open_at_exit = 0, http = 0;
    uint64_t bytes_out = 0, bytes_in = 0;
    std::vector<Outcome> outcomes;
  };
  struct HttpGroup {
    std::string host, method, path;
    int64_t status = 0;
    uint64_t count = 0, timed = 0;
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    std::vector<float> ms;  // at most kMaxSamples
    double Percentile(double p) const;
  };
  struct ErrorGroup {
    std::string exe, what;
    int64_t first_pid = 0;
    uint64_t count = 0;
  };

  Proc& ProcFor(const Event& e);
  Host& HostFor(const Event& e);
  void AddError(const Event& e, std::string what);
  void AddTunnel(const Event& e, Proc& p);
  void AddHttp(const Event& e, Proc& p);
  std::vector<const Host*> SortedHosts() const;
  std::vector<const HttpGroup*> SortedHttp() const;
  static std::vector<const Outcome*> SortedOutcomes(const Host& h);  // most frequent first

  uint64_t events_ = 0, config_errors_ = 0, dns_failures_ = 0, http_ = 0, http_failed_ = 0, http_unparsed_ = 0;
  uint64_t errors_dropped_ = 0;
  uint64_t http_interrupted_ = 0;  // incomplete: the process exited mid-exchange (not failed)
  uint64_t events_lost_ = 0;       // the sum of the trace_dropped events' "dropped"
  std::vector<Proc> procs_;
  absl::flat_hash_map<int64_t, uint32_t> proc_index_;  // pid → procs_ (the latest exe; chained)
  uint32_t last_proc_ = UINT32_MAX, other_proc_ = UINT32_MAX;
  std::vector<Host> hosts_;
  absl::flat_hash_map<std::string, uint32_t> host_index_;
  uint32_t last_host_ = UINT32_MAX, other_host_ = UINT32_MAX;
  std::vector<HttpGroup> http_groups_;
  absl::flat_hash_map<std::string, uint32_t> http_index_;
  uint32_t other_http_ = UINT32_MAX;
  std::string key_, host_;  // scratch
  std::vector<ErrorGroup> error_groups_;
  absl::flat_hash_map<std::string, uint32_t> error_index_;
};

}  // namespace awfshim::tracetool
