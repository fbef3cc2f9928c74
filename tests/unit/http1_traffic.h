// The unit tests' HTTP/1.1 traffic: a player that feeds Http1Stream in pieces, and what real
// clients and servers send (curl, the Copilot CLI, the Copilot API).
#pragma once

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "awfshim/http1.h"

namespace awfshim::http1_test {

// One write by the client or one read by it, at a time in microseconds.
struct Step {
  bool client;
  std::string bytes;
  int64_t t;
};
inline Step C(std::string b, int64_t t) { return {true, std::move(b), t}; }
inline Step S(std::string b, int64_t t) { return {false, std::move(b), t}; }

enum class Split { kWhole, kBytes, kRandom };

struct Played {
  std::vector<HttpExchange> exchanges;
  bool http2 = false;
  std::string problem;
  size_t max_buffered = 0;
};

// Feeds the steps in order, each whole, byte by byte, or in random pieces; then the close.
inline Played Play(const std::vector<Step>& steps, bool close, int64_t close_t = 0, Split split = Split::kWhole,
         uint32_t seed = 1) {
  Http1Stream s;
  Played r;
  std::mt19937 rng(seed);
  for (const Step& step : steps) {
    absl::string_view rest = step.bytes;
    while (!rest.empty()) {
      size_t n = rest.size();
      if (split == Split::kBytes) n = 1;
      if (split == Split::kRandom) n = std::min<size_t>(rest.size(), 1 + rng() % 40);
      if (step.client) {
        s.OnClientBytes(rest.substr(0, n), step.t);
      } else {
        s.OnServerBytes(rest.substr(0, n), step.t);
      }
      rest.remove_prefix(n);
      r.max_buffered = std::max(r.max_buffered, s.buffered_bytes());
      for (HttpExchange& e : s.TakeCompleted()) r.exchanges.push_back(std::move(e));
    }
  }
  if (close) s.OnClose(close_t);
  for (HttpExchange& e : s.TakeCompleted()) r.exchanges.push_back(std::move(e));
  r.http2 = s.is_http2();
  r.problem = s.problem();
  return r;
}

inline std::string Describe(const HttpExchange& e) {
  std::string usage = "none";
  if (e.usage) {
    usage = absl::StrCat(e.usage->input_tokens, "/", e.usage->output_tokens, "/", e.usage->total_tokens, "/",
                         e.usage->cached_tokens, "/", e.usage->reasoning_tokens);
  }
  return absl::StrCat(e.method, " ", e.host, " ", e.path, " ", e.status, " ct=", e.content_type,
                      " rct=", e.request_content_type, " req=", e.request_body_bytes,
                      " resp=", e.response_body_bytes, " t=", e.request_start_us, ",", e.request_end_us, ",",
                      e.first_response_byte_us, ",", e.end_us, " sse=", e.sse, " sum=", e.body_summary_json,
                      " usage=", usage, " problem=", e.problem);
}

inline std::string DescribeAll(const Played& r) {
  std::vector<std::string> lines;
  for (const HttpExchange& e : r.exchanges) lines.push_back(Describe(e));
  return absl::StrCat(absl::StrJoin(lines, "\n"), "\nhttp2=", r.http2, " problem=", r.problem);
}

inline std::string Chunked(const std::vector<std::string>& pieces, absl::string_view trailer = "") {
  std::string out;
  for (const std::string& p : pieces) absl::StrAppend(&out, absl::Hex(p.size()), "\r\n", p, "\r\n");
  absl::StrAppend(&out, "0\r\n", trailer, "\r\n");
  return out;
}

// ---- what real clients and servers send ----------------------------------------------------

// curl 7.88.1 -v https://api.contoso-aw.ghe.com/api/v3/meta (keep-alive, two requests).
inline const std::string kCurlGet =
    "GET /api/v3/meta HTTP/1.1\r\n"
    "Host: api.contoso-aw.ghe.com\r\n"
    "User-Agent: curl/7.88.1\r\n"
    "Accept: */*\r\n"
    "Authorization: Bearer ghp_0123456789abcdefABCDEF0123456789abcd\r\n"
    "\r\n";
inline const std::string kMetaBody = R"({"verifiable_password_authentication":false,"installed_version":"3.15.0"})";
inline const std::string kMetaResponse = absl::StrCat(
    "HTTP/1.1 200 OK\r\n"
    "Server: GitHub.com\r\n"
    "Date: Sat, 28 Nov 2026 18:00:59 GMT\r\n"
    "Content-Type: application/json; charset=utf-8\r\n"
    "Cache-Control: public, max-age=60, s-maxage=60\r\n"
    "Set-Cookie: _gh_sess=secretsession; path=/; secure; HttpOnly\r\n"
    "X-GitHub-Request-Id: C0DE:1234:5678:9ABC:6756A0B3\r\n"
    "Content-Length: ",
    kMetaBody.size(), "\r\n\r\n", kMetaBody);

// The Copilot CLI's chat request (shape only; see body_summary_test.cc for the full body).
inline std::string ChatBody(bool stream) {
  std::vector<std::string> tools;
  for (int i = 0; i < 19; i++) {
    tools.push_back(absl::StrCat(R"({"type":"function","function":{"name":"t)", i,
                                 R"(","parameters":{"type":"object"}}})"));
  }
  return absl::StrCat(R"({"messages":[{"role":"system","content":"You are Copilot."},)",
                      R"({"role":"user","content":"say hi"}],"model":"gpt-5-mini","max_tokens":16384,"stream":)",
                      stream ? "true" : "false", R"(,"tools":[)", absl::StrJoin(tools, ","),
                      R"(],"tool_choice":"auto"})");
}

