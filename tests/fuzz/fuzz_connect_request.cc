// libFuzzer target: ParseConnectRequest on an application's first bytes, and BuildConnectRequest
// with an authority and credentials cut from the input.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "awfshim/proxy_protocol.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  awfshim::ConnectRequest c = awfshim::ParseConnectRequest(bytes);
  if (c.is_connect) {
    FUZZ_CHECK(!c.authority.empty() && c.authority.size() <= 300);
    FUZZ_CHECK(absl::StartsWith(bytes, "CONNECT " + c.authority + " HTTP/1."));
  } else {
    FUZZ_CHECK(c.authority.empty());
  }

  // authority \0 user \0 password: whatever the bytes, the request is one head, and what the
  // proxy would read back is the authority we meant.
  absl::string_view parts[3];
  absl::string_view rest = bytes;
  for (int i = 0; i < 3; i++) {
    size_t nul = i < 2 ? rest.find('\0') : absl::string_view::npos;
    parts[i] = rest.substr(0, nul);
    rest = nul == absl::string_view::npos ? absl::string_view() : rest.substr(nul + 1);
  }
  std::string req = awfshim::BuildConnectRequest(parts[0], parts[1], parts[2]);
  FUZZ_CHECK(absl::StartsWith(req, "CONNECT ") && absl::EndsWith(req, "\r\n\r\n"));
  FUZZ_CHECK(req.find("\r\n\r\n") == req.size() - 4);
  awfshim::ConnectRequest back = awfshim::ParseConnectRequest(req);
  if (back.is_connect) {
    FUZZ_CHECK(absl::StartsWith(req, "CONNECT " + back.authority + " HTTP/1.1\r\nHost: " + back.authority + "\r\n"));
  }
  return 0;
}
