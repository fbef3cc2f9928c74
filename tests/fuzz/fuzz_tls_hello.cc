// libFuzzer target: ParseTlsHello on a client's first bytes, with the caps and the prefix rules
// (kIncomplete only for valid prefixes; every other verdict final) checked.
#include <cstddef>
#include <cstdint>
#include <string>

#include "awfshim/tls_hello.h"
#include "fuzz_support.h"

namespace {

using awfshim::TlsHello;
using Result = TlsHello::Result;

bool Same(const TlsHello& a, const TlsHello& b) {
  return a.result == b.result && a.sni == b.sni && a.alpn == b.alpn && a.legacy_version == b.legacy_version;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  TlsHello h = awfshim::ParseTlsHello(bytes);
  FUZZ_CHECK(h.sni.size() <= 255 && h.alpn.size() <= 16);
  for (const std::string& p : h.alpn) FUZZ_CHECK(!p.empty() && p.size() <= 255);
  for (char c : h.sni) FUZZ_CHECK(c > 0x20 && c < 0x7f);
  if (h.result == Result::kClientHello) {
    FUZZ_CHECK((h.legacy_version >> 8) == 3);
  } else {
    FUZZ_CHECK(h.sni.empty() && h.alpn.empty());
  }
  if (h.result == Result::kIncomplete) {
    FUZZ_CHECK(size < awfshim::kMaxClientHello);
    FUZZ_CHECK(awfshim::ParseTlsHello(bytes.substr(0, size / 2)).result == Result::kIncomplete);
    if (size > 0) FUZZ_CHECK(awfshim::ParseTlsHello(bytes.substr(0, size - 1)).result == Result::kIncomplete);
  } else {
    // A verdict does not change with more bytes.
    std::string more(bytes);
    more.append("\x16\x03\x01\x00\x01\x01", 6);
    FUZZ_CHECK(Same(awfshim::ParseTlsHello(more), h));
  }
  if (h.result == Result::kClientHello && size > 0) {
    Result shorter = awfshim::ParseTlsHello(bytes.substr(0, size - 1)).result;
    FUZZ_CHECK(shorter == Result::kIncomplete || shorter == Result::kClientHello);
  }
  return 0;
}
