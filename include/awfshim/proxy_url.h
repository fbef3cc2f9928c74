// The proxy's URL as the shim takes it: http only, credentials %-decoded, errors that never
// repeat them.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "awfshim/status.h"

namespace awfshim {

// http://[user:pass@]host[:port][/]
struct ProxyUrl {
  std::string host;  // a name or an address literal, without brackets
  uint16_t port = 80;
  std::string user;
  std::string password;

  static StatusOr<ProxyUrl> Parse(absl::string_view url);
  bool has_credentials() const { return !user.empty() || !password.empty(); }
  // The URL with the password replaced: safe to log.
  std::string Redacted() const;
  // host:port, bracketing an IPv6 literal.
  std::string Authority() const;
};

}  // namespace awfshim
