// tenant_api.h -- what the fake GHE.com data-residency tenant reads from a request and answers.
// No I/O here: fake_tenant.cc frames HTTP/1.1 over TLS, calls route() and writes the Reply.
#pragma once

#include <openssl/rand.h>
#include <simdjson.h>

#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fake_tenant {

struct Settings {
  std::string slug;                                 // <slug>.ghe.com, lower case
  std::string model = "gpt-5-mini";                 // the one model /models offers
  std::string answer = "Hello from the fake GHE.com tenant.";
  // The model's endpoints: "/chat/completions" unless told otherwise (a client that sees
  // "/responses" listed uses it instead).
  std::string endpoints = R"("/chat/completions")";
};

struct Request {
  std::string method;               // HEAD arrives here as GET
  std::string host;                 // Host header: lower case, no port, no trailing dot
  std::string path;                 // request target without the query
  std::optional<std::string> model; // top-level "model" of a JSON body
  std::optional<bool> stream;       // top-level "stream" of a JSON body
};

struct Reply {
  int status = 404;
  std::string content_type = "application/json";
  std::string body;                 // a plain answer, sent with Content-Length
  std::vector<std::string> events;  // text/event-stream: one complete SSE event each, sent chunked
};

// A JSON string literal for s. Invalid UTF-8 bytes become U+FFFD so a log line always parses.
inline std::string json_str(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", c);
      out += esc;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      const size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
      if (n && i + n <= s.size() && simdjson::validate_utf8(s.data() + i, n)) {
        out.append(s, i, n);
        i += n - 1;
      } else {
        out += "\\ufffd";
      }
    }
  }
  return out + "\"";
}

// ---- reading a request -----------------------------------------------------------------------

inline bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

inline std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Host header → "api.<slug>.ghe.com": lower case, port and a trailing dot dropped.
inline std::string host_of(std::string_view value) {
  std::string h = lower(value);
  const size_t colon = h.rfind(':');
  if (colon != std::string::npos && (h[0] != '[' || h.find(']') < colon)) h.resize(colon);
  if (!h.empty() && h.back() == '.') h.pop_back();
  return h;
}

// "Bearer github_pat_..." → {"Bearer", "github_pat_"}. The token itself never leaves this function.
struct Auth {
  std::optional<std::string> scheme, token_kind;
};
inline Auth auth_of(std::string_view value) {
  if (value.empty()) return {};
  const std::string_view scheme = value.substr(0, value.find(' ')), cred = trim(value.substr(scheme.size()));
  Auth a{iequals(scheme, "bearer") ? "Bearer" : iequals(scheme, "token") ? "token" : "other", std::nullopt};
  for (const char* prefix : {"github_pat_", "ghp_", "gho_", "ghu_", "ghs_"})
    if (cred.starts_with(prefix)) a.token_kind = prefix;
  return a;
}

// Top-level "model" and "stream" of a JSON object body; anything else leaves them unset.
inline void scan_json_body(const std::string& body, Request& q) {
  thread_local simdjson::ondemand::parser parser;
  const simdjson::padded_string json(body);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object object;
  if (body.empty() || parser.iterate(json).get(doc) || doc.get_object().get(object)) return;
  for (auto result : object) {
    simdjson::ondemand::field field;
    std::string_view key, model;
    bool stream;
    if (std::move(result).get(field) || field.unescaped_key().get(key)) return;
    if (key == "model" && !field.value().get_string().get(model)) q.model = std::string(model);
    if (key == "stream" && !field.value().get_bool().get(stream)) q.stream = stream;
  }
}

// ---- answering -------------------------------------------------------------------------------

inline std::string random_hex(size_t bytes) {
  unsigned char raw[32];
  bytes = std::min(bytes, sizeof raw);
  if (RAND_bytes(raw, static_cast<int>(bytes)) != 1) std::fill_n(raw, bytes, 0x5a);
  std::string out;
  for (size_t i = 0; i < bytes; ++i) {
    out += "0123456789abcdef"[raw[i] >> 4];
    out += "0123456789abcdef"[raw[i] & 15];
  }
  return out;
}

