#include "awfshim/host_rules.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace awfshim {
namespace {

bool IsHostChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

Status CheckHostName(absl::string_view name) {
  if (name.empty()) return InvalidArgumentError("expected a host name");
  if (name.size() > 253) return InvalidArgumentError("host name longer than 253 characters");
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    if (label.empty()) return InvalidArgumentError("empty label in host name");
    if (label.size() > 63) return InvalidArgumentError("label longer than 63 characters");
  }
  for (char c : name) {
    if (c == '*') return InvalidArgumentError("'*' is allowed only as the whole first label");
    if (!IsHostChar(c)) {
      return InvalidArgumentError(absl::StrCat("unexpected character '", std::string(1, c), "' in host name"));
    }
  }
  return OkStatus();
}

struct ListItem {
  absl::string_view text;  // trimmed, never empty
  int column;              // 1-based
};

// The items of a comma-separated list; empty ones are skipped.
std::vector<ListItem> ListItems(absl::string_view list) {
  std::vector<ListItem> items;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t end = std::min(list.find(',', pos), list.size());
    absl::string_view raw = list.substr(pos, end - pos);
    absl::string_view item = absl::StripAsciiWhitespace(raw);
    int column = static_cast<int>(pos + raw.size() - absl::StripLeadingAsciiWhitespace(raw).size()) + 1;
    if (!item.empty()) items.push_back({item, column});
    pos = end + 1;
  }
  return items;
}

// An address, or an address followed by '/' (a range, maybe a bad one).
bool IsAddressOrRange(absl::string_view item) {
  std::string a(item.substr(0, item.find('/')));
  unsigned char buf[16];
  return inet_pton(AF_INET, a.c_str(), buf) == 1 || inet_pton(AF_INET6, a.c_str(), buf) == 1;
}

// Why curl and reqwest do not read a NO_PROXY entry alike, or "" when they might.
absl::string_view NoProxyEntryProblem(absl::string_view item) {
  if (item == "*") return "'*' bypasses everything for curl only as the whole value (for reqwest, anywhere)";
  if (absl::StrContains(item, "*")) return "curl and reqwest read '*' only as the whole value";
  if (absl::StartsWith(item, "[")) return "curl and reqwest match no bracketed address";
  if (IsAddressOrRange(item)) return "";
  if (absl::StrContains(item, "://")) return "curl and reqwest match host names, not URLs";
  if (absl::StrContains(item, ":")) return "curl and reqwest ignore an entry with a port";
  if (item.find_first_of(" \t") != absl::string_view::npos) {
    return "curl reads blanks as separators, reqwest as part of the name";
  }
  if (absl::EndsWith(item, ".")) return "curl drops a trailing dot, reqwest does not";
  return "";
}

}  // namespace

std::string NormalizeHost(absl::string_view host) {
  absl::ConsumeSuffix(&host, ".");
  return absl::AsciiStrToLower(host);
}

std::string HostPort(absl::string_view host, uint16_t port) {
  return host.find(':') != absl::string_view::npos ? absl::StrCat("[", host, "]:", port) : absl::StrCat(host, ":", port);
}

StatusOr<HostPattern> HostPattern::Parse(absl::string_view text) {
  HostPattern p;
  std::string norm = NormalizeHost(text);
  if (norm == "*") {
    p.kind_ = Kind::kAny;
    return p;
  }
  absl::string_view name = norm;
  if (absl::ConsumePrefix(&name, "*.")) {
    p.kind_ = Kind::kSubdomains;
  }
  if (Status s = CheckHostName(name); !s.ok()) return s;
  p.name_ = p.kind_ == Kind::kSubdomains ? absl::StrCat(".", name) : std::string(name);
  return p;
}

bool HostPattern::Matches(absl::string_view host) const {
  switch (kind_) {
    case Kind::kAny:
      return true;
    case Kind::kExact:
      return host == name_;
    case Kind::kSubdomains:
      return host.size() > name_.size() && absl::EndsWith(host, name_);
  }
  return false;
}

std::string HostPattern::ToString() const {
  switch (kind_) {
    case Kind::kAny:
      return "*";
    case Kind::kExact:
      return name_;
    case Kind::kSubdomains:
      return absl::StrCat("*", name_);
  }
  return name_;
}

StatusOr<Cidr> Cidr::Parse(absl::string_view text) {
  Cidr c;
  absl::string_view addr = text;
  int max_bits = 0;
  std::optional<int> bits;
  if (size_t slash = text.find('/'); slash != absl::string_view::npos) {
    addr = text.substr(0, slash);
    int n = 0;
    if (!absl::SimpleAtoi(text.substr(slash + 1), &n) || n < 0) {
      return InvalidArgumentError("expected a prefix length after '/'");
    }
    bits = n;
  }
  std::string a(absl::StripPrefix(absl::StripSuffix(addr, "]"), "["));
  if (inet_pton(AF_INET, a.c_str(), c.bytes_.data()) == 1) {
    c.family_ = AF_INET;
    max_bits = 32;
  } else if (inet_pton(AF_INET6, a.c_str(), c.bytes_.data()) == 1) {
    c.family_ = AF_INET6;
    max_bits = 128;
  } else {
    return InvalidArgumentError("expected an IPv4 or IPv6 address");
  }
  c.prefix_bits_ = bits.value_or(max_bits);
  if (c.prefix_bits_ > max_bits) {
    return InvalidArgumentError(absl::StrCat("prefix length above ", max_bits));
  }
  return c;
}

