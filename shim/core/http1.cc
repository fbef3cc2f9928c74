#include "awfshim/http1.h"

#include <algorithm>
#include <deque>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "awfshim/body_summary.h"
#include "awfshim/redact.h"
#include "simdjson.h"

namespace awfshim {
namespace {

namespace dom = simdjson::dom;

constexpr size_t kMaxMethod = 32;
constexpr size_t kMaxHost = 256;
constexpr size_t kMaxPath = 2048;
constexpr size_t kMaxContentType = 128;
// A chunk-size line with its extensions; real ones are a few bytes.
constexpr size_t kMaxChunkLine = 4096;
// A body length beyond any real transfer; also keeps the arithmetic far from overflow.
constexpr uint64_t kMaxBodyLength = uint64_t{1} << 60;
// An SSE event's data (or a chat JSON response) up to this size is parsed whole; a longer one
// (a response.completed event repeats the whole output) keeps only its last kUsageTail bytes,
// where the usage object sits, and that window is searched for it.
constexpr size_t kMaxUsageEvent = 64 * 1024;
constexpr size_t kUsageTail = 16 * 1024;

constexpr absl::string_view kNotRequest = "not an HTTP/1.x request";
constexpr absl::string_view kNotResponse = "not an HTTP/1.x response";
constexpr absl::string_view kUnparsedSummary = R"({"unparsed":true})";

// RFC 9110 tchar: what a method or a header name may be made of.
bool IsTokenChar(unsigned char c) {
  return absl::ascii_isalnum(c) ||
         absl::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != absl::string_view::npos;
}

bool IsToken(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7f; }

// `text` as the trace may show it: control characters (and spaces when asked) dropped first, so
// that removing them cannot assemble a token; then token-shaped runs replaced (ScrubTokens);
// then cut to `cap` bytes, which cannot expose what was already replaced.
std::string Shown(absl::string_view text, size_t cap, bool drop_spaces = false) {
  std::string clean;
  for (char c : text.substr(0, 4 * cap)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (IsControl(u) || (drop_spaces && u == ' ')) continue;
    clean.push_back(c);
  }
  std::string out = ScrubTokens(clean);
  if (out.size() > cap) out.resize(cap);
  return out;
}

absl::string_view MediaType(absl::string_view content_type) {
  return absl::StripAsciiWhitespace(content_type.substr(0, content_type.find(';')));
}

bool IsJsonType(absl::string_view content_type) {
  absl::string_view m = MediaType(content_type);
  return absl::EqualsIgnoreCase(m, "application/json") || absl::EndsWithIgnoreCase(m, "+json");
}

bool IsEventStream(absl::string_view content_type) {
  return absl::EqualsIgnoreCase(MediaType(content_type), "text/event-stream");
}

// "" while `head` (the start of a request head, leading empty lines skipped) may still become a
// request line: a method token of at most kMaxMethod bytes, then a space. Checked on every read
// so that a connection speaking something else is given up at once, not after kMaxHttpHead bytes.
// Looking at a longer prefix never turns a problem back into "", so the verdict does not depend
// on how the bytes were split.
absl::string_view CheckRequestPrefix(absl::string_view head) {
  size_t n = std::min(head.size(), kMaxMethod + 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = static_cast<unsigned char>(head[i]);
    if (c == ' ') return i == 0 ? kNotRequest : "";
    if (!IsTokenChar(c)) return kNotRequest;
  }
  return head.size() > kMaxMethod ? kNotRequest : "";
}

// The same for a response: it must start with "HTTP/1.".
absl::string_view CheckResponsePrefix(absl::string_view head) {
  constexpr absl::string_view kProto = "HTTP/1.";
  size_t n = std::min(head.size(), kProto.size());
  return head.substr(0, n) == kProto.substr(0, n) ? "" : kNotResponse;
}

// ---- heads ----------------------------------------------------------------------------------

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

// Content-Length: digits, possibly a list of equal values ("5, 5"), possibly repeated. Returns a
// problem or "".
absl::string_view AddContentLength(absl::string_view value, Headers* h) {
  for (absl::string_view part : absl::StrSplit(value, ',')) {
    part = absl::StripAsciiWhitespace(part);
    uint64_t n = 0;
    if (part.empty() || part.size() > 18 || !std::all_of(part.begin(), part.end(), [](char c) {
          return absl::ascii_isdigit(static_cast<unsigned char>(c));
        }) || !absl::SimpleAtoi(part, &n) || n > kMaxBodyLength) {
      return "bad Content-Length";
    }
    if (h->has_content_length && n != h->content_length) return "conflicting Content-Length values";
    h->has_content_length = true;
    h->content_length = n;
  }
  return "";
}

// The lines after the start line, up to the empty line. Header names must be tokens; a line
// without a colon ends parsing (the framing could not be trusted). Returns a problem or "".
absl::string_view ParseHeaders(absl::string_view head, Headers* h) {
  size_t pos = head.find('\n');
  pos = pos == absl::string_view::npos ? head.size() : pos + 1;
  bool last_was_framing = false;
  while (pos < head.size()) {
    size_t nl = head.find('\n', pos);
    if (nl == absl::string_view::npos) nl = head.size();
    absl::string_view line = head.substr(pos, nl - pos);
    pos = nl + 1;
    absl::ConsumeSuffix(&line, "\r");
    if (line.empty()) break;
    if (line[0] == ' ' || line[0] == '\t') {
      // obs-fold: a continuation of the previous value. Harmless for the values shown, but a
      // folded length or coding would make the framing ambiguous.
      if (last_was_framing) return "folded Content-Length or Transfer-Encoding";
      continue;
    }
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos || !IsToken(line.substr(0, colon))) return "malformed header line";
    absl::string_view name = line.substr(0, colon);
    absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    last_was_framing = false;
    if (absl::EqualsIgnoreCase(name, "content-length")) {
      last_was_framing = true;
      absl::string_view p = AddContentLength(value, h);
      if (!p.empty()) return p;
    } else if (absl::EqualsIgnoreCase(name, "transfer-encoding")) {
      last_was_framing = true;
      h->has_transfer_encoding = true;
      for (absl::string_view coding : absl::StrSplit(value, ',')) {
        coding = absl::StripAsciiWhitespace(coding.substr(0, coding.find(';')));
        if (!coding.empty()) h->chunked = absl::EqualsIgnoreCase(coding, "chunked");
      }
    } else if (absl::EqualsIgnoreCase(name, "content-encoding")) {
      for (absl::string_view coding : absl::StrSplit(value, ',')) {
        coding = absl::StripAsciiWhitespace(coding);
        if (!coding.empty() && !absl::EqualsIgnoreCase(coding, "identity")) h->encoded = true;
      }
    } else if (absl::EqualsIgnoreCase(name, "host")) {
      if (h->host.empty()) h->host = value;
    } else if (absl::EqualsIgnoreCase(name, "content-type")) {
      if (h->content_type.empty()) h->content_type = value;
    }
  }
  return "";
}

struct RequestLine {
  absl::string_view method, target;
  bool http2_preface = false;
};

// "METHOD SP target SP HTTP/1.x". Returns a problem or "".
absl::string_view ParseRequestLine(absl::string_view head, RequestLine* r) {
  absl::string_view p = CheckRequestPrefix(head);
  if (!p.empty()) return p;
  absl::string_view line = head.substr(0, head.find('\n'));
  absl::ConsumeSuffix(&line, "\r");
  if (line == "PRI * HTTP/2.0") {
    r->http2_preface = true;
    return "";
  }
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 == absl::string_view::npos || sp1 == sp2) return kNotRequest;
  absl::string_view version = line.substr(sp2 + 1);
  if (version.size() != 8 || !absl::StartsWith(version, "HTTP/1.") ||
      !absl::ascii_isdigit(static_cast<unsigned char>(version[7]))) {
    return kNotRequest;
  }
  r->method = line.substr(0, sp1);
  r->target = absl::StripAsciiWhitespace(line.substr(sp1 + 1, sp2 - sp1 - 1));
  if (r->target.empty()) return kNotRequest;
  return "";
}

