// Several trace sources read as one: their events interleaved by timestamp.
#pragma once

#include <cstdint>
#include <memory>
#include <queue>
#include <utility>
#include <vector>

#include "trace_reader.h"

namespace awfshim::tracetool {

class Merger {
 public:
  explicit Merger(std::vector<std::unique_ptr<Source>> sources);
  // Starts a polling round: sources that had nothing are asked again.
  void NewRound();
  // The event with the smallest timestamp among the sources that have one now (ties: the
  // earlier source, then file order). Valid until the next call. Null when none has one.
  const Event* Next();
  void set_final();
  const std::vector<std::unique_ptr<Source>>& sources() const { return sources_; }
  bool any_unreadable() const;
  bool all_done() const;

 private:
  struct Later {
    bool operator()(const std::pair<int64_t, int>& a, const std::pair<int64_t, int>& b) const;
  };
  void Pull(int i);

  std::vector<std::unique_ptr<Source>> sources_;
  std::vector<Event> heads_;
  std::vector<uint8_t> has_head_;
  std::priority_queue<std::pair<int64_t, int>, std::vector<std::pair<int64_t, int>>, Later> heap_;
  int last_ = -1;  // the source whose head was handed out last
};

}  // namespace awfshim::tracetool
