// The HTTP CONNECT exchange with the egress proxy, as bytes: the request the shim sends, the
// reply head it reads back, and the request an application that proxies itself sends.
// Pure functions: no I/O, bounded work, every input untrusted.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace awfshim {

// The largest reply head accepted; a longer one is an error (kOversized).
inline constexpr size_t kMaxProxyHead = 16 * 1024;

// "CONNECT host:port HTTP/1.1\r\nHost: host:port\r\n[Proxy-Authorization: Basic b64(user:pass)\r\n]\r\n".
// `authority` is host:port with an IPv6 literal already in brackets.
std::string BuildConnectRequest(absl::string_view authority, absl::string_view user, absl::string_view password);

struct ProxyReply {
  enum class Result {
    kIncomplete,  // no blank line yet within `bytes` (and under kMaxProxyHead): read more
    kComplete,    // head_length bytes form a well-formed head
    kMalformed,   // not an HTTP/1.x status line or header block
    kOversized,   // no end of head within kMaxProxyHead bytes
  };
  Result result = Result::kIncomplete;
  size_t head_length = 0;   // bytes up to and including the blank line (kComplete only)
  int status = 0;           // e.g. 200, 403, 407 (kComplete only)
  std::string reason;       // reason phrase, at most 128 bytes, control characters dropped
  std::string squid_error;  // value of X-Squid-Error, e.g. "ERR_ACCESS_DENIED 0", at most 128 bytes
  std::string problem;      // for kMalformed/kOversized: what was wrong, for the trace
};

// Looks at the first bytes the proxy sent. Accepts CRLF or bare LF line ends.
ProxyReply ParseProxyReply(absl::string_view bytes);

struct ConnectRequest {
  bool is_connect = false;  // the bytes start a complete "CONNECT authority HTTP/1.x" head
  std::string authority;    // host:port as written, at most 300 bytes
};

// Recognises an application's own CONNECT request in the first bytes it writes to the proxy.
ConnectRequest ParseConnectRequest(absl::string_view bytes);

}  // namespace awfshim