// "HTTP/1.x SP 3DIGIT [SP reason]". Returns a problem or "".
absl::string_view ParseStatusLine(absl::string_view head, int* status) {
  if (!CheckResponsePrefix(head).empty()) return kNotResponse;
  absl::string_view line = head.substr(0, head.find('\n'));
  absl::ConsumeSuffix(&line, "\r");
  if (line.size() < 12 || !absl::ascii_isdigit(static_cast<unsigned char>(line[7])) || line[8] != ' ' ||
      (line.size() > 12 && line[12] != ' ')) {
    return kNotResponse;
  }
  int code = 0;
  for (size_t i = 9; i < 12; i++) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(line[i]))) return kNotResponse;
    code = code * 10 + (line[i] - '0');
  }
  if (code < 100) return kNotResponse;
  *status = code;
  return "";
}

// Splits an absolute-form target ("https://user@host:443/p?q") into authority (without userinfo)
// and path; leaves an origin-form one alone.
void SplitTarget(absl::string_view target, absl::string_view* authority, absl::string_view* path) {
  *authority = "";
  *path = target;
  absl::string_view rest = target;
  if (!absl::ConsumePrefix(&rest, "http://") && !absl::ConsumePrefix(&rest, "https://") &&
      !absl::ConsumePrefix(&rest, "HTTP://") && !absl::ConsumePrefix(&rest, "HTTPS://")) {
    return;
  }
  size_t end = rest.find_first_of("/?#");
  absl::string_view auth = rest.substr(0, end);
  size_t at = auth.rfind('@');
  if (at != absl::string_view::npos) auth = auth.substr(at + 1);
  *authority = auth;
  *path = end == absl::string_view::npos ? absl::string_view("/") : rest.substr(end);
}

// A Host value as the trace shows it: never userinfo, never controls or spaces.
std::string CleanHost(absl::string_view host) {
  size_t at = host.rfind('@');
  if (at != absl::string_view::npos) host = host.substr(at + 1);
  return Shown(host, kMaxHost, /*drop_spaces=*/true);
}

// A request target as the trace shows it: secret query values masked (RedactQuery).
std::string ShownPath(absl::string_view target) {
  std::string clean = Shown(target, kMaxHttpHead);
  std::string out = RedactQuery(clean);
  if (out.size() > kMaxPath) out.resize(kMaxPath);
  return out;
}

