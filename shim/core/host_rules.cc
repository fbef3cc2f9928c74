#include "awfshim/host_rules.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/ascii.h"
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

bool HostRules::BypassesAddress(const sockaddr* addr) const {
  for (const auto& c : bypass_addrs_) {
    if (c.Contains(addr)) return true;
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
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t end = list.find(',', pos);
    if (end == absl::string_view::npos) end = list.size();
    absl::string_view raw = list.substr(pos, end - pos);
    size_t lead = raw.size() - absl::StripLeadingAsciiWhitespace(raw).size();
    absl::string_view item = absl::StripAsciiWhitespace(raw);
    int column = static_cast<int>(pos + lead) + 1;
    if (!item.empty()) {
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
    pos = end + 1;
  }
  return errors;
}

}  // namespace awfshim
