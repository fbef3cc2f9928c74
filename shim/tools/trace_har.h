// `har`: HAR 1.2 from `http` events, written entry by entry (nothing is kept in memory).
//
// How the fields map (the http event is written when the exchange is over, so ts is its end):
//   startedDateTime = ts - ms; time = ms; timings: send 0, wait = ttfb_ms, receive = ms - ttfb_ms
//   request.url = scheme (default https) :// host [:port unless 443/80] path; queryString from path
//   request.bodySize = req_bytes, response.bodySize = content.size = resp_bytes (-1 / 0 if absent)
//   response.content.mimeType = content_type (request_content_type: a request header); the
//   request body summary ("request_summary") becomes request.comment, "usage"
//   response.content.comment, "problem" the entry's comment. A duration Duration() does not take
//   as known (absent, -1, absurd) counts as 0.
//   connection = "PID:FD" of the connect behind the exchange: the latest connect event of the same
//   pid with the http event's fd at or before its ts ("PID:FD#N" when it is the N-th connect of
//   that fd in the process, N >= 2: fds are reused); absent when the event has no fd (Node.js)
//   or no such connect was read. An incomplete exchange (the process exited mid-response) gets
//   "_interrupted": true.
//   httpVersion "HTTP/1.1" unless the event has "version". Events without a method (a connection
//   the shim could not parse, e.g. HTTP/2) are left out and counted.
#pragma once

#include <cstdint>
#include <cstdio>
#include <utility>

#include "absl/container/flat_hash_map.h"

#include "trace_event.h"

namespace awfshim::tracetool {

class HarWriter {
 public:
  explicit HarWriter(FILE* out);  // writes the opening of the document
  void Add(const Event& e);        // ignores everything but http events
  void Finish();                   // closes the document
  uint64_t entries() const { return entries_; }
  uint64_t skipped() const { return skipped_; }  // http events with no request (not parsed)

 private:
  static constexpr size_t kMaxConnects = 100000;  // (pid, fd) pairs remembered, then forgotten
  struct Connect {
    int64_t ts_us = 0;
    uint64_t n = 0;  // connects of this pid+fd so far
  };
  FILE* out_;
  absl::flat_hash_map<std::pair<int64_t, int64_t>, Connect> connects_;  // (pid, fd)
  uint64_t entries_ = 0;
  uint64_t skipped_ = 0;
};

}  // namespace awfshim::tracetool
