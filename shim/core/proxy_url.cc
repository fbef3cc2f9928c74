#include "awfshim/proxy_url.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "awfshim/hex.h"
#include "awfshim/host_rules.h"

namespace awfshim {
namespace {

StatusOr<std::string> PercentDecode(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return InvalidArgumentError("truncated %-escape");
    int hi = HexDigitValue(s[i + 1]), lo = HexDigitValue(s[i + 2]);
    if (hi < 0 || lo < 0) return InvalidArgumentError("bad %-escape");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// A proxy URL may carry credentials, and a malformed one may have them anywhere (no '@':
// "http://user:S3cret" reads as host "user", port "S3cret"): an error quotes a piece only when
// it has the shape of what it claims to be.
bool LooksLike(absl::string_view piece, absl::string_view allowed_punctuation, size_t max_len) {
  return !piece.empty() && piece.size() <= max_len && std::all_of(piece.begin(), piece.end(), [&](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || absl::StrContains(allowed_punctuation, c);
  });
}

}  // namespace

StatusOr<ProxyUrl> ProxyUrl::Parse(absl::string_view url) {
  ProxyUrl p;
  absl::string_view rest = absl::StripAsciiWhitespace(url);
  if (size_t scheme_end = rest.find("://"); scheme_end != absl::string_view::npos) {
    std::string scheme = absl::AsciiStrToLower(rest.substr(0, scheme_end));
    if (scheme != "http") {
      return InvalidArgumentError(LooksLike(scheme, "+.-", 16)
                                      ? absl::StrCat("unsupported proxy scheme '", scheme, "' (only http)")
                                      : std::string("unsupported proxy scheme (only http)"));
    }
    rest = rest.substr(scheme_end + 3);
  }
  absl::ConsumeSuffix(&rest, "/");
  if (rest.find_first_of("/?#") != absl::string_view::npos) {
    return InvalidArgumentError("a proxy URL has no path, query or fragment");
  }
  if (size_t at = rest.rfind('@'); at != absl::string_view::npos) {
    absl::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = userinfo.find(':');
    StatusOr<std::string> user = PercentDecode(userinfo.substr(0, colon));
    StatusOr<std::string> pass =
        PercentDecode(colon == absl::string_view::npos ? absl::string_view() : userinfo.substr(colon + 1));
    if (!user.ok() || !pass.ok()) return InvalidArgumentError("a bad %-escape in the proxy credentials");
    p.user = *std::move(user);
    p.password = *std::move(pass);
  }
  absl::string_view host = rest, port;
  bool bracketed = absl::ConsumePrefix(&host, "[");
  if (bracketed) {
    size_t close = host.find(']');
    if (close == absl::string_view::npos) return InvalidArgumentError("unclosed '[' in proxy host");
    port = host.substr(close + 1);
    host = host.substr(0, close);
    if (!port.empty() && !absl::ConsumePrefix(&port, ":")) return InvalidArgumentError("junk after ']'");
  } else if (size_t colon = host.rfind(':'); colon != absl::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  if (host.empty()) return InvalidArgumentError("missing proxy host");
  if (bracketed || host.find(':') != absl::string_view::npos) {
    // Only an IPv6 literal has colons, and it must be in brackets ("[::1]:3128").
    if (!bracketed || host.find(':') == absl::string_view::npos || !Cidr::Parse(host).ok() ||
        host.find_first_of("[]/") != absl::string_view::npos) {
      return InvalidArgumentError(LooksLike(host, ":.%", 64) ? absl::StrCat("bad proxy host '", host,
                                                                              "' (an IPv6 address goes in brackets)")
                                                              : std::string("bad proxy host (an IPv6 address goes in brackets)"));
    }
  } else if (StatusOr<HostPattern> hp = HostPattern::Parse(host);
             !hp.ok() || absl::StrContains(host, "*")) {
    return InvalidArgumentError(LooksLike(host, ".-_", 253) ? absl::StrCat("bad proxy host '", host, "'")
                                                            : std::string("bad proxy host"));
  }
  if (!port.empty()) {
    int n = 0;
    if (!absl::SimpleAtoi(port, &n) || n < 1 || n > 65535) {
      return InvalidArgumentError(port.size() <= 10 && port.find_first_not_of("0123456789") == absl::string_view::npos
                                      ? absl::StrCat("bad proxy port '", port, "' (1 to 65535)")
                                      : std::string("bad proxy port (not a number from 1 to 65535)"));
    }
    p.port = static_cast<uint16_t>(n);
  }
  p.host = NormalizeHost(host);
  return p;
}

std::string ProxyUrl::Authority() const {
  return HostPort(host, port);
}

std::string ProxyUrl::Redacted() const {
  if (!has_credentials()) return absl::StrCat("http://", Authority());
  // A user without a password is itself the credential (a token as the user name).
  if (password.empty()) return absl::StrCat("http://***@", Authority());
  return absl::StrCat("http://", user, ":***@", Authority());
}

}  // namespace awfshim