// ---- bodies ---------------------------------------------------------------------------------

// Follows one body's framing and hands out its payload piece by piece; stores nothing but the
// current chunk-size or trailer line.
class BodyReader {
 public:
  enum class Kind { kNone, kLength, kChunked, kUntilClose };
  enum class Step {
    kPiece,  // *piece holds payload bytes (non-empty); call again
    kMore,   // all of *in was used; the body goes on
    kDone,   // the body ended; *in holds what follows it
    kError,  // broken framing: problem()
  };

  void Start(Kind kind, uint64_t length) {
    kind_ = kind;
    remaining_ = length;
    state_ = State::kSize;
    trailer_bytes_ = 0;
    ClearLine();
    problem_ = "";
  }
  bool until_close() const { return kind_ == Kind::kUntilClose; }
  absl::string_view problem() const { return problem_; }
  size_t buffered() const { return line_.size(); }

  Step Next(absl::string_view* in, absl::string_view* piece) {
    switch (kind_) {
      case Kind::kNone:
        return Step::kDone;
      case Kind::kUntilClose:
        if (in->empty()) return Step::kMore;
        *piece = *in;
        in->remove_prefix(in->size());
        return Step::kPiece;
      case Kind::kLength:
        return Counted(in, piece);
      case Kind::kChunked:
        return Chunked(in, piece);
    }
    return Step::kDone;
  }

 private:
  enum class State { kSize, kData, kDataEnd, kTrailer, kEnd };

  Step Counted(absl::string_view* in, absl::string_view* piece) {
    if (remaining_ == 0) return Step::kDone;
    if (in->empty()) return Step::kMore;
    size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in->size()));
    *piece = in->substr(0, n);
    in->remove_prefix(n);
    remaining_ -= n;
    return Step::kPiece;
  }

  Step Chunked(absl::string_view* in, absl::string_view* piece) {
    for (;;) {
      bool too_long = false;
      switch (state_) {
        case State::kSize: {
          if (!ReadLine(in, kMaxChunkLine, &too_long)) return too_long ? Fail("chunk size line too long") : Step::kMore;
          uint64_t size = 0;
          if (!ParseChunkSize(line_, &size)) return Fail("bad chunk size line");
          ClearLine();
          if (size == 0) {
            state_ = State::kTrailer;
          } else {
            remaining_ = size;
            state_ = State::kData;
          }
          break;
        }
        case State::kData: {
          if (in->empty()) return Step::kMore;
          size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in->size()));
          *piece = in->substr(0, n);
          in->remove_prefix(n);
          remaining_ -= n;
          if (remaining_ == 0) state_ = State::kDataEnd;
          return Step::kPiece;
        }
        case State::kDataEnd:
          // Only the line end may follow the data: anything else means the size was wrong.
          if (!ReadLine(in, 0, &too_long)) return too_long ? Fail("chunk data not followed by CRLF") : Step::kMore;
          if (!line_.empty()) return Fail("chunk data not followed by CRLF");
          state_ = State::kSize;
          break;
        case State::kTrailer: {
          // Trailer fields are skipped; their total is bounded like a head.
          size_t before = line_.size();
          bool complete = ReadLine(in, kMaxHttpHead, &too_long);
          trailer_bytes_ += line_.size() - before;
          if (too_long || trailer_bytes_ > kMaxHttpHead) return Fail("trailer section too long");
          if (!complete) return Step::kMore;
          bool blank = line_.empty();
          ClearLine();
          if (blank) {
            state_ = State::kEnd;
            return Step::kDone;
          }
          break;
        }
        case State::kEnd:
          return Step::kDone;
      }
    }
  }

  // chunk-size [BWS] [; ext...]: hex digits, at most 15 significant (well past kMaxBodyLength).
  static bool ParseChunkSize(absl::string_view line, uint64_t* size) {
    size_t i = 0;
    int significant = 0;
    uint64_t n = 0;
    for (; i < line.size() && absl::ascii_isxdigit(static_cast<unsigned char>(line[i])); i++) {
      int d = absl::ascii_isdigit(static_cast<unsigned char>(line[i])) ? line[i] - '0'
                                                                       : (absl::ascii_tolower(line[i]) - 'a' + 10);
      if (n != 0 || d != 0) significant++;
      if (significant > 15) return false;
      n = n * 16 + static_cast<uint64_t>(d);
    }
    if (i == 0) return false;
    absl::string_view rest = line.substr(i);
    while (!rest.empty() && (rest[0] == ' ' || rest[0] == '\t')) rest.remove_prefix(1);
    if (!rest.empty() && rest[0] != ';') return false;
    *size = n;
    return true;
  }

  // Appends to line_ up to the next LF; true when the line is complete (its CR removed). A line
  // longer than `cap` (plus its CR) sets *too_long. The verdict depends only on the bytes, not on
  // how they were split.
  bool ReadLine(absl::string_view* in, size_t cap, bool* too_long) {
    size_t nl = in->find('\n');
    absl::string_view part = in->substr(0, nl);
    if (line_.size() + part.size() > cap + 1) {
      *too_long = true;
      return false;
    }
    line_.append(part.data(), part.size());
    if (nl == absl::string_view::npos) {
      in->remove_prefix(in->size());
      return false;
    }
    in->remove_prefix(nl + 1);
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    return true;
  }

  void ClearLine() {
    if (line_.capacity() > 8192) {
      std::string().swap(line_);
    } else {
      line_.clear();
    }
  }

  Step Fail(absl::string_view problem) {
    problem_ = problem;
    return Step::kError;
  }

  Kind kind_ = Kind::kNone;
  State state_ = State::kSize;
  uint64_t remaining_ = 0;
  size_t trailer_bytes_ = 0;
  std::string line_;
  absl::string_view problem_;  // always a literal
};

