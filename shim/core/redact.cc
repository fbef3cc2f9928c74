#include "awfshim/redact.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "awfshim/hex.h"

namespace awfshim {
namespace {

constexpr absl::string_view kMask = "***";

// Prefixes of GitHub's token formats.
constexpr absl::string_view kGitHubPrefixes[] = {"github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"};

// Rounds of percent-decoding seen through: a URL in a value in a URL is encoded twice.
constexpr int kDecodings = 3;

bool IsTokenChar(unsigned char c) { return absl::ascii_isalnum(c) || c == '_'; }

bool IsBase64UrlChar(unsigned char c) { return absl::ascii_isalnum(c) || c == '_' || c == '-'; }

// What a parameter name is made of; any other character ends it.
bool IsNameChar(unsigned char c) { return IsBase64UrlChar(c) || c == '.' || c == '[' || c == ']'; }

// One character of a text as seen through percent-decoding: byte `c`, written as the raw bytes
// up to `end`, after `level` rounds of decoding (0: as written).
struct Unit {
  unsigned char c;
  size_t end;
  int level;
};

// The unit at raw offset `pos` (< text.size()) after `rounds` rounds of decoding. Each round
// reads the previous one's units, so the work per unit is bounded (3^rounds raw bytes) and a
// scan that only moves forward is linear.
Unit UnitAt(absl::string_view text, size_t pos, int rounds = kDecodings) {
  if (rounds == 0 || text[pos] != '%') return {static_cast<unsigned char>(text[pos]), pos + 1, 0};
  Unit u = UnitAt(text, pos, rounds - 1);
  if (u.c != '%' || u.end >= text.size()) return u;
  Unit hi = UnitAt(text, u.end, rounds - 1);
  int high = HexDigitValue(hi.c);
  if (high < 0 || hi.end >= text.size()) return u;
  Unit lo = UnitAt(text, hi.end, rounds - 1);
  int low = HexDigitValue(lo.c);
  if (low < 0) return u;
  return {static_cast<unsigned char>(high * 16 + low), lo.end, rounds};
}

// Whether the decoded text at `pos` starts with `want`; `*end` is where it ends.
bool DecodedStartsWith(absl::string_view text, size_t pos, absl::string_view want, size_t* end) {
  for (char w : want) {
    if (pos >= text.size()) return false;
    Unit u = UnitAt(text, pos);
    if (u.c != static_cast<unsigned char>(w)) return false;
    pos = u.end;
  }
  *end = pos;
  return true;
}

// The end of the GitHub token at `pos` (its kind in `*kind`), or 0.
size_t GitHubTokenEnd(absl::string_view text, size_t pos, absl::string_view* kind) {
  for (absl::string_view p : kGitHubPrefixes) {
    size_t end;
    if (!DecodedStartsWith(text, pos, p, &end)) continue;
    size_t body = end;
    while (body < text.size()) {
      Unit u = UnitAt(text, body);
      if (!IsTokenChar(u.c)) break;
      body = u.end;
    }
    *kind = p;
    return body > end ? body : 0;
  }
  return 0;
}

// The end of the JSON Web Token at `pos`: "eyJ" (a base64url JSON header), then base64url and
// dots up to the last base64url character after a dot (so a signature-less token counts, and a
// dot after the token is not part of it). 0 when nothing follows a dot.
size_t JwtEnd(absl::string_view text, size_t pos) {
  size_t p;
  if (!DecodedStartsWith(text, pos, "eyJ", &p)) return 0;
  size_t end = 0;
  bool dotted = false;
  while (p < text.size()) {
    Unit u = UnitAt(text, p);
    if (u.c == '.') {
      dotted = true;
    } else if (!IsBase64UrlChar(u.c)) {
      break;
    } else if (dotted) {
      end = u.end;
    }
    p = u.end;
  }
  return end;
}

// After a '/': the start and end of the secret in a Telegram bot token ("bot<id>:<secret>";
// the secret is 35 characters today), or false.
bool BotToken(absl::string_view text, size_t pos, size_t* start, size_t* end) {
  size_t p;
  if (!DecodedStartsWith(text, pos, "bot", &p)) return false;
  *start = p;
  Unit u{0, p, 0};
  size_t digits = 0;
  while (p < text.size() && absl::ascii_isdigit((u = UnitAt(text, p)).c)) {
    p = u.end;
    digits++;
  }
  if (digits == 0 || p >= text.size() || u.c != ':') return false;
  p = u.end;
  size_t secret = 0;
  while (p < text.size() && IsBase64UrlChar((u = UnitAt(text, p)).c)) {
    p = u.end;
    secret++;
  }
  *end = p;
  return secret >= 20;
}

// After "//" whose characters were decoded up to `level` rounds: the offset of the last '@'
// before the authority ends, or `pos` when it has no userinfo.
size_t UserinfoEnd(absl::string_view text, size_t pos, int level) {
  size_t at = pos;
  for (size_t p = pos; p < text.size();) {
    Unit u = UnitAt(text, p);
    if (u.level <= level && (u.c == '/' || u.c == '?' || u.c == '#')) break;
    if (u.c == '@') at = p;
    p = u.end;
  }
  return at;
}

// Whether `u` ends a value after an '=' decoded in `level` rounds: a separator encoded no
// more than the '=' (so "p%26ss" in a raw query and "p%2526ss" in a once-encoded one are one
// value); in the path also a raw '/' or '?'.
bool EndsValue(const Unit& u, int level, bool in_path) {
  if (u.level <= level && (u.c == '&' || u.c == ';' || u.c == '#')) return true;
  return in_path && u.level == 0 && (u.c == '/' || u.c == '?');
}

// `lower` is already lower case.
bool ContainsAny(absl::string_view lower, std::initializer_list<absl::string_view> needles) {
  for (absl::string_view n : needles) {
    if (absl::StrContains(lower, n)) return true;
  }
  return false;
}

// `name` is percent-decoded, lower case, with '_' for '-'.
bool IsSecretName(absl::string_view name) {
  for (absl::string_view exact : {"code", "sig", "key", "auth", "jwt", "state", "sid", "pass", "otp", "ticket"}) {
    if (name == exact) return true;
  }
  return ContainsAny(name, {"token", "secret", "password", "passwd", "passphrase", "pwd", "signature", "api_key",
                            "apikey", "access_key", "private_key", "subscription_key", "credential", "session",
                            "sessid", "authorization", "bearer", "assertion", "verifier"});
}

// A part of a text the trace shows as `kind` then "***".
struct Span {
  size_t start, end;
  absl::string_view kind;
};

// The GitHub tokens and JWTs in `text` (see ScrubTokens), in order.
std::vector<Span> FindTokens(absl::string_view text) {
  std::vector<Span> spans;
  if (!MayContainToken(text)) return spans;
  unsigned char prev = 0;  // the decoded character before `pos`: a token starts after no token character
  size_t pos = 0;
  while (pos < text.size()) {
    Unit u = UnitAt(text, pos);
    absl::string_view kind;
    size_t end = 0;
    if (u.c == 'g' && !IsTokenChar(prev)) {
      end = GitHubTokenEnd(text, pos, &kind);
    } else if (u.c == 'e' && !IsBase64UrlChar(prev)) {
      end = JwtEnd(text, pos);
      kind = "jwt:";
    }
    if (end != 0) {
      spans.push_back({pos, end, kind});
      pos = end;
      prev = '*';
      continue;
    }
    prev = u.c;
    pos = u.end;
  }
  return spans;
}

// `text` with the spans (each list in order) replaced; overlapping spans become one "***".
std::string Render(absl::string_view text, const std::vector<Span>& a, const std::vector<Span>& b = {}) {
  std::vector<Span> spans(a.size() + b.size());
  std::merge(a.begin(), a.end(), b.begin(), b.end(), spans.begin(),
             [](const Span& x, const Span& y) { return x.start < y.start; });
  std::string out;
  size_t copied = 0;
  for (size_t i = 0; i < spans.size();) {
    Span s = spans[i++];
    for (; i < spans.size() && spans[i].start < s.end; i++) {
      s.end = std::max(s.end, spans[i].end);
      s.kind = "";
    }
    absl::StrAppend(&out, text.substr(copied, s.start - copied), s.kind, kMask);
    copied = s.end;
  }
  absl::StrAppend(&out, text.substr(copied));
  return out;
}

}  // namespace

absl::string_view TokenKind(absl::string_view token) {
  for (absl::string_view p : kGitHubPrefixes) {
    if (absl::StartsWith(token, p)) return p;
  }
  if (absl::StartsWith(token, "eyJ") && token.find('.') != absl::string_view::npos) return "jwt:";
  return "";
}

std::string RedactCredential(absl::string_view value) {
  value = absl::StripAsciiWhitespace(value);
  size_t space = value.find(' ');
  if (space == absl::string_view::npos) return absl::StrCat(TokenKind(value), kMask);
  absl::string_view scheme = value.substr(0, space);
  absl::string_view secret = absl::StripLeadingAsciiWhitespace(value.substr(space + 1));
  return absl::StrCat(scheme, " ", TokenKind(secret), kMask);
}

bool IsSecretHeader(absl::string_view name) {
  std::string lower = absl::AsciiStrToLower(name);
  if (lower == "authorization" || lower == "proxy-authorization" || lower == "cookie" || lower == "set-cookie") {
    return true;
  }
  return ContainsAny(lower, {"token", "secret", "password", "api-key", "apikey", "signature", "session"});
}

std::string RedactHeader(absl::string_view name, absl::string_view value) {
  if (!IsSecretHeader(name)) return ScrubTokens(value);
  std::string lower = absl::AsciiStrToLower(name);
  if (lower == "cookie" || lower == "set-cookie") return std::string(kMask);
  return RedactCredential(value);
}

std::string RedactTarget(absl::string_view target) {
  // Every rule reads the target as sent, and the masks are merged: secret values, userinfo and
  // bot tokens found here, tokens by FindTokens (a bot token's mask may end inside a JWT; a
  // token replaced first could hide the parameter name it is part of).
  std::vector<Span> masks;
  std::string name;  // the parameter name being read: decoded, lower case, '_' for '-'
  bool in_path = true;
  Unit prev{0, 0, 0};  // the previous character, even when it was masked
  size_t pos = 0;
  while (pos < target.size()) {
    size_t start, end;
    if (prev.c == '/' && BotToken(target, pos, &start, &end)) {
      masks.push_back({start, end, ""});
      pos = end;
      prev = {'*', end, 0};
      continue;
    }
    Unit u = UnitAt(target, pos);
    pos = u.end;
    if (IsNameChar(u.c)) {
      name.push_back(u.c == '-' ? '_' : absl::ascii_tolower(u.c));
      prev = u;
      continue;
    }
    bool secret_value = u.c == '=' && IsSecretName(name);
    name.clear();
    if (secret_value) {
      Unit last = u;
      while (pos < target.size()) {
        Unit v = UnitAt(target, pos);
        if (EndsValue(v, u.level, in_path)) break;
        last = v;
        pos = v.end;
      }
      masks.push_back({u.end, pos, ""});
      u = last;
    } else if (u.c == '/' && prev.c == '/') {
      // "//" starts an authority (after any scheme, or none; the first '/' may be masked
      // already, at the end of a value): its userinfo goes.
      size_t at = UserinfoEnd(target, pos, std::max(prev.level, u.level));
      if (at > pos) {
        masks.push_back({pos, at, ""});
        pos = at;
        u = {'*', at, 0};
      }
    } else if (u.level == 0 && (u.c == '?' || u.c == '#')) {
      in_path = false;
    }
    prev = u;
  }
  return Render(target, masks, FindTokens(target));
}

bool MayContainToken(absl::string_view text) {
  // Every match starts with "gh", "gi", "ey" or a percent-escape.
  for (size_t i = 0; i + 1 < text.size(); i++) {
    char c = text[i], d = text[i + 1];
    if (c == '%' || (c == 'g' && (d == 'h' || d == 'i')) || (c == 'e' && d == 'y')) return true;
  }
  return false;
}

std::string ScrubTokens(absl::string_view text) { return Render(text, FindTokens(text)); }

}  // namespace awfshim
