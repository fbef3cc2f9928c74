// Settings: built once from the environment (and the optional JSON file), then frozen.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "awfshim/status.h"
#include "awfshim/config_file.h"
#include "awfshim/host_rules.h"
#include "awfshim/proxy_url.h"

namespace awfshim {

enum class DnsMode { kFake, kSystem };
enum class TapMode { kAuto, kOff };

struct Settings {
  std::optional<ProxyUrl> proxy;
  std::string proxy_source;  // the variable or file the proxy came from
  HostRules rules;
  DnsMode dns = DnsMode::kFake;
  TapMode tap = TapMode::kAuto;
  std::string trace;  // "", "stderr", or a path (with %p)
  std::string config_path;
  int timeout_ms = 30000;
  std::vector<ConfigError> errors;
  std::vector<std::string> warnings;

  // Any bad setting, or no proxy: routed connections are refused, never made directly.
  bool refuse_routed() const { return !errors.empty() || !proxy.has_value(); }
};

using Environment = absl::flat_hash_map<std::string, std::string>;
// Reads a whole file; an error status says why it could not.
using FileReader = std::function<StatusOr<std::string>(const std::string& path)>;

// Every variable the engine reads, for callers that copy the environment.
bool IsSettingsVariable(absl::string_view name);

Settings BuildSettings(const Environment& env, const FileReader& read_file);

// The routes used when AWF_SHIM_ROUTE is not set: GitHub and Copilot, plus the tenant named by
// COPILOT_GH_HOST / GH_HOST / GITHUB_SERVER_URL.
inline constexpr absl::string_view kDefaultRoutes[] = {"github.com", "*.github.com", "githubcopilot.com",
                                                      "*.githubcopilot.com"};

}  // namespace awfshim
