// libFuzzer target: ParseProxyReply on arbitrary proxy output, with the invariants callers rely on.
#include <cstddef>
#include <cstdint>
#include <string>

#include "awfshim/proxy_protocol.h"
#include "fuzz_support.h"

namespace {

using awfshim::ProxyReply;
using Result = ProxyReply::Result;

bool Clean(const std::string& s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return s.size() <= 128;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  ProxyReply r = awfshim::ParseProxyReply(bytes);
  FUZZ_CHECK(Clean(r.reason) && Clean(r.squid_error));
  switch (r.result) {
    case Result::kComplete:
      FUZZ_CHECK(r.status >= 100 && r.status <= 999);
      FUZZ_CHECK(r.head_length > 0 && r.head_length <= size && r.head_length <= awfshim::kMaxProxyHead);
      FUZZ_CHECK(bytes[r.head_length - 1] == '\n');
      FUZZ_CHECK(r.problem.empty());
      break;
    case Result::kIncomplete:
      FUZZ_CHECK(size < awfshim::kMaxProxyHead && r.status == 0 && r.head_length == 0);
      // Every prefix of a valid prefix is one too.
      FUZZ_CHECK(awfshim::ParseProxyReply(bytes.substr(0, size / 2)).result == Result::kIncomplete);
      break;
    case Result::kOversized:
      FUZZ_CHECK(size >= awfshim::kMaxProxyHead && !r.problem.empty());
      break;
    case Result::kMalformed:
      FUZZ_CHECK(!r.problem.empty() && r.status == 0);
      break;
  }
  // Any verdict but "read more" stands whatever arrives next.
  if (r.result != Result::kIncomplete) {
    std::string more(bytes);
    more.append("\r\n\r\nX");
    ProxyReply again = awfshim::ParseProxyReply(more);
    FUZZ_CHECK(again.result == r.result && again.head_length == r.head_length && again.status == r.status);
    FUZZ_CHECK(again.squid_error == r.squid_error && again.reason == r.reason);
  }
  return 0;
}
