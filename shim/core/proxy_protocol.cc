#include "awfshim/proxy_protocol.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace awfshim {
namespace {

constexpr size_t kMaxText = 128;
constexpr size_t kMaxAuthority = 300;

// RFC 9110 tchar: what a header name may be made of.
bool IsTokenChar(unsigned char c) {
  return absl::ascii_isalnum(c) ||
         absl::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != absl::string_view::npos;
}

bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7f; }

// Up to kMaxText bytes of `text` without control characters: safe to put in a trace.
std::string CleanText(absl::string_view text) {
  std::string out;
  for (char c : text) {
    if (out.size() == kMaxText) break;
    if (!IsControl(static_cast<unsigned char>(c))) out.push_back(c);
  }
  return out;
}

// One line of a head. `complete` says its LF has arrived; the CR of a CRLF is already removed,
// and a trailing CR on an incomplete line is dropped too (its LF may be the next byte).
struct Line {
  absl::string_view text;
  bool complete = false;
};

// Checks a status line, or the prefix of one seen so far: "HTTP/1.x SP 3DIGIT [SP reason]".
// Returns what is wrong, or "" when it is (or may still become) valid.
absl::string_view CheckStatusLine(const Line& line) {
  absl::string_view t = line.text;
  constexpr absl::string_view kProto = "HTTP/1.";
  for (size_t i = 0; i < t.size() && i < 12; i++) {
    unsigned char c = static_cast<unsigned char>(t[i]);
    bool ok = i < kProto.size() ? c == static_cast<unsigned char>(kProto[i])
              : i == 8          ? c == ' '
              : i == 9          ? c >= '1' && c <= '9'
                                : absl::ascii_isdigit(c);
    if (!ok) return i < 9 ? "status line does not start with HTTP/1.x" : "status code is not three digits";
  }
  if (t.size() > 12 && t[12] != ' ') return "status code is not three digits";
  if (line.complete && t.size() < 12) return "status line too short";
  if (t.find('\r') != absl::string_view::npos || t.find('\0') != absl::string_view::npos) {
    return "stray CR or NUL in status line";
  }
  return "";
}

// Checks a header line (or its prefix): a token, ':', then a value without CR or NUL.
absl::string_view CheckHeaderLine(const Line& line) {
  absl::string_view t = line.text;
  if (!t.empty() && (t[0] == ' ' || t[0] == '\t')) return "folded or indented header line";
  size_t colon = t.find(':');
  absl::string_view name = t.substr(0, colon);
  for (char c : name) {
    if (!IsTokenChar(static_cast<unsigned char>(c))) return "bad character in header name";
  }
  if (colon == absl::string_view::npos) return line.complete ? "header line without ':'" : "";
  if (colon == 0) return "empty header name";
  absl::string_view value = t.substr(colon + 1);
  if (value.find('\r') != absl::string_view::npos || value.find('\0') != absl::string_view::npos) {
    return "stray CR or NUL in header value";
  }
  return "";
}

// Walks the lines of a head within `window`, calling `on_line(index, line)` for each, complete or
// the trailing partial one, until the blank line. `on_line` returns a problem or "".
// Returns the head length (0 when the blank line is not there yet) or sets `*problem`.
template <typename F>
size_t WalkHead(absl::string_view window, F on_line, absl::string_view* problem) {
  size_t pos = 0;
  for (int index = 0;; index++) {
    size_t nl = window.find('\n', pos);
    Line line{window.substr(pos, nl == absl::string_view::npos ? absl::string_view::npos : nl - pos),
              nl != absl::string_view::npos};
    absl::ConsumeSuffix(&line.text, "\r");
    if (index > 0 && line.complete && line.text.empty()) return nl + 1;
    *problem = on_line(index, line);
    if (!problem->empty() || !line.complete) return 0;
    pos = nl + 1;
  }
}

}  // namespace

