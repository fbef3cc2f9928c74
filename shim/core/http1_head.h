// HTTP/1.x message heads for the tracker (http1.cc): collecting a head across reads, its start
// line and the headers that decide framing, and how the trace shows the values it keeps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "awfshim/http1.h"

namespace awfshim::http1_detail {

inline constexpr size_t kMaxMethod = 32;
inline constexpr size_t kMaxHost = 256;
inline constexpr size_t kMaxPath = 2048;
inline constexpr size_t kMaxContentType = 128;
inline constexpr absl::string_view kNotRequest = "not an HTTP/1.x request";
inline constexpr absl::string_view kNotResponse = "not an HTTP/1.x response";

// Collects one message head across reads, up to and including its empty line (CRLF CRLF, bare
// LFs tolerated), never more than kMaxHttpHead bytes.
class HeadBuffer {
 public:
  enum class Result { kMore, kDone, kOversized };

  // Takes bytes from the front of *in up to the end of the head; what follows stays in *in.
  // Empty lines before a head are skipped (RFC 9112 section 2.2: a stray CRLF after a body).
  Result Feed(absl::string_view* in, int64_t now_us) {
    if (buf_.empty()) {
      while (!in->empty() && (in->front() == '\r' || in->front() == '\n')) in->remove_prefix(1);
      if (in->empty()) return Result::kMore;
      start_us_ = now_us;
      scan_ = 0;
    }
    size_t old = buf_.size();
    size_t take = std::min(in->size(), kMaxHttpHead - old);
    buf_.append(in->data(), take);
    for (size_t i = buf_.find('\n', scan_); i != std::string::npos; i = buf_.find('\n', i + 1)) {
      size_t j = i + 1;
      if (j < buf_.size() && buf_[j] == '\r') j++;
      if (j < buf_.size() && buf_[j] == '\n') {
        // The end lies in the new bytes: an earlier one would have been found by an earlier call.
        in->remove_prefix(j + 1 - old);
        buf_.resize(j + 1);
        return Result::kDone;
      }
    }
    in->remove_prefix(take);
    // An LF in the last two bytes may still start the terminator.
    scan_ = buf_.size() >= 2 ? buf_.size() - 2 : 0;
    return buf_.size() >= kMaxHttpHead ? Result::kOversized : Result::kMore;
  }

  absl::string_view view() const { return buf_; }
  int64_t start_us() const { return start_us_; }
  size_t size() const { return buf_.size(); }
  void Reset() {
    // A large head leaves a large allocation behind; most heads are small.
    if (buf_.capacity() > 8192) {
      std::string().swap(buf_);
    } else {
      buf_.clear();
    }
    scan_ = 0;
  }

 private:
  std::string buf_;
  size_t scan_ = 0;
  int64_t start_us_ = 0;
};

// What a head says about framing, and the few values the trace shows.
struct Headers {
  bool has_content_length = false;
  uint64_t content_length = 0;
  bool has_transfer_encoding = false;
  bool chunked = false;  // "chunked" is the final transfer coding
  bool encoded = false;  // a Content-Encoding other than identity: the body is not readable JSON
  absl::string_view host;
  absl::string_view content_type;
};

struct RequestLine {
  absl::string_view method, target;
  bool http2_preface = false;
};

// `text` as the trace may show it: control characters (and spaces when asked) dropped first, so
// that removing them cannot assemble a token; then token-shaped runs replaced (ScrubTokens);
// then cut to `cap` bytes, which cannot expose what was already replaced.
std::string Shown(absl::string_view text, size_t cap, bool drop_spaces = false);

absl::string_view MediaType(absl::string_view content_type);

bool IsJsonType(absl::string_view content_type);

bool IsEventStream(absl::string_view content_type);

// "" while `head` (the start of a request head, leading empty lines skipped) may still become a
// request line: a method token of at most kMaxMethod bytes, then a space. Checked on every read
// so that a connection speaking something else is given up at once, not after kMaxHttpHead bytes.
// Looking at a longer prefix never turns a problem back into "", so the verdict does not depend
// on how the bytes were split.
absl::string_view CheckRequestPrefix(absl::string_view head);

// The same for a response: it must start with "HTTP/1.".
absl::string_view CheckResponsePrefix(absl::string_view head);

// The lines after the start line, up to the empty line. Header names must be tokens; a line
// without a colon ends parsing (the framing could not be trusted). Returns a problem or "".
absl::string_view ParseHeaders(absl::string_view head, Headers* h);

// "METHOD SP target SP HTTP/1.x". Returns a problem or "".
absl::string_view ParseRequestLine(absl::string_view head, RequestLine* r);

// "HTTP/1.x SP 3DIGIT [SP reason]". Returns a problem or "".
absl::string_view ParseStatusLine(absl::string_view head, int* status);

// Splits an absolute-form target ("https://user@host:443/p?q", any scheme in any case) into
// authority (without userinfo) and path; leaves an origin-form one alone.
void SplitTarget(absl::string_view target, absl::string_view* authority, absl::string_view* path);

// A Host value as the trace shows it: never userinfo, never controls or spaces.
std::string CleanHost(absl::string_view host);

// A request target as the trace shows it: control characters dropped, then secrets masked
// (RedactTarget), then cut to kMaxPath bytes.
std::string ShownPath(absl::string_view target);

}  // namespace awfshim::http1_detail