// ---- usage ----------------------------------------------------------------------------------

std::optional<SseUsage> ReadUsage(dom::object usage) {
  SseUsage u;
  bool any = false;
  auto count = [&any](dom::object obj, const char* key, int64_t* out) {
    int64_t n = 0;
    if (*out < 0 && !obj[key].get_int64().get(n) && n >= 0) {
      *out = n;
      any = true;
    }
  };
  count(usage, "prompt_tokens", &u.input_tokens);
  count(usage, "input_tokens", &u.input_tokens);
  count(usage, "completion_tokens", &u.output_tokens);
  count(usage, "output_tokens", &u.output_tokens);
  count(usage, "total_tokens", &u.total_tokens);
  dom::object details;
  if (!usage["prompt_tokens_details"].get_object().get(details) ||
      !usage["input_tokens_details"].get_object().get(details)) {
    count(details, "cached_tokens", &u.cached_tokens);
  }
  if (!usage["completion_tokens_details"].get_object().get(details) ||
      !usage["output_tokens_details"].get_object().get(details)) {
    count(details, "reasoning_tokens", &u.reasoning_tokens);
  }
  if (!any) return std::nullopt;
  return u;
}

bool StartsLikeObject(absl::string_view json) {
  size_t i = json.find_first_not_of(" \t\r\n");
  return i != absl::string_view::npos && json[i] == '{';
}

// The last `"usage"` key starting at or before `before` whose value is an object: returns the
// index of its '{' and sets *key_at, or npos. Chat Completions streams carry "usage":null in every
// chunk but the last, so only this shape is worth a parse.
size_t FindUsageObject(absl::string_view json, size_t before, size_t* key_at) {
  constexpr absl::string_view kKey = "\"usage\"";
  for (size_t at = json.rfind(kKey, before); at != absl::string_view::npos; at = json.rfind(kKey, at - 1)) {
    // Inside a string the quotes would be escaped.
    if (at == 0 || json[at - 1] != '\\') {
      size_t i = json.find_first_not_of(" \t\r\n", at + kKey.size());
      if (i != absl::string_view::npos && json[i] == ':') {
        i = json.find_first_not_of(" \t\r\n", i + 1);
        if (i != absl::string_view::npos && json[i] == '{') {
          *key_at = at;
          return i;
        }
      }
    }
    if (at == 0) break;
  }
  return absl::string_view::npos;
}

// The index of the '}' closing the object opening at json[open], or npos when it does not close
// within `json`.
size_t MatchingBrace(absl::string_view json, size_t open) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = open; i < json.size(); i++) {
    char c = json[i];
    if (in_string) {
      if (c == '\\') {
        i++;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      depth++;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return c == '}' ? i : absl::string_view::npos;
    }
  }
  return absl::string_view::npos;
}

std::optional<SseUsage> UsageFromObjectText(absl::string_view object_json) {
  dom::parser parser;
  dom::element root;
  dom::object obj;
  if (parser.parse(object_json.data(), object_json.size()).get(root) || root.get_object().get(obj)) {
    return std::nullopt;
  }
  return ReadUsage(obj);
}

// The last window of an event too long to parse whole: the last `"usage":{...}` that closes in it
// and has a count. A few tries only: a tool schema may have a property named usage.
std::optional<SseUsage> UsageFromTail(absl::string_view tail) {
  size_t before = absl::string_view::npos;
  for (int tries = 0; tries < 8; tries++) {
    size_t key_at = 0;
    size_t open = FindUsageObject(tail, before, &key_at);
    if (open == absl::string_view::npos) return std::nullopt;
    size_t close = MatchingBrace(tail, open);
    if (close != absl::string_view::npos) {
      if (auto u = UsageFromObjectText(tail.substr(open, close - open + 1))) return u;
    }
    if (key_at == 0) return std::nullopt;
    before = key_at - 1;
  }
  return std::nullopt;
}

// Watches a response body for token usage: an SSE stream event by event, or a whole JSON body.
// Keeps at most kMaxUsageEvent bytes.
class UsageScanner {
 public:
  enum class Mode { kOff, kSse, kJson };

  void Start(Mode mode) {
    Reset();
    mode_ = mode;
    usage_.reset();
  }
  bool active() const { return mode_ != Mode::kOff; }
  size_t buffered() const { return data_.size() + name_.size(); }

  void Feed(absl::string_view bytes) {
    if (mode_ == Mode::kJson) {
      has_data_ = true;
      Append(bytes);
      return;
    }
    if (mode_ == Mode::kSse) FeedSse(bytes);
  }