bool Cidr::Contains(const sockaddr* addr) const {
  const uint8_t* bytes = nullptr;
  uint8_t mapped[4];
  if (addr->sa_family == AF_INET && family_ == AF_INET) {
    bytes = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in*>(addr)->sin_addr);
  } else if (addr->sa_family == AF_INET6) {
    const auto* a6 = &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr;
    if (family_ == AF_INET6) {
      bytes = a6->s6_addr;
    } else if (IN6_IS_ADDR_V4MAPPED(a6)) {
      std::memcpy(mapped, a6->s6_addr + 12, 4);
      bytes = mapped;
    }
  }
  if (!bytes) return false;
  int full = prefix_bits_ / 8;
  if (std::memcmp(bytes, bytes_.data(), full) != 0) return false;
  int rest = prefix_bits_ % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (bytes[full] & mask) == (bytes_[full] & mask);
}

std::string Cidr::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(family_, bytes_.data(), buf, sizeof buf);
  return absl::StrCat(buf, "/", prefix_bits_);
}

bool HostRules::BypassesName(absl::string_view host) const {
  std::string norm = NormalizeHost(host);
  for (const auto& p : bypass_names_) {
    if (p.Matches(norm)) return true;
  }
  return false;
}

bool HostRules::RoutesName(absl::string_view host) const {
  std::string norm = NormalizeHost(host);
  bool routed = false;
  for (const auto& p : route_) {
    if (p.Matches(norm)) {
      routed = true;
      break;
    }
  }
  return routed && !BypassesName(norm);
}

bool HostRules::BypassesAddress(const sockaddr* addr, const std::optional<std::string>& name) const {
  std::optional<bool> routed;  // looked up once, and only when a NO_PROXY range contains addr
  for (size_t i = 0; i < bypass_addrs_.size(); i++) {
    if (!bypass_addrs_[i].Contains(addr)) continue;
    if (covers_routed_names_[i]) return true;
    if (!routed) routed = name && RoutesName(*name);
    if (!*routed) return true;
  }
  return false;
}

bool HostRules::RoutesEverything() const {
  for (const auto& p : route_) {
    if (p.is_any()) return true;
  }
  return false;
}

std::vector<ListError> HostRules::AddList(absl::string_view list, bool as_bypass, bool allow_cidrs) {
  std::vector<ListError> errors;
  for (const auto& [item, column] : ListItems(list)) {
    bool looks_numeric = item.find(':') != absl::string_view::npos || item.find('/') != absl::string_view::npos ||
                         absl::ascii_isdigit(static_cast<unsigned char>(item.back()));
    StatusOr<Cidr> cidr = looks_numeric ? Cidr::Parse(item) : InvalidArgumentError("");
    if (cidr.ok()) {
      if (allow_cidrs) {
        AddBypass(*std::move(cidr));
      } else {
        errors.push_back({column, absl::StrCat("'", item, "': addresses are not allowed here; expected a host pattern")});
      }
    } else if (StatusOr<HostPattern> p = HostPattern::Parse(item); p.ok()) {
      if (as_bypass) {
        AddBypass(*std::move(p));
      } else {
        AddRoute(*std::move(p));
      }
    } else {
      absl::string_view why = looks_numeric && allow_cidrs ? cidr.status().message() : p.status().message();
      errors.push_back({column, absl::StrCat("'", item, "': ", why)});
    }
  }
  return errors;
}

// Each form's reading by curl 7.88 and reqwest is in README.md, "NO_PROXY forms".
std::vector<ListError> HostRules::AddNoProxy(absl::string_view list, std::optional<absl::string_view> also) {
  std::vector<ListError> ignored;
  absl::flat_hash_set<std::string> in_also;
  if (also) {
    for (const auto& [item, column] : ListItems(*also)) in_also.insert(absl::AsciiStrToLower(item));
  } else if (list == "*") {  // curl: only the exact value; reqwest: also " * " and "*" in a list
    AddBypass(*HostPattern::Parse("*"));
    return ignored;
  }
  for (const auto& [item, column] : ListItems(list)) {
    absl::string_view why = NoProxyEntryProblem(item);
    if (why.empty() && also && !in_also.contains(absl::AsciiStrToLower(item))) {
      why = "not in the other spelling of the variable, which curl or reqwest reads instead";
    }
    std::optional<Cidr> range;
    if (why.empty() && IsAddressOrRange(item)) {
      StatusOr<Cidr> c = Cidr::Parse(item);
      if (!c.ok()) {
        ignored.push_back({column, absl::StrCat("'", item, "': ", c.status().message())});
        continue;
      }
      if (item.find('/') != absl::string_view::npos && c->family() == AF_INET6) {
        why = "curl 7.88 matches no IPv6 range";
      } else if (c->prefix_bits() == 0) {
        why = "curl reads a /0 range as its address alone, reqwest as every address";
      } else {
        range = *std::move(c);
      }
    }
    if (!why.empty()) {
      ignored.push_back({column, absl::StrCat("'", item, "': ", why)});
      continue;
    }
    if (range) {
      bypass_addrs_.push_back(*std::move(range));
      covers_routed_names_.push_back(false);
      continue;
    }
    // curl and reqwest: a name covers itself and its subdomains, with or without a leading dot.
    absl::string_view name = absl::StripPrefix(item, ".");
    StatusOr<HostPattern> exact = HostPattern::Parse(name);
    if (!exact.ok()) {
      ignored.push_back({column, absl::StrCat("'", item, "': ", exact.status().message())});
      continue;
    }
    AddBypass(*std::move(exact));
    AddBypass(*HostPattern::Parse(absl::StrCat("*.", name)));
  }
  return ignored;
}

}  // namespace awfshim
