#include "awfshim/body_summary.h"

#include <algorithm>
#include <cstdint>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "awfshim/json_writer.h"
#include "awfshim/redact.h"
#include "simdjson.h"

namespace awfshim {
namespace {

namespace dom = simdjson::dom;

constexpr size_t kMaxModel = 128;
constexpr size_t kMaxToolChoice = 32;
// The tap buffers at most 256 KiB of a body; anything far beyond that did not come from it and
// is not worth the parser's memory (a few bytes of tape per input byte).
constexpr size_t kMaxSummarized = 4 * 1024 * 1024;

constexpr absl::string_view kUnparsed = R"({"unparsed":true})";

// The first at most `n` bytes of valid UTF-8 `s`, cut between characters.
std::string_view CutUtf8(std::string_view s, size_t n) {
  if (n >= s.size()) return s;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) n--;
  return s.substr(0, n);
}

// A string value as the summary shows it: token-shaped runs replaced first (the writer would do
// it too, but "ghu_x" -> "ghu_***" grows the text past the cap), then at most `cap` bytes. Both
// cuts fall between characters (simdjson has validated the UTF-8), so none is replaced.
std::string Capped(std::string_view s, size_t cap) {
  std::string_view head = CutUtf8(s, 4 * cap);
  std::string out = ScrubTokens(absl::string_view(head.data(), head.size()));
  out.resize(CutUtf8(out, cap).size());
  return out;
}

}  // namespace

bool IsChatRequestPath(absl::string_view target) {
  target = target.substr(0, target.find_first_of("?#"));
  while (absl::ConsumeSuffix(&target, "/")) {
  }
  return absl::EndsWith(target, "/chat/completions") || absl::EndsWith(target, "/responses");
}

std::string SummarizeChatRequest(absl::string_view json_body) {
  if (json_body.empty() || json_body.size() > kMaxSummarized) return std::string(kUnparsed);
  // DOM parser: run-time CPU dispatch (On-Demand would be the generic kernel in this build).
  // The error-code API never throws; parse() copies the bytes into a padded buffer.
  dom::parser parser;
  dom::element root;
  if (parser.parse(json_body.data(), json_body.size()).get(root)) return std::string(kUnparsed);
  dom::object obj;
  if (root.get_object().get(obj)) return std::string(kUnparsed);

  JsonWriter w;
  w.BeginObject();
  std::string_view text;
  if (!obj["model"].get_string().get(text)) w.Field("model", Capped(text, kMaxModel));
  bool stream = false;
  if (!obj["stream"].get_bool().get(stream)) w.Field("stream", stream);
  dom::array array;
  if (!obj["messages"].get_array().get(array)) w.Field("messages", uint64_t{array.size()});
  if (!obj["input"].get_array().get(array)) {
    w.Field("input_items", uint64_t{array.size()});
  } else if (obj["input"].is_string()) {
    w.Field("input_items", 1);
  }
  if (!obj["tools"].get_array().get(array)) w.Field("tools", uint64_t{array.size()});
  // Chat Completions' old and new names, then the Responses API's.
  for (const char* key : {"max_tokens", "max_completion_tokens", "max_output_tokens"}) {
    int64_t n = 0;
    if (!obj[key].get_int64().get(n)) {
      w.Field("max_tokens", n);
      break;
    }
  }
  // An object tool_choice names a function: shape only, so it is left out.
  if (!obj["tool_choice"].get_string().get(text)) w.Field("tool_choice", Capped(text, kMaxToolChoice));
  w.EndObject();
  return w.str();
}

}  // namespace awfshim
