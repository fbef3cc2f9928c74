#include "http1_head.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "awfshim/redact.h"
#include "http1_body.h"

namespace awfshim::http1_detail {

namespace {

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

// RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
bool IsScheme(absl::string_view s) {
  if (s.empty() || !absl::ascii_isalpha(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
  });
}

}  // namespace

namespace {

std::string WithoutControls(absl::string_view text, bool drop_spaces) {
  std::string clean;
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (IsControl(u) || (drop_spaces && u == ' ')) continue;
    clean.push_back(c);
  }
  return clean;
}

}  // namespace

std::string Shown(absl::string_view text, size_t cap, bool drop_spaces) {
  std::string out = ScrubTokens(WithoutControls(text.substr(0, 4 * cap), drop_spaces));
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

absl::string_view CheckRequestPrefix(absl::string_view head) {
  size_t n = std::min(head.size(), kMaxMethod + 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = static_cast<unsigned char>(head[i]);
    if (c == ' ') return i == 0 ? kNotRequest : "";
    if (!IsTokenChar(c)) return kNotRequest;
  }
  return head.size() > kMaxMethod ? kNotRequest : "";
}

absl::string_view CheckResponsePrefix(absl::string_view head) {
  constexpr absl::string_view kProto = "HTTP/1.";
  size_t n = std::min(head.size(), kProto.size());
  return head.substr(0, n) == kProto.substr(0, n) ? "" : kNotResponse;
}

namespace {

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

}  // namespace

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

void SplitTarget(absl::string_view target, absl::string_view* authority, absl::string_view* path) {
  *authority = "";
  *path = target;
  // Absolute form, whatever the scheme and its case ("Https://", "ws://").
  size_t colon = target.find("://");
  if (colon == absl::string_view::npos || !IsScheme(target.substr(0, colon))) return;
  absl::string_view rest = target.substr(colon + 3);
  size_t end = rest.find_first_of("/?#");
  absl::string_view auth = rest.substr(0, end);
  size_t at = auth.rfind('@');
  if (at != absl::string_view::npos) auth = auth.substr(at + 1);
  *authority = auth;
  *path = end == absl::string_view::npos ? absl::string_view("/") : rest.substr(end);
}

std::string CleanHost(absl::string_view host) {
  size_t at = host.rfind('@');
  if (at != absl::string_view::npos) host = host.substr(at + 1);
  return Shown(host, kMaxHost, /*drop_spaces=*/true);
}

std::string ShownPath(absl::string_view target) {
  // Redacted whole (a head holds it), not after Shown's scrub: a token replaced first could hide
  // the parameter name it is part of ("?x-ghp_abc_token=…").
  std::string out = RedactTarget(WithoutControls(target, /*drop_spaces=*/false));
  if (out.size() > kMaxPath) out.resize(kMaxPath);
  return out;
}

}  // namespace awfshim::http1_detail
