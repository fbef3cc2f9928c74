// Host patterns and address ranges: which names are tunnelled and which never are.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include <string_view>
#include <vector>

#include "awfshim/status.h"

namespace awfshim {

// Lower-cases and drops one trailing dot: "API.GitHub.com." -> "api.github.com".
std::string NormalizeHost(absl::string_view host);

// "host:port", an IPv6 literal in brackets: "[::1]:3128".
std::string HostPort(absl::string_view host, uint16_t port);

// `name` (exactly that host), `*.suffix` (any subdomain of suffix, not suffix itself) or `*`.
// Case-insensitive; a trailing dot is tolerated on both sides.
class HostPattern {
 public:
  static StatusOr<HostPattern> Parse(absl::string_view text);
  bool Matches(absl::string_view normalized_host) const;
  std::string ToString() const;
  bool is_any() const { return kind_ == Kind::kAny; }

 private:
  enum class Kind { kExact, kSubdomains, kAny };
  Kind kind_ = Kind::kExact;
  std::string name_;  // normalized; for kSubdomains, with the leading dot (".github.com")
};

// An IPv4 or IPv6 address range; a bare address is a range of one.
class Cidr {
 public:
  static StatusOr<Cidr> Parse(absl::string_view text);
  bool Contains(const sockaddr* addr) const;
  std::string ToString() const;
  int family() const { return family_; }
  int prefix_bits() const { return prefix_bits_; }

 private:
  int family_ = AF_INET;
  std::array<uint8_t, 16> bytes_{};
  int prefix_bits_ = 0;
};

// A parsed comma-separated list and what it could not parse, with the column (1-based) of each
// bad item.
struct ListError {
  int column;
  std::string message;
};

// Which names are tunnelled, which names and addresses never are. Bypass wins over route.
class HostRules {
 public:
  void AddRoute(HostPattern p) { route_.push_back(std::move(p)); }
  void AddBypass(HostPattern p) { bypass_names_.push_back(std::move(p)); }
  void AddBypass(Cidr c) {
    bypass_addrs_.push_back(std::move(c));
    covers_routed_names_.push_back(true);
  }

  // A name is routed when a route pattern matches and no bypass pattern does.
  bool RoutesName(absl::string_view host) const;
  bool BypassesName(absl::string_view host) const;
  // `name`: the routed name the application looked up for `addr`, if any. A NO_PROXY address,
  // like curl's and reqwest's, covers connections to the address itself, never a routed name
  // that resolved to it; the other bypassed addresses cover both.
  bool BypassesAddress(const sockaddr* addr, const std::optional<std::string>& name = std::nullopt) const;
  // `*` is among the route patterns: addresses without a name are tunnelled too.
  bool RoutesEverything() const;

  const std::vector<HostPattern>& route() const { return route_; }
  const std::vector<HostPattern>& bypass_names() const { return bypass_names_; }
  const std::vector<Cidr>& bypass_addresses() const { return bypass_addrs_; }

  // Parses "a,*.b, 10.0.0.0/8" into patterns (and, when `allow_cidrs`, address ranges), adding
  // them as route or bypass entries. Empty items are skipped.
  std::vector<ListError> AddList(absl::string_view list, bool as_bypass, bool allow_cidrs);

  // Adds the entries of a NO_PROXY value that curl and reqwest read alike (README, "NO_PROXY
  // forms"); an entry they read differently, or that neither can use, is left out, so that a
  // routed host is never bypassed on a guess, and returned (for a warning). With `also` (the
  // other spelling of the variable, set to another value), an entry must be in both.
  std::vector<ListError> AddNoProxy(absl::string_view list, std::optional<absl::string_view> also = std::nullopt);

 private:
  std::vector<HostPattern> route_;
  std::vector<HostPattern> bypass_names_;
  std::vector<Cidr> bypass_addrs_;
  std::vector<bool> covers_routed_names_;  // per bypass_addrs_ entry: false for NO_PROXY's
};

}  // namespace awfshim
