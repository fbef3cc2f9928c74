#include "sse_usage.h"

#include "simdjson.h"

namespace awfshim {
namespace http1_detail {

namespace dom = simdjson::dom;

std::optional<SseUsage> ReadUsage(dom::object usage) {
  SseUsage u;
  bool any = false;
  auto count = [&any](dom::object obj, const char* key, int64_t* out) {
    int64_t n = 0;
    if (*out < 0 && !obj[key].get_int64().get(n) && n >= 0) {
      *out = n;
      any = true;
    }
  };
  count(usage, "prompt_tokens", &u.input_tokens);
  count(usage, "input_tokens", &u.input_tokens);
  count(usage, "completion_tokens", &u.output_tokens);
  count(usage, "output_tokens", &u.output_tokens);
  count(usage, "total_tokens", &u.total_tokens);
  dom::object details;
  if (!usage["prompt_tokens_details"].get_object().get(details) ||
      !usage["input_tokens_details"].get_object().get(details)) {
    count(details, "cached_tokens", &u.cached_tokens);
  }
  if (!usage["completion_tokens_details"].get_object().get(details) ||
      !usage["output_tokens_details"].get_object().get(details)) {
    count(details, "reasoning_tokens", &u.reasoning_tokens);
  }
  if (!any) return std::nullopt;
  return u;
}

bool StartsLikeObject(absl::string_view json) {
  size_t i = json.find_first_not_of(" \t\r\n");
  return i != absl::string_view::npos && json[i] == '{';
}

size_t FindUsageObject(absl::string_view json, size_t before, size_t* key_at) {
  constexpr absl::string_view kKey = "\"usage\"";
  for (size_t at = json.rfind(kKey, before); at != absl::string_view::npos; at = json.rfind(kKey, at - 1)) {
    // Inside a string the quotes would be escaped.
    if (at == 0 || json[at - 1] != '\\') {
      size_t i = json.find_first_not_of(" \t\r\n", at + kKey.size());
      if (i != absl::string_view::npos && json[i] == ':') {
        i = json.find_first_not_of(" \t\r\n", i + 1);
        if (i != absl::string_view::npos && json[i] == '{') {
          *key_at = at;
          return i;
        }
      }
    }
    if (at == 0) break;
  }
  return absl::string_view::npos;
}

namespace {

// The index of the '}' closing the object opening at json[open], or npos when it does not close
// within `json`.
size_t MatchingBrace(absl::string_view json, size_t open) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = open; i < json.size(); i++) {
    char c = json[i];
    if (in_string) {
      if (c == '\\') {
        i++;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      depth++;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return c == '}' ? i : absl::string_view::npos;
    }
  }
  return absl::string_view::npos;
}

std::optional<SseUsage> UsageFromObjectText(absl::string_view object_json) {
  dom::parser parser;
  dom::element root;
  dom::object obj;
  if (parser.parse(object_json.data(), object_json.size()).get(root) || root.get_object().get(obj)) {
    return std::nullopt;
  }
  return ReadUsage(obj);
}

}  // namespace

std::optional<SseUsage> UsageFromTail(absl::string_view tail) {
  size_t before = absl::string_view::npos;
  for (int tries = 0; tries < 8; tries++) {
    size_t key_at = 0;
    size_t open = FindUsageObject(tail, before, &key_at);
    if (open == absl::string_view::npos) return std::nullopt;
    size_t close = MatchingBrace(tail, open);
    if (close != absl::string_view::npos) {
      if (auto u = UsageFromObjectText(tail.substr(open, close - open + 1))) return u;
    }
    if (key_at == 0) return std::nullopt;
    before = key_at - 1;
  }
  return std::nullopt;
}

}  // namespace http1_detail

std::optional<SseUsage> ParseUsage(absl::string_view json) {
  if (!http1_detail::StartsLikeObject(json)) return std::nullopt;
  http1_detail::dom::parser parser;
  http1_detail::dom::element root;
  http1_detail::dom::object obj;
  if (parser.parse(json.data(), json.size()).get(root) || root.get_object().get(obj)) return std::nullopt;
  http1_detail::dom::object usage;
  if (!obj["usage"].get_object().get(usage)) {
    if (auto u = http1_detail::ReadUsage(usage)) return u;
  }
  for (const char* container : {"response", "message"}) {
    if (!obj[container]["usage"].get_object().get(usage)) {
      if (auto u = http1_detail::ReadUsage(usage)) return u;
    }
  }
  return std::nullopt;
}

}  // namespace awfshim
