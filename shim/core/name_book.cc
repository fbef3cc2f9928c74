#include "awfshim/name_book.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "awfshim/host_rules.h"

namespace awfshim {
namespace {

constexpr uint32_t kV4Base = 0xC6120000;  // 198.18.0.0
constexpr uint32_t kV4Size = 1u << 17;    // /15
// fd77:6166:7368:696d::/64 — a private prefix ("wafshim" in its bytes).
constexpr uint8_t kV6Prefix[8] = {0xfd, 0x77, 0x61, 0x66, 0x73, 0x68, 0x69, 0x6d};

AddrKey V4Key(uint32_t host_order) {
  AddrKey k;
  k.family = AF_INET;
  uint32_t be = htonl(host_order);
  std::memcpy(k.bytes.data(), &be, 4);
  return k;
}

AddrKey V6Key(uint64_t interface_id) {
  AddrKey k;
  k.family = AF_INET6;
  std::memcpy(k.bytes.data(), kV6Prefix, 8);
  for (int i = 0; i < 8; i++) k.bytes[8 + i] = static_cast<uint8_t>(interface_id >> (56 - 8 * i));
  return k;
}

}  // namespace

std::optional<AddrKey> AddrKey::From(const sockaddr* addr) {
  AddrKey k;
  if (addr->sa_family == AF_INET) {
    k.family = AF_INET;
    std::memcpy(k.bytes.data(), &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, 4);
    return k;
  }
  if (addr->sa_family == AF_INET6) {
    const in6_addr& a6 = reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
      k.family = AF_INET;
      std::memcpy(k.bytes.data(), a6.s6_addr + 12, 4);
    } else {
      k.family = AF_INET6;
      std::memcpy(k.bytes.data(), a6.s6_addr, 16);
    }
    return k;
  }
  return std::nullopt;
}

std::string AddrKey::ToString() const {
  char buf[INET6_ADDRSTRLEN] = "";
  inet_ntop(family, bytes.data(), buf, sizeof buf);
  return buf;
}

uint64_t StableNameHash(absl::string_view name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

bool NameBook::IsSynthetic(const AddrKey& a) {
  if (a.family == AF_INET) {
    uint32_t be;
    std::memcpy(&be, a.bytes.data(), 4);
    return (ntohl(be) & ~(kV4Size - 1)) == kV4Base;
  }
  return a.family == AF_INET6 && std::memcmp(a.bytes.data(), kV6Prefix, 8) == 0;
}

AddrKey NameBook::Synthetic(absl::string_view name, int family) {
  std::string norm = NormalizeHost(name);
  std::lock_guard<std::mutex> lock(mu_);
  auto& by_name = family == AF_INET ? v4_ : v6_;
  if (auto it = by_name.find(norm); it != by_name.end()) return it->second;
  uint64_t h = StableNameHash(norm);
  for (uint64_t probe = 0;; probe++) {
    AddrKey k = family == AF_INET ? V4Key(kV4Base + static_cast<uint32_t>((h + probe) % kV4Size)) : V6Key(h + probe);
    auto [it, inserted] = synthetic_.try_emplace(k, norm);
    if (inserted || it->second == norm) {
      by_name.emplace(norm, k);
      return k;
    }
  }
}

void NameBook::Remember(absl::string_view name, const AddrKey& addr) {
  std::string norm = NormalizeHost(name);
  std::thread::id self = std::this_thread::get_id();
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t now = ++clock_;
  std::vector<Remembered>& names = remembered_[addr];
  auto it = std::find_if(names.begin(), names.end(), [&](const Remembered& r) { return r.name == norm; });
  if (it == names.end()) {
    names.push_back({norm});
    it = names.end() - 1;
    remembered_order_.emplace_back(addr, norm);
  }
  it->when = now;
  // This thread's slot, else the one of the thread that looked the name up longest ago.
  Lookup* slot = &it->threads[0];
  for (Lookup& l : it->threads) {
    if (l.thread == self) {
      slot = &l;
      break;
    }
    if (l.when < slot->when) slot = &l;
  }
  *slot = {self, now};
  if (remembered_order_.size() <= kMaxRemembered) return;
  auto [old_addr, old_name] = std::move(remembered_order_.front());
  remembered_order_.pop_front();
  auto old = remembered_.find(old_addr);
  // A named copy: clang 14 does not let a lambda capture a structured binding.
  const std::string& forgotten = old_name;
  std::erase_if(old->second, [&](const Remembered& r) { return r.name == forgotten; });
  if (old->second.empty()) remembered_.erase(old);
}

std::optional<std::string> NameBook::NameFor(const AddrKey& addr) const {
  std::thread::id self = std::this_thread::get_id();
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = synthetic_.find(addr); it != synthetic_.end()) return it->second;
  auto it = remembered_.find(addr);
  if (it == remembered_.end()) return std::nullopt;
  const Remembered* latest = &it->second.front();
  const Remembered* own = nullptr;
  uint64_t own_when = 0;
  for (const Remembered& r : it->second) {
    if (r.when > latest->when) latest = &r;
    for (const Lookup& l : r.threads) {
      if (l.thread == self && l.when > own_when) {
        own = &r;
        own_when = l.when;
      }
    }
  }
  return (own ? own : latest)->name;
}

socklen_t ToSockaddr(const AddrKey& key, uint16_t port_be, sockaddr_storage* out) {
  std::memset(out, 0, sizeof *out);
  if (key.family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(out);
    a->sin_family = AF_INET;
    a->sin_port = port_be;
    std::memcpy(&a->sin_addr, key.bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* a = reinterpret_cast<sockaddr_in6*>(out);
  a->sin6_family = AF_INET6;
  a->sin6_port = port_be;
  std::memcpy(&a->sin6_addr, key.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

}  // namespace awfshim
