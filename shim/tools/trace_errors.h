// `errors`: only what went wrong, each with what explains it: the connect decision for the same
// pid+fd (a tunnel: the connect until its close; an http exchange: the latest connect of that
// pid and fd at or before it, closed or not, as fds are reused), the proxy's answer, errno and
// reason, the configuration error behind a refusal. Context memory is bounded by the (pid, fd)
// pairs seen (at most kMaxContexts, then forgotten).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "trace_event.h"

namespace awfshim::tracetool {

class ErrorsReport {
 public:
  static constexpr size_t kMaxContexts = 100000;

  // names: the input names, by source index (for FILE:LINE locations).
  ErrorsReport(bool json, std::vector<std::string> names) : json_(json), names_(std::move(names)) {}

  // Appends to *out what e says went wrong; nothing when e is fine.
  void Add(const Event& e, std::string* out);
  // Human output only: "N problems" (or "no problems found").
  std::string Footer() const;
  uint64_t count() const { return count_; }

 private:
  struct Context {
    int source = 0;
    uint64_t line = 0;
    int64_t ts_us = 0;
    std::string text;
    bool closed = false;  // a close of that pid+fd came after it
  };
  struct Detail {
    std::string label, text;
  };
  std::string Location(int source, uint64_t line) const;
  void Emit(const Event& e, std::string_view kind, const std::string& what, const std::vector<Detail>& details,
            const Context* connect, const Context* config, std::string* out);
  const Context* ConnectFor(const Event& e) const;

  bool json_;
  std::vector<std::string> names_;
  uint64_t count_ = 0;
  absl::flat_hash_map<std::pair<int64_t, int64_t>, Context> connects_;  // (pid, fd)
  absl::flat_hash_map<int64_t, Context> config_errors_;                 // pid → first error
};

}  // namespace awfshim::tracetool
