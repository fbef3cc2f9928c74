// Synthetic addresses for routed names ("fake DNS") and the address→name memory behind them.
//
// A routed name resolves to one address per family: IPv4 from 198.18.0.0/15 (reserved for
// benchmarking, never a real host) and IPv6 from a fixed private /64. Addresses derive from a
// stable hash of the name, so the CLI's processes agree on them without sharing state; a
// collision within one process is resolved by probing. In `system` DNS mode the book instead
// remembers real addresses of routed names (bounded), every name an address was looked up for:
// hosts behind one CDN share addresses.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace awfshim {

// An address without its port: family + 16 bytes (IPv4 in the first 4; a v4-mapped IPv6
// address is folded to IPv4).
struct AddrKey {
  int family = 0;
  std::array<uint8_t, 16> bytes{};
  static std::optional<AddrKey> From(const sockaddr* addr);
  bool operator==(const AddrKey&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const AddrKey& k) {
    return H::combine(std::move(h), k.family, k.bytes);
  }
  std::string ToString() const;
};

// FNV-1a over the normalized name: stable across processes and runs.
uint64_t StableNameHash(absl::string_view normalized_name);

class NameBook {
 public:
  static constexpr size_t kMaxRemembered = 4096;

  // The synthetic address of `name` for `family` (AF_INET or AF_INET6), allocated on first use.
  AddrKey Synthetic(absl::string_view name, int family);
  // Whether `addr` lies in one of the synthetic ranges.
  static bool IsSynthetic(const AddrKey& addr);
  // System DNS mode: remember that the calling thread looked up `name` and got `addr`. At most
  // kMaxRemembered name/address pairs; past that the one remembered first is forgotten.
  void Remember(absl::string_view name, const AddrKey& addr);
  // The name behind a synthetic or remembered address. Of several names remembered for one
  // address, the one the calling thread looked up last (a client resolves, then connects), else
  // the one any thread looked up last (a resolver thread pool: its connect comes next).
  std::optional<std::string> NameFor(const AddrKey& addr) const;

  // fork(): the child must not inherit a lock held by a thread that no longer exists.
  void LockForFork() { mu_.lock(); }
  void UnlockAfterFork() { mu_.unlock(); }

 private:
  static constexpr size_t kThreadsPerName = 4;
  // A thread's latest lookup of a name, by the book's own clock.
  struct Lookup {
    std::thread::id thread;
    uint64_t when = 0;
  };
  struct Remembered {
    std::string name;
    uint64_t when = 0;                              // its latest lookup by any thread
    std::array<Lookup, kThreadsPerName> threads{};  // the last few threads that looked it up
  };

  mutable std::mutex mu_;
  absl::flat_hash_map<AddrKey, std::string> synthetic_;
  absl::flat_hash_map<std::string, AddrKey> v4_, v6_;
  absl::flat_hash_map<AddrKey, std::vector<Remembered>> remembered_;
  std::deque<std::pair<AddrKey, std::string>> remembered_order_;  // first remembered first, for the bound
  uint64_t clock_ = 0;
};

// Fills a sockaddr_in/sockaddr_in6 for `key` and `port` (network order); returns its length.
socklen_t ToSockaddr(const AddrKey& key, uint16_t port_be, sockaddr_storage* out);

}  // namespace awfshim
