// libFuzzer target: ParseConfigFile on arbitrary file content.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "awfshim/config_file.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view content(reinterpret_cast<const char*>(data), size);
  constexpr absl::string_view kPath = "/etc/awf-shim.json";
  awfshim::ConfigFile f = awfshim::ParseConfigFile(kPath, content);
  FUZZ_CHECK(f.errors.size() <= awfshim::kMaxConfigErrors + 1);
  for (size_t i = 0; i < f.errors.size(); i++) {
    const awfshim::ConfigError& e = f.errors[i];
    const bool count_line = i == awfshim::kMaxConfigErrors;  // "and N more errors", on the file
    FUZZ_CHECK(count_line ? e.where == kPath && absl::EndsWith(e.message, " more errors")
                          : absl::StartsWith(e.where, "/etc/awf-shim.json:") && !e.message.empty());
  }
  for (const auto& [key, values] : f.values) {
    FUZZ_CHECK(std::find(std::begin(awfshim::kConfigKeys), std::end(awfshim::kConfigKeys), key) !=
               std::end(awfshim::kConfigKeys));
    for (const awfshim::LocatedValue& v : values) {
      FUZZ_CHECK(absl::StartsWith(v.where, "/etc/awf-shim.json:"));
      int64_t n = 0;
      if (key == "timeout_ms") FUZZ_CHECK(absl::SimpleAtoi(v.text, &n));
    }
  }
  return 0;
}
