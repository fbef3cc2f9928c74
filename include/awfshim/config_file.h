// The optional JSON settings file (AWF_SHIM_CONFIG). Parsing only: no I/O, no defaults.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace awfshim {

// One bad setting: where (a variable and column, or file:line:column) and what was expected.
struct ConfigError {
  std::string where;
  std::string message;
  std::string ToString() const { return where + ": " + message; }
};

// A string value and where it stands in the file ("path:line:column").
struct LocatedValue {
  std::string text;
  std::string where;
};

// Key -> values (one for a string or number, one per element for an array of strings).
struct ConfigFile {
  absl::flat_hash_map<std::string, std::vector<LocatedValue>> values;
  std::vector<ConfigError> errors;
};

// Keys the file may hold; the rest are errors. `only` and `core` are absent on purpose: the
// front acts on them before the engine (and so the file) is read.
inline constexpr absl::string_view kConfigKeys[] = {"proxy", "route", "bypass", "dns", "trace", "tap", "timeout_ms"};

// Errors kept with their place; the rest are counted in one last error naming the file.
inline constexpr size_t kMaxConfigErrors = 20;

ConfigFile ParseConfigFile(absl::string_view path, absl::string_view content);

}  // namespace awfshim