  // The body ended: an event without its closing empty line still counts.
  std::optional<SseUsage> Finish() {
    if (mode_ != Mode::kOff) Dispatch();
    mode_ = Mode::kOff;
    Reset();
    std::optional<SseUsage> u = usage_;
    usage_.reset();
    return u;
  }

  void Reset() {
    field_ = Field::kName;
    name_.clear();
    name_long_ = false;
    skip_lf_ = false;
    ClearData();
  }

 private:
  enum class Field { kName, kDataStart, kData, kOther };

  // text/event-stream (WHATWG HTML 9.2.6): lines end with CRLF, LF or CR; "data:" lines (one
  // optional space after the colon) accumulate, joined by LF, until an empty line dispatches.
  void FeedSse(absl::string_view bytes) {
    size_t i = 0;
    while (i < bytes.size()) {
      char c = bytes[i];
      if (skip_lf_) {
        skip_lf_ = false;
        if (c == '\n') {
          i++;
          continue;
        }
      }
      if (c == '\r' || c == '\n') {
        EndLine();
        skip_lf_ = c == '\r';
        i++;
        continue;
      }
      switch (field_) {
        case Field::kName:
          if (c == ':') {
            if (IsDataName()) {
              BeginDataLine();
              field_ = Field::kDataStart;
            } else {
              field_ = Field::kOther;
            }
          } else if (name_.size() < 8) {
            name_.push_back(c);
          } else {
            name_long_ = true;
          }
          i++;
          break;
        case Field::kDataStart:
          if (c == ' ') i++;
          field_ = Field::kData;
          break;
        case Field::kData:
        case Field::kOther: {
          size_t end = bytes.find_first_of("\r\n", i);
          if (end == absl::string_view::npos) end = bytes.size();
          if (field_ == Field::kData) Append(bytes.substr(i, end - i));
          i = end;
          break;
        }
      }
    }
  }

  bool IsDataName() const { return !name_long_ && name_ == "data"; }

  void BeginDataLine() {
    if (has_data_) Append("\n");
    has_data_ = true;
  }

  void EndLine() {
    if (field_ == Field::kName) {
      if (name_.empty() && !name_long_) {
        Dispatch();
      } else if (IsDataName()) {
        BeginDataLine();  // "data" alone: an empty data line
      }
    }
    field_ = Field::kName;
    name_.clear();
    name_long_ = false;
  }

  // Keeps everything up to kMaxUsageEvent; past that only a window of the last bytes (at least
  // kUsageTail of them, at most twice that, so trimming is amortised).
  void Append(absl::string_view s) {
    if (!tail_mode_) {
      if (data_.size() + s.size() <= kMaxUsageEvent) {
        data_.append(s.data(), s.size());
        return;
      }
      tail_mode_ = true;
    }
    if (s.size() >= kUsageTail) {
      data_.assign(s.data() + s.size() - kUsageTail, kUsageTail);
      return;
    }
    data_.append(s.data(), s.size());
    if (data_.size() > 2 * kUsageTail) data_.erase(0, data_.size() - kUsageTail);
  }

  void Dispatch() {
    if (has_data_) {
      absl::string_view data = data_;
      std::optional<SseUsage> u;
      if (tail_mode_) {
        // Exactly the last kUsageTail bytes, so that the result does not depend on the reads.
        u = UsageFromTail(data.substr(data.size() - std::min(data.size(), kUsageTail)));
      } else if (size_t key_at = 0; StartsLikeObject(data) &&
                 FindUsageObject(data, absl::string_view::npos, &key_at) != absl::string_view::npos) {
        u = ParseUsage(data);
      }
      if (u) Merge(*u);
    }
    ClearData();
  }

  // Later reports win field by field: Anthropic sends input tokens first, output tokens last.
  void Merge(const SseUsage& u) {
    if (!usage_) {
      usage_ = u;
      return;
    }
    for (auto field : {&SseUsage::input_tokens, &SseUsage::output_tokens, &SseUsage::total_tokens,
                       &SseUsage::cached_tokens, &SseUsage::reasoning_tokens}) {
      if (u.*field >= 0) (*usage_).*field = u.*field;
    }
  }

  void ClearData() {
    if (data_.capacity() > 8192) {
      std::string().swap(data_);
    } else {
      data_.clear();
    }
    has_data_ = false;
    tail_mode_ = false;
  }

  Mode mode_ = Mode::kOff;
  Field field_ = Field::kName;
  std::string name_;        // the field name so far; only "data" matters
  bool name_long_ = false;  // longer than 8 bytes: not "data"
  bool skip_lf_ = false;    // a CR ended the last line: an LF right after it belongs to it
  bool has_data_ = false;
  bool tail_mode_ = false;
  std::string data_;
  std::optional<SseUsage> usage_;
};

// ---- exchanges ------------------------------------------------------------------------------

struct Pending {
  HttpExchange ex;
  bool request_done = false;
  bool response_done = false;
  bool head_request = false;     // HEAD: the response has no body
  bool connect_request = false;  // CONNECT: a 2xx response turns the connection into a tunnel
  bool chat = false;             // to a chat endpoint: a JSON response is scanned for usage
  bool summarize = false;        // the body is kept (up to kMaxChatBody) for its summary
  std::string body;
};