std::string BuildConnectRequest(absl::string_view authority, absl::string_view user, absl::string_view password) {
  // Never let a name split the request: the authority reaches us from the application.
  std::string target;
  for (char c : authority) {
    unsigned char u = static_cast<unsigned char>(c);
    if (!IsControl(u) && u != ' ') target.push_back(c);
  }
  std::string out = absl::StrCat("CONNECT ", target, " HTTP/1.1\r\nHost: ", target, "\r\n");
  if (!user.empty() || !password.empty()) {
    absl::StrAppend(&out, "Proxy-Authorization: Basic ", absl::Base64Escape(absl::StrCat(user, ":", password)),
                    "\r\n");
  }
  out.append("\r\n");
  return out;
}

ProxyReply ParseProxyReply(absl::string_view bytes) {
  ProxyReply r;
  absl::string_view problem;
  auto on_line = [&r](int index, const Line& line) -> absl::string_view {
    if (index == 0) {
      absl::string_view p = CheckStatusLine(line);
      if (p.empty() && line.complete) {
        int status = 0;
        (void)absl::SimpleAtoi(line.text.substr(9, 3), &status);
        r.status = status;
        r.reason = CleanText(line.text.substr(std::min<size_t>(line.text.size(), 13)));
      }
      return p;
    }
    absl::string_view p = CheckHeaderLine(line);
    // The first X-Squid-Error wins; Squid sends one.
    if (p.empty() && line.complete && r.squid_error.empty()) {
      size_t colon = line.text.find(':');
      if (absl::EqualsIgnoreCase(line.text.substr(0, colon), "X-Squid-Error")) {
        r.squid_error = CleanText(absl::StripAsciiWhitespace(line.text.substr(colon + 1)));
      }
    }
    return p;
  };
  size_t head = WalkHead(bytes.substr(0, kMaxProxyHead), on_line, &problem);
  if (!problem.empty()) {
    ProxyReply bad;
    bad.result = ProxyReply::Result::kMalformed;
    bad.problem = std::string(problem);
    return bad;
  }
  if (head == 0) {
    ProxyReply more;
    if (bytes.size() >= kMaxProxyHead) {
      more.result = ProxyReply::Result::kOversized;
      more.problem = absl::StrCat("no end of the reply head within ", kMaxProxyHead, " bytes");
    }
    return more;
  }
  r.result = ProxyReply::Result::kComplete;
  r.head_length = head;
  return r;
}

ConnectRequest ParseConnectRequest(absl::string_view bytes) {
  ConnectRequest req;
  // Most first writes are a TLS record or another method: no need to look for a head.
  if (!absl::StartsWith(bytes, "CONNECT ")) return req;
  std::string authority;
  absl::string_view problem;
  auto on_line = [&authority](int index, const Line& line) -> absl::string_view {
    if (index > 0) return CheckHeaderLine(line);
    // Only a whole request line is judged: an incomplete one is "not yet", not "no".
    if (!line.complete) return "";
    absl::string_view t = line.text;
    if (!absl::ConsumePrefix(&t, "CONNECT ")) return "not CONNECT";
    size_t space = t.find(' ');
    if (space == absl::string_view::npos) return "no version";
    absl::string_view target = t.substr(0, space);
    absl::string_view version = t.substr(space + 1);
    if (version.size() != 8 || !absl::StartsWith(version, "HTTP/1.") ||
        !absl::ascii_isdigit(static_cast<unsigned char>(version[7]))) {
      return "not HTTP/1.x";
    }
    size_t colon = target.rfind(':');
    if (target.size() > kMaxAuthority || colon == absl::string_view::npos || colon == 0) return "bad authority";
    for (char c : target) {
      unsigned char u = static_cast<unsigned char>(c);
      if (IsControl(u) || u == ' ' || u >= 0x80) return "bad authority";
    }
    absl::string_view port = target.substr(colon + 1);
    uint32_t n = 0;
    if (port.empty() || port.size() > 5 || !absl::SimpleAtoi(port, &n) || n == 0 || n > 65535 ||
        !absl::ascii_isdigit(static_cast<unsigned char>(port[0]))) {
      return "bad port";
    }
    authority = std::string(target);
    return "";
  };
  size_t head = WalkHead(bytes.substr(0, kMaxProxyHead), on_line, &problem);
  if (problem.empty() && head > 0 && !authority.empty()) {
    req.is_connect = true;
    req.authority = std::move(authority);
  }
  return req;
}

}  // namespace awfshim
