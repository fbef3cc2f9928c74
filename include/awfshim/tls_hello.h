// The first TLS record a client sends: server name (SNI) and offered ALPN protocols.
// Pure: no I/O, bounded work, every input untrusted.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace awfshim {

// Largest ClientHello considered: one TLS record header + maximum record payload.
inline constexpr size_t kMaxClientHello = 5 + 16384;

struct TlsHello {
  enum class Result {
    kIncomplete,  // looks like a ClientHello so far; more bytes needed (never when bytes.size() >= kMaxClientHello)
    kClientHello, // parsed
    kNotTls,      // not a TLS handshake record carrying a ClientHello
    kMalformed,   // a ClientHello whose lengths do not add up
  };
  Result result = Result::kIncomplete;
  std::string sni;                 // host_name from server_name, empty if absent; at most 255 bytes
  std::vector<std::string> alpn;   // protocol names in offered order; at most 16, each at most 255 bytes
  int legacy_version = 0;          // client_version field, e.g. 0x0303
};

// Parses the ClientHello at the start of `bytes` (a TLS record, possibly still incomplete).
// Handles a ClientHello that spans several records only when all of it is in `bytes`.
TlsHello ParseTlsHello(absl::string_view bytes);

}  // namespace awfshim