inline Reply json_reply(int status, std::string body) {
  Reply r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

inline Reply not_found() { return json_reply(404, R"({"message":"Not Found"})"); }

// The CLI takes the Copilot API base URL from endpoints.api; nothing else tells it the tenant's.
inline std::string user_json(const Settings& s) {
  auto url = [&](const char* sub) { return json_str(std::string("https://") + sub + "." + s.slug + ".ghe.com"); };
  return R"({"login":"octocat","copilot_plan":"enterprise","endpoints":{"api":)" + url("copilot-api") +
         R"(,"telemetry":)" + url("copilot-telemetry-service") + R"(,"proxy":)" + url("copilot-proxy") +
         R"(,"origin-tracker":)" + url("origin-tracker") +
         R"(},"access_type_sku":"copilot_enterprise_seat","chat_enabled":true})";
}

inline std::string models_json(const Settings& s) {
  const std::string m = json_str(s.model);
  return R"({"data":[{"id":)" + m + R"(,"name":)" + m + R"(,"object":"model","vendor":"OpenAI","version":)" + m +
         R"(,"model_picker_enabled":true,"capabilities":{"family":)" + m +
         R"(,"type":"chat","object":"model_capabilities","tokenizer":"o200k_base","limits":)"
         R"({"max_context_window_tokens":128000,"max_output_tokens":16384,"max_prompt_tokens":128000},)"
         R"("supports":{"streaming":true,"tool_calls":true,"parallel_tool_calls":true}},)"
         R"("supported_endpoints":[)" + s.endpoints + R"(],"policy":{"state":"enabled"},)"
         R"("preview":false}],"object":"list"})";
}

// The answer in three pieces, cut on UTF-8 character boundaries, so it streams as several deltas.
inline std::vector<std::string> answer_pieces(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (int k = 1; k <= 3; ++k) {
    size_t end = k == 3 ? text.size() : text.size() * k / 3;
    while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xc0) == 0x80) ++end;
    if (end > start) out.push_back(text.substr(start, end - start));
    start = std::max(start, end);
  }
  return out;
}

struct Usage {
  long in = 12, out;
  explicit Usage(const std::string& text) : out(std::max<long>(1, static_cast<long>(text.size()) / 4)) {}
};

inline Reply chat_completion(const Settings& s, const Request& q) {
  const std::string id = json_str("chatcmpl-" + random_hex(12));
  auto head = [&](const char* object) {
    return R"({"id":)" + id + R"(,"object":")" + object + R"(","created":)" + std::to_string(std::time(nullptr)) +
           R"(,"model":)" + json_str(q.model.value_or(s.model));
  };
  const Usage u(s.answer);
  const std::string usage = R"("usage":{"prompt_tokens":)" + std::to_string(u.in) + R"(,"completion_tokens":)" +
                            std::to_string(u.out) + R"(,"total_tokens":)" + std::to_string(u.in + u.out) + "}";
  if (q.stream != true)
    return json_reply(200, head("chat.completion") + R"(,"choices":[{"index":0,"message":{"role":"assistant","content":)" +
                               json_str(s.answer) + R"(},"finish_reason":"stop"}],)" + usage + "}");
  Reply r = json_reply(200, "");
  r.content_type = "text/event-stream";
  auto chunk = [&](const std::string& choice, const std::string& extra = "") {
    return "data: " + head("chat.completion.chunk") + R"(,"choices":[)" + choice + "]" + extra + "}\n\n";
  };
  r.events.push_back(chunk(R"({"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null})"));
  for (const auto& piece : answer_pieces(s.answer))
    r.events.push_back(chunk(R"({"index":0,"delta":{"content":)" + json_str(piece) + R"(},"finish_reason":null})"));
  r.events.push_back(chunk(R"({"index":0,"delta":{},"finish_reason":"stop"})", "," + usage));
  r.events.push_back("data: [DONE]\n\n");
  return r;
}