enum class Phase { kHead, kBody };

}  // namespace

std::optional<SseUsage> ParseUsage(absl::string_view json) {
  if (!StartsLikeObject(json)) return std::nullopt;
  dom::parser parser;
  dom::element root;
  dom::object obj;
  if (parser.parse(json.data(), json.size()).get(root) || root.get_object().get(obj)) return std::nullopt;
  dom::object usage;
  if (!obj["usage"].get_object().get(usage)) {
    if (auto u = ReadUsage(usage)) return u;
  }
  for (const char* container : {"response", "message"}) {
    if (!obj[container]["usage"].get_object().get(usage)) {
      if (auto u = ReadUsage(usage)) return u;
    }
  }
  return std::nullopt;
}

struct Http1Stream::Impl {
  std::deque<Pending> pending;  // requests in order, until both messages ended
  uint64_t first_seq = 0;       // sequence number of pending.front()
  std::vector<HttpExchange> completed;
  uint64_t dropped = 0;
  bool stopped = false;
  bool http2 = false;
  bool http2_reported = false;
  std::string problem;

  // Feeds a request or response head; true once it is complete. Otherwise *in is used up or the
  // connection given up. The start line is checked first: bytes that are not HTTP are reported
  // as such however they came, in one piece that fills the buffer or in many small ones.
  bool HeadComplete(HeadBuffer& head, absl::string_view* in, int64_t now_us, bool request) {
    HeadBuffer::Result r = head.Feed(in, now_us);
    if (r == HeadBuffer::Result::kDone) return true;
    absl::string_view bad = request ? CheckRequestPrefix(head.view()) : CheckResponsePrefix(head.view());
    if (!bad.empty()) {
      GiveUp(bad, now_us);
    } else if (r == HeadBuffer::Result::kOversized) {
      GiveUp(absl::StrCat(request ? "request" : "response", " head larger than ", kMaxHttpHead, " bytes"), now_us);
    }
    return false;
  }

  HeadBuffer client_head;
  BodyReader client_body;
  Phase client_phase = Phase::kHead;
  uint64_t client_seq = 0;  // the request whose body is arriving

  HeadBuffer server_head;
  BodyReader server_body;
  Phase server_phase = Phase::kHead;
  uint64_t server_seq = 0;  // the exchange whose response body is arriving
  UsageScanner usage;

  Pending& At(uint64_t seq) { return pending[static_cast<size_t>(seq - first_seq)]; }

  void Emit(HttpExchange&& ex) {
    if (completed.size() >= kMaxCompletedExchanges) {
      dropped++;
      return;
    }
    completed.push_back(std::move(ex));
  }

  // Hands out exchanges whose messages both ended, in request order.
  void Flush() {
    while (!pending.empty() && pending.front().request_done && pending.front().response_done) {
      Emit(std::move(pending.front().ex));
      pending.pop_front();
      first_seq++;
    }
  }

  void FinishRequest(Pending& p, int64_t now_us) {
    p.request_done = true;
    p.ex.request_end_us = now_us;
    p.ex.end_us = std::max(p.ex.end_us, now_us);
    if (p.summarize) {
      // A body cut at kMaxChatBody is not JSON: no need to ask the parser.
      p.ex.body_summary_json = p.ex.request_body_bytes > p.body.size() ? std::string(kUnparsedSummary)
                                                                       : SummarizeChatRequest(p.body);
      std::string().swap(p.body);
    }
  }

  void FinishResponse(Pending& p, int64_t now_us) {
    p.response_done = true;
    p.ex.end_us = std::max(p.ex.end_us, now_us);
    if (usage.active()) {
      std::optional<SseUsage> u = usage.Finish();
      if (u) p.ex.usage = *u;
    }
  }

  // Stops parsing for good and releases the buffers.
  void Stop() {
    stopped = true;
    client_head.Reset();
    server_head.Reset();
    client_body.Start(BodyReader::Kind::kNone, 0);
    server_body.Start(BodyReader::Kind::kNone, 0);
    usage.Start(UsageScanner::Mode::kOff);
    client_phase = server_phase = Phase::kHead;
  }

  // Reports every exchange still open, with `problem` where it did not finish, then stops.
  // Returns how many were reported.
  size_t EmitAllAndStop(absl::string_view why, int64_t now_us) {
    size_t n = pending.size();
    for (Pending& p : pending) {
      if (!(p.request_done && p.response_done) && p.ex.problem.empty()) p.ex.problem = std::string(why);
      p.ex.end_us = std::max(p.ex.end_us, now_us);
      Emit(std::move(p.ex));
    }
    first_seq += pending.size();
    pending.clear();
    Stop();
    return n;
  }

