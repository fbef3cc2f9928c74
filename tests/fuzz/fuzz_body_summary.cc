// libFuzzer target: SummarizeChatRequest, IsChatRequestPath and ParseUsage on arbitrary bytes.
// The summary must be a JSON object with only the documented keys and types, {"unparsed":true}
// exactly when the input is not a JSON object, and never longer than its caps allow.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "awfshim/body_summary.h"
#include "awfshim/http1.h"
#include "simdjson.h"
#include "fuzz_support.h"

namespace dom = simdjson::dom;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  std::string summary = awfshim::SummarizeChatRequest(input);

  dom::parser input_parser;
  dom::element input_root;
  bool input_is_object =
      !input_parser.parse(input.data(), input.size()).get(input_root) && input_root.type() == dom::element_type::OBJECT;

  dom::parser parser;
  dom::element root;
  FUZZ_CHECK(!parser.parse(summary.data(), summary.size()).get(root));
  dom::object obj;
  FUZZ_CHECK(!root.get_object().get(obj));
  if (!input_is_object) FUZZ_CHECK(summary == R"({"unparsed":true})");
  size_t fields = 0;
  for (dom::key_value_pair field : obj) {
    fields++;
    std::string_view key = field.key;
    dom::element v = field.value;
    if (key == "unparsed") {
      FUZZ_CHECK(!input_is_object && v.type() == dom::element_type::BOOL);
    } else if (key == "model" || key == "tool_choice") {
      std::string_view s;
      FUZZ_CHECK(!v.get_string().get(s));
      FUZZ_CHECK(s.size() <= (key == "model" ? 128u : 32u));
      FUZZ_CHECK(s.find("\xef\xbf\xbd") == std::string_view::npos || input.find("\xef\xbf\xbd") != absl::string_view::npos ||
                 input.find("\\u") != absl::string_view::npos);
    } else if (key == "stream") {
      FUZZ_CHECK(v.type() == dom::element_type::BOOL);
    } else if (key == "messages" || key == "input_items" || key == "tools") {
      int64_t n = -1;
      FUZZ_CHECK(!v.get_int64().get(n) && n >= 0);
    } else if (key == "max_tokens") {
      FUZZ_CHECK(v.type() == dom::element_type::INT64);
    } else {
      FUZZ_CHECK(false);
    }
  }
  FUZZ_CHECK(fields <= 7);
  FUZZ_CHECK(awfshim::SummarizeChatRequest(input) == summary);

  (void)awfshim::IsChatRequestPath(input);
  if (std::optional<awfshim::SseUsage> u = awfshim::ParseUsage(input)) {
    FUZZ_CHECK(input_is_object);
    FUZZ_CHECK(u->input_tokens >= 0 || u->output_tokens >= 0 || u->total_tokens >= 0 || u->cached_tokens >= 0 ||
               u->reasoning_tokens >= 0);
  }
  return 0;
}