// OpenAI Responses API: one assistant message with the answer as output_text.
inline Reply responses(const Settings& s, const Request& q) {
  const std::string rid = json_str("resp_" + random_hex(12)), mid = json_str("msg_" + random_hex(12));
  const Usage u(s.answer);
  const std::string text = json_str(s.answer), part = R"({"type":"output_text","text":)" + text + R"(,"annotations":[]})";
  const std::string message = R"({"id":)" + mid + R"(,"type":"message","status":"completed","role":"assistant","content":[)" +
                              part + "]}";
  auto response = [&](const char* status, const std::string& output, const std::string& usage) {
    return R"({"id":)" + rid + R"(,"object":"response","created_at":)" + std::to_string(std::time(nullptr)) +
           R"(,"status":")" + status + R"(","model":)" + json_str(q.model.value_or(s.model)) +
           R"(,"error":null,"incomplete_details":null,"output":[)" + output + R"(],"usage":)" + usage + "}";
  };
  const std::string usage = R"({"input_tokens":)" + std::to_string(u.in) +
                            R"(,"input_tokens_details":{"cached_tokens":0},"output_tokens":)" + std::to_string(u.out) +
                            R"(,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":)" +
                            std::to_string(u.in + u.out) + "}";
  if (q.stream != true) return json_reply(200, response("completed", message, usage));

  Reply r = json_reply(200, "");
  r.content_type = "text/event-stream";
  int seq = 0;
  auto event = [&](const std::string& type, const std::string& fields) {
    r.events.push_back("event: " + type + "\ndata: {\"type\":\"" + type + "\",\"sequence_number\":" +
                       std::to_string(seq++) + "," + fields + "}\n\n");
  };
  const std::string at = R"("item_id":)" + mid + R"(,"output_index":0,"content_index":0)";
  event("response.created", R"("response":)" + response("in_progress", "", "null"));
  event("response.output_item.added", R"("output_index":0,"item":{"id":)" + mid +
                                          R"(,"type":"message","status":"in_progress","role":"assistant","content":[]})");
  event("response.content_part.added", at + R"(,"part":{"type":"output_text","text":"","annotations":[]})");
  for (const auto& piece : answer_pieces(s.answer)) event("response.output_text.delta", at + R"(,"delta":)" + json_str(piece));
  event("response.output_text.done", at + R"(,"text":)" + text);
  event("response.content_part.done", at + R"(,"part":)" + part);
  event("response.output_item.done", R"("output_index":0,"item":)" + message);
  event("response.completed", R"("response":)" + response("completed", message, usage));
  return r;
}

inline Reply route(const Settings& s, const Request& q) {
  const std::string tenant = "." + s.slug + ".ghe.com";
  const bool get = q.method == "GET", post = q.method == "POST";
  if (q.host == "api" + tenant) {
    if (get && q.path == "/copilot_internal/user") return json_reply(200, user_json(s));
    // What a data-residency tenant answers when the CLI tries to swap a PAT for a Copilot token.
    if (post && q.path == "/copilot_internal/v2/token")
      return json_reply(403, R"({"message":"Resource not accessible by personal access token",)"
                             R"("documentation_url":"https://docs.github.com/rest"})");
    return not_found();
  }
  if (q.host == "copilot-api" + tenant) {
    if (get && q.path == "/models") return json_reply(200, models_json(s));
    if (post && q.path == "/chat/completions") return chat_completion(s, q);
    if (post && q.path == "/responses") return responses(s, q);
    return not_found();
  }
  if (q.host == "copilot-telemetry-service" + tenant && post) return json_reply(200, "{}");
  return not_found();
}

}  // namespace fake_tenant