  // Gives up on the connection: its bytes can no longer be followed. The problem is reported on
  // the open exchanges, or on one of its own when none is open (with the request line, if the
  // head that failed has one).
  void GiveUp(absl::string_view why, int64_t now_us) {
    if (stopped) return;
    problem = std::string(why);
    HttpExchange lone;
    lone.problem = problem;
    lone.end_us = now_us;
    lone.request_start_us = client_head.size() > 0 ? client_head.start_us() : now_us;
    RequestLine line;
    if (client_head.size() > 0 && client_head.view().find('\n') != absl::string_view::npos &&
        ParseRequestLine(client_head.view(), &line).empty() && !line.http2_preface) {
      lone.method = Shown(line.method, kMaxMethod);
      lone.path = ShownPath(line.target);
    }
    if (EmitAllAndStop(why, now_us) == 0) Emit(std::move(lone));
  }

  void OnRequestHead(int64_t now_us) {
    absl::string_view head = client_head.view();
    RequestLine line;
    absl::string_view bad = ParseRequestLine(head, &line);
    if (!bad.empty()) return GiveUp(bad, now_us);
    if (line.http2_preface) {
      http2 = true;
      EmitAllAndStop("the connection switched to HTTP/2", now_us);
      return;
    }
    Headers h;
    bad = ParseHeaders(head, &h);
    if (!bad.empty()) return GiveUp(absl::StrCat("request head: ", bad), now_us);
    BodyReader::Kind kind = BodyReader::Kind::kNone;
    if (h.has_transfer_encoding) {
      // RFC 9112 6.3: a request whose final coding is not chunked cannot be delimited.
      if (!h.chunked) return GiveUp("request Transfer-Encoding does not end with chunked", now_us);
      kind = BodyReader::Kind::kChunked;
    } else if (h.content_length > 0) {
      kind = BodyReader::Kind::kLength;
    }
    if (pending.size() >= kMaxPendingExchanges) {
      return GiveUp(absl::StrCat("more than ", kMaxPendingExchanges, " requests awaiting responses"), now_us);
    }

    Pending p;
    HttpExchange& ex = p.ex;
    ex.method = Shown(line.method, kMaxMethod);
    absl::string_view authority, path;
    SplitTarget(line.target, &authority, &path);
    p.connect_request = line.method == "CONNECT";
    if (p.connect_request) authority = line.target;  // authority-form "host:port"
    ex.host = CleanHost(h.host.empty() ? authority : h.host);
    ex.path = ShownPath(path);
    ex.request_content_type = Shown(h.content_type, kMaxContentType);
    ex.request_start_us = client_head.start_us();
    ex.end_us = now_us;
    p.head_request = line.method == "HEAD";
    p.chat = IsChatRequestPath(path);
    p.summarize = p.chat && kind != BodyReader::Kind::kNone && !h.encoded &&
                  (h.content_type.empty() || IsJsonType(h.content_type));
    client_head.Reset();

    pending.push_back(std::move(p));
    uint64_t seq = first_seq + pending.size() - 1;
    if (kind == BodyReader::Kind::kNone) {
      FinishRequest(At(seq), now_us);
      Flush();
      return;
    }
    client_body.Start(kind, h.content_length);
    client_phase = Phase::kBody;
    client_seq = seq;
  }

  void OnResponseHead(int64_t now_us) {
    absl::string_view head = server_head.view();
    int status = 0;
    absl::string_view bad = ParseStatusLine(head, &status);
    if (!bad.empty()) return GiveUp(bad, now_us);
    Headers h;
    bad = ParseHeaders(head, &h);
    if (!bad.empty()) return GiveUp(absl::StrCat("response head: ", bad), now_us);
    // Interim responses (100 Continue, 102, 103 Early Hints) precede the final one.
    if (status < 200 && status != 101) {
      server_head.Reset();
      return;
    }

    // Responses answer requests in order: the first exchange without one.
    auto it = std::find_if(pending.begin(), pending.end(), [](const Pending& p) { return !p.response_done; });
    if (it == pending.end()) {
      // A server may answer before a request (408 before closing an idle connection).
      if (pending.size() >= kMaxPendingExchanges) {
        return GiveUp(absl::StrCat("more than ", kMaxPendingExchanges, " exchanges open"), now_us);
      }
      Pending orphan;
      orphan.request_done = true;
      orphan.ex.problem = "response without a request";
      orphan.ex.request_start_us = server_head.start_us();
      pending.push_back(std::move(orphan));
      it = pending.end() - 1;
    }
    uint64_t seq = first_seq + static_cast<uint64_t>(it - pending.begin());
    Pending& p = *it;
    p.ex.status = status;
    p.ex.content_type = Shown(h.content_type, kMaxContentType);
    p.ex.sse = IsEventStream(h.content_type);
    bool json = IsJsonType(h.content_type);
    // A response cannot start before its request; bytes seen in another order are clamped.
    p.ex.first_response_byte_us = std::max(server_head.start_us(), p.ex.request_start_us);
    server_head.Reset();  // `h` keeps no views from here on: only its numbers and flags are used

    // 101 Switching Protocols, or a tunnel: what follows is not HTTP/1.1.
    if (status == 101 || (p.connect_request && status < 300)) {
      if (!p.request_done) FinishRequest(p, now_us);
      FinishResponse(p, now_us);
      EmitAllAndStop("the connection switched protocols", now_us);
      return;
    }
    BodyReader::Kind kind;
    if (p.head_request || status == 204 || status == 304) {
      kind = BodyReader::Kind::kNone;
    } else if (h.has_transfer_encoding) {
      // RFC 9112 6.3: a response whose final coding is not chunked runs until the close.
      kind = h.chunked ? BodyReader::Kind::kChunked : BodyReader::Kind::kUntilClose;
    } else if (h.has_content_length) {
      kind = h.content_length > 0 ? BodyReader::Kind::kLength : BodyReader::Kind::kNone;
    } else {
      kind = BodyReader::Kind::kUntilClose;
    }
    if (kind == BodyReader::Kind::kNone) {
      FinishResponse(p, now_us);
      Flush();
      return;
    }
    UsageScanner::Mode mode = UsageScanner::Mode::kOff;
    if (!h.encoded && p.ex.sse) {
      mode = UsageScanner::Mode::kSse;
    } else if (!h.encoded && p.chat && json) {
      mode = UsageScanner::Mode::kJson;
    }
    usage.Start(mode);
    server_body.Start(kind, h.content_length);
    server_phase = Phase::kBody;
    server_seq = seq;
  }

