// Redaction: what the trace may say about credentials. Keep the scheme and the token kind
// (e.g. "Bearer github_pat_***"), never the secret.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include <string_view>

namespace awfshim {

// The recognisable prefix of a token ("github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
// "jwt:" for a JSON Web Token), or "" when the shape is unknown.
absl::string_view TokenKind(absl::string_view token);

// An Authorization-style value: "Bearer github_pat_abc" -> "Bearer github_pat_***",
// "Basic dXNlcjpw" -> "Basic ***", "gho_abc" -> "gho_***".
std::string RedactCredential(absl::string_view value);

// Headers whose values are secrets (Authorization, Proxy-Authorization, Cookie, Set-Cookie,
// and any name mentioning a token, secret, password, key or signature).
bool IsSecretHeader(absl::string_view name);

// The header's value as the trace may show it.
std::string RedactHeader(absl::string_view name, absl::string_view value);

// A request target with secret-looking query values replaced: "/x?access_token=abc&page=2" ->
// "/x?access_token=***&page=2".
std::string RedactQuery(absl::string_view target);

// Replaces every GitHub-token-shaped run in free text ("ghp_…", "github_pat_…") with its kind
// and "***". The trace applies it to every string it writes, as a last line of defence.
std::string ScrubTokens(absl::string_view text);
bool MayContainToken(absl::string_view text);

}  // namespace awfshim
