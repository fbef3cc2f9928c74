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
//   httpVersion "HTTP/1.1" unless the event has "version". Events without a method (a connection
//   the shim could not parse, e.g. HTTP/2) are left out and counted.
#pragma once

#include <cstdint>
#include <cstdio>

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
  FILE* out_;
  uint64_t entries_ = 0;
  uint64_t skipped_ = 0;
};

}  // namespace awfshim::tracetool