  size_t buffered() const {
    size_t n = client_head.size() + server_head.size() + client_body.buffered() + server_body.buffered() +
               usage.buffered();
    for (const Pending& p : pending) n += p.body.size();
    return n;
  }
};

Http1Stream::Http1Stream() : impl_(std::make_unique<Impl>()) {}
Http1Stream::~Http1Stream() = default;
Http1Stream::Http1Stream(Http1Stream&&) noexcept = default;
Http1Stream& Http1Stream::operator=(Http1Stream&&) noexcept = default;

void Http1Stream::OnClientBytes(absl::string_view in, int64_t now_us) {
  Impl& s = *impl_;
  while (!s.stopped) {
    if (s.client_phase == Phase::kHead) {
      if (in.empty() || !s.HeadComplete(s.client_head, &in, now_us, /*request=*/true)) return;
      s.OnRequestHead(now_us);
      continue;
    }
    // The body: asked even without bytes, since a length may have just been reached.
    Pending& p = s.At(s.client_seq);
    absl::string_view piece;
    switch (s.client_body.Next(&in, &piece)) {
      case BodyReader::Step::kPiece:
        p.ex.request_body_bytes += piece.size();
        if (p.summarize && p.body.size() < kMaxChatBody) {
          p.body.append(piece.data(), std::min(piece.size(), kMaxChatBody - p.body.size()));
        }
        break;
      case BodyReader::Step::kDone:
        s.FinishRequest(p, now_us);
        s.client_phase = Phase::kHead;
        s.Flush();
        break;
      case BodyReader::Step::kError:
        return s.GiveUp(absl::StrCat("request body: ", s.client_body.problem()), now_us);
      case BodyReader::Step::kMore:
        return;
    }
  }
}

void Http1Stream::OnServerBytes(absl::string_view in, int64_t now_us) {
  Impl& s = *impl_;
  while (!s.stopped) {
    if (s.server_phase == Phase::kHead) {
      if (in.empty() || !s.HeadComplete(s.server_head, &in, now_us, /*request=*/false)) return;
      s.OnResponseHead(now_us);
      continue;
    }
    Pending& p = s.At(s.server_seq);
    absl::string_view piece;
    switch (s.server_body.Next(&in, &piece)) {
      case BodyReader::Step::kPiece:
        p.ex.response_body_bytes += piece.size();
        if (s.usage.active()) s.usage.Feed(piece);
        break;
      case BodyReader::Step::kDone:
        s.FinishResponse(p, now_us);
        s.server_phase = Phase::kHead;
        s.Flush();
        break;
      case BodyReader::Step::kError:
        return s.GiveUp(absl::StrCat("response body: ", s.server_body.problem()), now_us);
      case BodyReader::Step::kMore:
        return;
    }
  }
}

void Http1Stream::OnClose(int64_t now_us) {
  Impl& s = *impl_;
  if (s.stopped) return;
  if (s.server_phase == Phase::kBody && s.server_body.until_close()) {
    s.FinishResponse(s.At(s.server_seq), now_us);
    s.server_phase = Phase::kHead;
    s.Flush();
  }
  for (Pending& p : s.pending) {
    if (!p.response_done && p.ex.problem.empty()) {
      p.ex.problem = p.ex.status == 0 ? "connection closed before the response"
                                      : "connection closed before the response ended";
    } else if (!p.request_done && p.ex.problem.empty()) {
      p.ex.problem = "connection closed before the request ended";
    }
  }
  s.EmitAllAndStop("connection closed", now_us);
}

std::vector<HttpExchange> Http1Stream::TakeCompleted() {
  std::vector<HttpExchange> out;
  out.swap(impl_->completed);
  return out;
}

bool Http1Stream::is_http2() const { return impl_->http2; }

bool Http1Stream::TakeHttp2Detected() {
  if (!impl_->http2 || impl_->http2_reported) return false;
  impl_->http2_reported = true;
  return true;
}

bool Http1Stream::stopped() const { return impl_->stopped; }
const std::string& Http1Stream::problem() const { return impl_->problem; }
uint64_t Http1Stream::dropped() const { return impl_->dropped; }
size_t Http1Stream::buffered_bytes() const { return impl_->buffered(); }

}  // namespace awfshim