inline std::string ChatRequestHead(absl::string_view path, size_t length) {
  return absl::StrCat("POST ", path, " HTTP/1.1\r\n",
                      "host: api.enterprise.githubcopilot.com\r\n"
                      "authorization: Bearer ghu_0123456789abcdefABCDEF0123456789abcd\r\n"
                      "content-type: application/json\r\n"
                      "copilot-integration-id: copilot-developer-cli\r\n"
                      "x-request-id: 3f1c2a7e-0d4b-4c55-9a39-000000000001\r\n"
                      "accept: */*\r\n"
                      "content-length: ",
                      length, "\r\n\r\n");
}

inline const char* const kChatSummary =
    R"({"model":"gpt-5-mini","stream":true,"messages":2,"tools":19,"max_tokens":16384,"tool_choice":"auto"})";

// A Chat Completions stream as the Copilot API sends it: chunked, "usage":null until the last
// chunk, then [DONE].
inline std::string ChatSse() {
  std::string events;
  for (absl::string_view word : {"Hi", "!", " How", " can", " I", " help", "?"}) {
    absl::StrAppend(&events, R"(data: {"choices":[{"index":0,"delta":{"content":")", word,
                    R"("}}],"created":1764352859,"id":"chatcmpl-1","model":"gpt-5-mini","usage":null})", "\n\n");
  }
  absl::StrAppend(&events,
                  R"(data: {"choices":[],"created":1764352859,"id":"chatcmpl-1","model":"gpt-5-mini",)",
                  R"("usage":{"completion_tokens":12,"prompt_tokens":9035,"prompt_tokens_details":)",
                  R"({"cached_tokens":8832},"total_tokens":9047,"completion_tokens_details":{"reasoning_tokens":0}}})",
                  "\n\n", "data: [DONE]\n\n");
  return events;
}

inline std::string SseResponseHead() {
  return "HTTP/1.1 200 OK\r\n"
         "Content-Type: text/event-stream\r\n"
         "Transfer-Encoding: chunked\r\n"
         "X-Request-Id: 3f1c2a7e\r\n"
         "\r\n";
}

// Splits text into chunks of `size` bytes, chunk-encoded.
inline std::string ChunkedEvery(absl::string_view text, size_t size) {
  std::vector<std::string> pieces;
  for (size_t i = 0; i < text.size(); i += size) pieces.emplace_back(text.substr(i, size));
  return Chunked(pieces);
}

}  // namespace awfshim::http1_test
