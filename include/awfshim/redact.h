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

// A request target as the trace may show it. Percent-encoding is seen through (up to three
// rounds, for a URL inside a value inside a URL): the value after a parameter whose decoded name
// looks secret becomes "***", wherever the parameter is ("?access_token=…", "?X-Api-Key=…",
// "?%61ccess_token=…", ";jsessionid=…", "?next=%2Fcb%3Fcode%3D…"); so do the userinfo of any
// URL ("Https://u:p@h/" -> "Https://***@h/") and a Telegram bot token ("/bot123:AA…/" ->
// "/bot***/"); tokens are replaced as by ScrubTokens. Linear time; the result is at most twice as
// long, and ScrubTokens leaves it (and any prefix of it) unchanged.
std::string RedactTarget(absl::string_view target);

// Replaces every GitHub token ("ghp_…", "github_pat_…") and JSON Web Token ("eyJ…" with a
// dot-separated part after it) in free text with its kind and "***" ("ghp_***", "jwt:***"), also
// when written percent-encoded in part or whole ("token%3Aghp_…", "%67hp_…"). A token starts
// after a character that cannot be part of it. The trace applies it to every string it writes,
// as a last line of defence; scrubbing what it returns, or a prefix of that, changes nothing.
std::string ScrubTokens(absl::string_view text);
// False only when ScrubTokens would return `text` unchanged (a quick check before it).
bool MayContainToken(absl::string_view text);

}  // namespace awfshim
