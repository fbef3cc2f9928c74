#include "awfshim/redact.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace awfshim {
namespace {

constexpr absl::string_view kMask = "***";

// Prefixes of GitHub's token formats.
constexpr absl::string_view kGitHubPrefixes[] = {"github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"};

bool IsTokenChar(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// `lower` is already lower case.
bool ContainsAny(absl::string_view lower, std::initializer_list<absl::string_view> needles) {
  for (absl::string_view n : needles) {
    if (absl::StrContains(lower, n)) return true;
  }
  return false;
}

bool IsSecretParameter(absl::string_view name) {
  std::string lower = absl::AsciiStrToLower(name);
  for (absl::string_view exact : {"code", "sig", "key", "auth", "jwt", "state"}) {
    if (lower == exact) return true;
  }
  return ContainsAny(lower, {"token", "secret", "password", "passwd", "signature", "api_key", "apikey",
                                 "access_key", "credential", "session"});
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

std::string RedactQuery(absl::string_view target) {
  size_t q = target.find('?');
  if (q == absl::string_view::npos) return ScrubTokens(target);
  std::string out(target.substr(0, q + 1));
  absl::string_view query = target.substr(q + 1);
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find_first_of("&;", pos);
    if (end == absl::string_view::npos) end = query.size();
    absl::string_view pair = query.substr(pos, end - pos);
    size_t eq = pair.find('=');
    if (eq != absl::string_view::npos && IsSecretParameter(pair.substr(0, eq))) {
      absl::StrAppend(&out, pair.substr(0, eq + 1), kMask);
    } else {
      absl::StrAppend(&out, pair);
    }
    if (end < query.size()) out.push_back(query[end]);
    pos = end + 1;
  }
  return ScrubTokens(out);
}

bool MayContainToken(absl::string_view text) {
  for (size_t i = 0; i + 4 <= text.size(); i++) {
    if (text[i] == 'g' && text[i + 1] == 'h' && (text[i + 2] == 'p' || text[i + 2] == 'o' || text[i + 2] == 'u' ||
                                                 text[i + 2] == 's' || text[i + 2] == 'r') && text[i + 3] == '_') {
      return true;
    }
    if (text[i] == 'g' && absl::StartsWith(text.substr(i), "github_pat_")) return true;
  }
  return false;
}

std::string ScrubTokens(absl::string_view text) {
  if (!MayContainToken(text)) return std::string(text);
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    absl::string_view kind;
    if (i == 0 || !IsTokenChar(text[i - 1])) kind = TokenKind(text.substr(i));
    if (!kind.empty() && kind != "jwt:") {
      size_t end = i + kind.size();
      while (end < text.size() && IsTokenChar(text[end])) end++;
      if (end > i + kind.size()) {
        absl::StrAppend(&out, kind, kMask);
        i = end;
        continue;
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

}  // namespace awfshim
