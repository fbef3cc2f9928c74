// libFuzzer target: BuildSettings. The input is "NAME=VALUE" lines (only variables the engine
// reads are kept), then a blank line, then the config file's content; a content starting with
// '!' is an unreadable file instead.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "awfshim/status.h"
#include "absl/strings/str_split.h"
#include "awfshim/settings.h"
#include "fuzz_support.h"

namespace {

// True when the settings never tunnel `host`, a name or an address literal.
bool Bypassed(const awfshim::Settings& s, const std::string& host) {
  sockaddr_in6 a6{};
  sockaddr_in a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4.sin_addr) == 1) {
    a4.sin_family = AF_INET;
    return s.rules.BypassesAddress(reinterpret_cast<sockaddr*>(&a4));
  }
  if (inet_pton(AF_INET6, host.c_str(), &a6.sin6_addr) == 1) {
    a6.sin6_family = AF_INET6;
    return s.rules.BypassesAddress(reinterpret_cast<sockaddr*>(&a6));
  }
  return s.rules.BypassesName(host);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  size_t blank = input.find("\n\n");
  absl::string_view env_part = input.substr(0, blank);
  std::string file = blank == absl::string_view::npos ? std::string() : std::string(input.substr(blank + 2));

  awfshim::Environment env;
  for (absl::string_view line : absl::StrSplit(env_part, '\n')) {
    size_t eq = line.find('=');
    if (eq == absl::string_view::npos) continue;
    std::string name(line.substr(0, eq));
    if (awfshim::IsSettingsVariable(name)) env[name] = std::string(line.substr(eq + 1));
  }
  awfshim::FileReader reader = [&file](const std::string&) -> awfshim::StatusOr<std::string> {
    if (!file.empty() && file[0] == '!') return awfshim::NotFoundError("cannot open: No such file or directory");
    return file;
  };

  awfshim::Settings s = awfshim::BuildSettings(env, reader);
  FUZZ_CHECK(s.timeout_ms >= 1 && s.timeout_ms <= 600000);
  for (const awfshim::ConfigError& e : s.errors) FUZZ_CHECK(!e.where.empty() && !e.message.empty());
  FUZZ_CHECK(s.refuse_routed() == (!s.errors.empty() || !s.proxy.has_value()));
  // Loopback and the proxy itself are never tunnelled, whatever is configured.
  FUZZ_CHECK(!s.rules.RoutesName("localhost") && Bypassed(s, "127.0.0.1") && Bypassed(s, "::1"));
  if (s.proxy) {
    FUZZ_CHECK(!s.proxy->host.empty() && s.proxy->port >= 1 && !s.proxy_source.empty());
    FUZZ_CHECK(Bypassed(s, s.proxy->host));
  }
  return 0;
}
