// The exchanges of one HTTP/1.1 connection for the tracker (http1.cc), in request order: open
// from a request head (or a response that came without one) until both messages have ended, then
// completed in that order for the caller to take. At most kMaxPendingExchanges are open; past
// kMaxCompletedExchanges untaken, further completed ones are only counted (dropped).
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "awfshim/http1.h"

namespace awfshim::http1_detail {

struct Pending {
  HttpExchange ex;
  bool request_done = false;
  bool response_done = false;
  bool head_request = false;     // HEAD: the response has no body
  bool connect_request = false;  // CONNECT: a 2xx response turns the connection into a tunnel
  bool chat = false;             // to a chat endpoint: a JSON response is scanned for usage
  bool summarize = false;        // the body is kept (up to kMaxChatBody) for its summary
  std::string body;

  bool done() const { return request_done && response_done; }
};

class Exchanges {
 public:
  bool full() const { return open_.size() >= kMaxPendingExchanges; }

  // Opens p after the others; returns its sequence number, which stays valid until it completes.
  uint64_t Open(Pending&& p) {
    open_.push_back(std::move(p));
    return first_seq_ + open_.size() - 1;
  }
  Pending& At(uint64_t seq) { return open_[static_cast<size_t>(seq - first_seq_)]; }

  // Responses answer requests in order: the first open exchange without one, its sequence number
  // in *seq; null when every open exchange has its response.
  Pending* FirstAwaitingResponse(uint64_t* seq) {
    auto it = std::find_if(open_.begin(), open_.end(), [](const Pending& p) { return !p.response_done; });
    if (it == open_.end()) return nullptr;
    *seq = first_seq_ + static_cast<uint64_t>(it - open_.begin());
    return &*it;
  }

  void Complete(HttpExchange&& ex) {
    if (completed_.size() >= kMaxCompletedExchanges) {
      dropped_++;
      return;
    }
    completed_.push_back(std::move(ex));
  }

  // Completes the exchanges at the front whose messages both ended.
  void Flush() {
    while (!open_.empty() && open_.front().done()) {
      Complete(std::move(open_.front().ex));
      open_.pop_front();
      first_seq_++;
    }
  }

  // Gives each open exchange why it ended there ("<why> before the response"), unless it has a
  // problem already.
  void MarkUnfinished(absl::string_view why) {
    for (Pending& p : open_) {
      if (!p.ex.problem.empty()) continue;
      if (!p.response_done) {
        p.ex.problem = absl::StrCat(why, p.ex.status == 0 ? " before the response" : " before the response ended");
      } else if (!p.request_done) {
        p.ex.problem = absl::StrCat(why, " before the request ended");
      }
    }
  }

  // The connection outlives the process: what has not ended is incomplete.
  void MarkIncomplete() {
    for (Pending& p : open_) p.ex.incomplete = !p.done();
  }

  // Completes every open exchange, `why` as the problem of those that had not ended and have
  // none yet. Returns how many.
  size_t CompleteAll(absl::string_view why, int64_t now_us) {
    size_t n = open_.size();
    for (Pending& p : open_) {
      if (!p.done() && p.ex.problem.empty()) p.ex.problem = std::string(why);
      p.ex.end_us = std::max(p.ex.end_us, now_us);
      Complete(std::move(p.ex));
    }
    first_seq_ += open_.size();
    open_.clear();
    return n;
  }

  std::vector<HttpExchange> TakeCompleted() {
    std::vector<HttpExchange> out;
    out.swap(completed_);
    return out;
  }
  uint64_t dropped() const { return dropped_; }

  // The request bodies kept for their summaries.
  size_t buffered() const {
    size_t n = 0;
    for (const Pending& p : open_) n += p.body.size();
    return n;
  }

 private:
  std::deque<Pending> open_;
  uint64_t first_seq_ = 0;  // sequence number of open_.front()
  std::vector<HttpExchange> completed_;
  uint64_t dropped_ = 0;
};

}  // namespace awfshim::http1_detail
