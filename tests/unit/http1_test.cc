// Http1Stream on the traffic of real clients: exchanges paired, bodies and streams measured.
#include "awfshim/http1.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "http1_traffic.h"

namespace awfshim {
namespace {

using namespace std::string_literals;
using namespace http1_test;

TEST(Http1, CurlGetWithKeepAlive) {
  Played r = Play({C(kCurlGet, 1000), S(kMetaResponse, 51000), C(kCurlGet, 60000), S(kMetaResponse, 70000)},
               /*close=*/false);
  ASSERT_EQ(r.exchanges.size(), 2u) << DescribeAll(r);
  const HttpExchange& e = r.exchanges[0];
  EXPECT_EQ(e.method, "GET");
  EXPECT_EQ(e.host, "api.contoso-aw.ghe.com");
  EXPECT_EQ(e.path, "/api/v3/meta");
  EXPECT_EQ(e.status, 200);
  EXPECT_EQ(e.content_type, "application/json; charset=utf-8");
  EXPECT_EQ(e.request_content_type, "");
  EXPECT_EQ(e.request_body_bytes, 0u);
  EXPECT_EQ(e.response_body_bytes, kMetaBody.size());
  EXPECT_EQ(e.request_start_us, 1000);
  EXPECT_EQ(e.request_end_us, 1000);
  EXPECT_EQ(e.first_response_byte_us, 51000);
  EXPECT_EQ(e.end_us, 51000);
  EXPECT_FALSE(e.sse);
  EXPECT_EQ(e.body_summary_json, "");
  EXPECT_FALSE(e.usage.has_value());
  EXPECT_EQ(e.problem, "");
  EXPECT_EQ(r.exchanges[1].request_start_us, 60000);
  EXPECT_EQ(r.exchanges[1].end_us, 70000);
  EXPECT_EQ(r.problem, "");
  // Neither the token nor the cookie reaches any field.
  for (const HttpExchange& x : r.exchanges) {
    std::string all = Describe(x);
    EXPECT_FALSE(absl::StrContains(all, "ghp_")) << all;
    EXPECT_FALSE(absl::StrContains(all, "secretsession")) << all;
  }
}

TEST(Http1, NothingBeforeTheResponseEnds) {
  Http1Stream s;
  s.OnClientBytes(kCurlGet, 1);
  EXPECT_TRUE(s.TakeCompleted().empty());
  s.OnServerBytes(absl::string_view(kMetaResponse).substr(0, kMetaResponse.size() - 1), 2);
  EXPECT_TRUE(s.TakeCompleted().empty());
  s.OnServerBytes(absl::string_view(kMetaResponse).substr(kMetaResponse.size() - 1), 3);
  std::vector<HttpExchange> done = s.TakeCompleted();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].end_us, 3);
  EXPECT_TRUE(s.TakeCompleted().empty());
  EXPECT_FALSE(s.stopped());
}

TEST(Http1, ThreePipelinedRequests) {
  std::string requests = absl::StrCat(
      "GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n",
      "POST /b?page=2 HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
      "DELETE /c HTTP/1.1\r\nHost: example.com\r\n\r\n");
  std::string responses = absl::StrCat(
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc",
      "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
      Chunked({"{\"id\":", "7}"}), "HTTP/1.1 204 No Content\r\n\r\n");
  Played r = Play({C(requests, 10), S(responses, 20)}, false);
  ASSERT_EQ(r.exchanges.size(), 3u) << DescribeAll(r);
  EXPECT_EQ(r.exchanges[0].method, "GET");
  EXPECT_EQ(r.exchanges[0].path, "/a");
  EXPECT_EQ(r.exchanges[0].status, 200);
  EXPECT_EQ(r.exchanges[0].response_body_bytes, 3u);
  EXPECT_EQ(r.exchanges[1].method, "POST");
  EXPECT_EQ(r.exchanges[1].path, "/b?page=2");
  EXPECT_EQ(r.exchanges[1].request_content_type, "text/plain");
  EXPECT_EQ(r.exchanges[1].request_body_bytes, 5u);
  EXPECT_EQ(r.exchanges[1].status, 201);
  EXPECT_EQ(r.exchanges[1].response_body_bytes, 8u);
  EXPECT_EQ(r.exchanges[2].method, "DELETE");
  EXPECT_EQ(r.exchanges[2].status, 204);
  EXPECT_EQ(r.exchanges[2].response_body_bytes, 0u);
  for (const HttpExchange& e : r.exchanges) EXPECT_EQ(e.problem, "");

  // Responses interleaved with later requests still pair in order.
  Played r2 = Play({C("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n", 1),
                 S("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", 2), C("GET /3 HTTP/1.1\r\nHost: h\r\n\r\n", 3),
                 S("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\nHTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", 4)},
                false);
  ASSERT_EQ(r2.exchanges.size(), 3u) << DescribeAll(r2);
  EXPECT_EQ(r2.exchanges[0].path, "/1");
  EXPECT_EQ(r2.exchanges[0].status, 200);
  EXPECT_EQ(r2.exchanges[1].path, "/2");
  EXPECT_EQ(r2.exchanges[1].status, 404);
  EXPECT_EQ(r2.exchanges[2].path, "/3");
  EXPECT_EQ(r2.exchanges[2].status, 500);
  EXPECT_EQ(r2.exchanges[2].request_start_us, 3);
}

TEST(Http1, PostWithChunkedRequestBody) {
  std::string request = absl::StrCat(
      "POST /upload HTTP/1.1\r\nHost: uploads.example.com\r\nTransfer-Encoding: chunked\r\n"
      "Content-Type: application/octet-stream\r\nTrailer: X-Checksum\r\n\r\n",
      "5;name=value\r\nhello\r\n", "1A\r\n", std::string(26, 'z'), "\r\n", "0\r\nX-Checksum: abc\r\n\r\n");
  Played r = Play({C(request, 5), S("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", 9)}, false);
  ASSERT_EQ(r.exchanges.size(), 1u) << DescribeAll(r);
  EXPECT_EQ(r.exchanges[0].request_body_bytes, 31u);
  EXPECT_EQ(r.exchanges[0].request_content_type, "application/octet-stream");
  EXPECT_EQ(r.exchanges[0].status, 201);
  EXPECT_EQ(r.exchanges[0].response_body_bytes, 2u);
  EXPECT_EQ(r.exchanges[0].problem, "");
}

TEST(Http1, HundredContinueIsSkipped) {
  std::string head =
      "PUT /v1/blob HTTP/1.1\r\nHost: storage.example.com\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n";
  Played r = Play({C(head, 100), S("HTTP/1.1 100 Continue\r\n\r\n", 150), C("0123456789", 160),
                S("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", 170),
                S("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 400)},
               false);
  ASSERT_EQ(r.exchanges.size(), 1u) << DescribeAll(r);
  const HttpExchange& e = r.exchanges[0];
  EXPECT_EQ(e.status, 200);
  EXPECT_EQ(e.request_body_bytes, 10u);
  EXPECT_EQ(e.request_end_us, 160);
  EXPECT_EQ(e.first_response_byte_us, 400);  // the final response, not the interim ones
  EXPECT_EQ(e.end_us, 400);

  // A final answer instead of 100: the exchange waits for the body the client still sends.
  Played early = Play({C(head, 1), S("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n", 2),
                    C("0123456789", 3)},
                   false);
  ASSERT_EQ(early.exchanges.size(), 1u) << DescribeAll(early);
  EXPECT_EQ(early.exchanges[0].status, 413);
  EXPECT_EQ(early.exchanges[0].end_us, 3);
  EXPECT_EQ(early.exchanges[0].problem, "");
}

TEST(Http1, ChatCompletionsStreamWithUsage) {
  std::string body = ChatBody(true);
  Played r = Play({C(ChatRequestHead("/chat/completions", body.size()), 1000), C(body, 1100),
                S(SseResponseHead(), 900000), S(ChunkedEvery(ChatSse(), 100), 2500000)},
               false);
  ASSERT_EQ(r.exchanges.size(), 1u) << DescribeAll(r);
  const HttpExchange& e = r.exchanges[0];
  EXPECT_EQ(e.method, "POST");
  EXPECT_EQ(e.host, "api.enterprise.githubcopilot.com");
  EXPECT_EQ(e.path, "/chat/completions");
  EXPECT_EQ(e.request_content_type, "application/json");
  EXPECT_EQ(e.request_body_bytes, body.size());
  EXPECT_EQ(e.body_summary_json, kChatSummary);
  EXPECT_EQ(e.status, 200);
  EXPECT_TRUE(e.sse);
  EXPECT_EQ(e.content_type, "text/event-stream");
  EXPECT_EQ(e.response_body_bytes, ChatSse().size());
  EXPECT_EQ(e.request_start_us, 1000);
  EXPECT_EQ(e.request_end_us, 1100);
  EXPECT_EQ(e.first_response_byte_us, 900000);
  EXPECT_EQ(e.end_us, 2500000);
  ASSERT_TRUE(e.usage.has_value());
  EXPECT_EQ(*e.usage, (SseUsage{9035, 12, 9047, 8832, 0}));
  EXPECT_FALSE(absl::StrContains(Describe(e), "ghu_"));
}

TEST(Http1, ResponsesApiStream) {
  std::string body = R"({"model":"gpt-5","input":[{"role":"user","content":"hi"}],"stream":true})";
  std::string events = absl::StrCat(
      "event: response.created\r\n",
      R"(data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","status":"in_progress","usage":null}})",
      "\r\n\r\n", "event: response.output_text.delta\r\n",
      R"(data: {"type":"response.output_text.delta","sequence_number":1,"delta":"Hello"})", "\r\n\r\n",
      ": keep-alive comment\r\n\r\n", "event: response.completed\r\n",
      R"(data: {"type":"response.completed","sequence_number":2,"response":{"id":"resp_1","status":"completed",)",
      R"("output":[{"type":"message","content":[{"type":"output_text","text":"Hello"}]}],)",
      R"("usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":87,)",
      R"("output_tokens_details":{"reasoning_tokens":64},"total_tokens":123}}})",
      "\r\n\r\n");
  std::string response = absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n",
                                      "Content-Length: ", events.size(), "\r\n\r\n", events);
  Played r = Play({C(ChatRequestHead("/v1/responses", body.size()) + body, 1), S(response, 2)}, false);
  ASSERT_EQ(r.exchanges.size(), 1u) << DescribeAll(r);
  const HttpExchange& e = r.exchanges[0];
  EXPECT_EQ(e.path, "/v1/responses");
  EXPECT_EQ(e.body_summary_json, R"({"model":"gpt-5","stream":true,"input_items":1})");
  EXPECT_TRUE(e.sse);
  ASSERT_TRUE(e.usage.has_value());
  EXPECT_EQ(*e.usage, (SseUsage{36, 87, 123, 0, 64}));
}

TEST(Http1, LongResponseCompletedEventUsesTheTail) {
  // response.completed repeats the whole output: far past what is parsed whole.
  std::string text(300 * 1024, 'a');
  std::string event = absl::StrCat(
      R"(data: {"type":"response.completed","response":{"id":"r","tools":[{"type":"function","name":"f",)",
      R"("parameters":{"properties":{"usage":{"type":"object"}}}}],"output":[{"type":"message","content":[{"text":")",
      text, R"(\"usage\":{\"input_tokens\":1}"}]}],"usage":{"input_tokens":5000,"output_tokens":70000,)",
      R"("total_tokens":75000},"user":null,"metadata":{}}})", "\n\n");
  Played r = Play({C("GET /v1/responses/r?stream=true HTTP/1.1\r\nHost: api.openai.com\r\n\r\n", 1),
                S(SseResponseHead() + ChunkedEvery(event, 8000), 2)},
               false);
  ASSERT_EQ(r.exchanges.size(), 1u) << DescribeAll(r);
  ASSERT_TRUE(r.exchanges[0].usage.has_value());
  EXPECT_EQ(*r.exchanges[0].usage, (SseUsage{5000, 70000, 75000, -1, -1}));
  EXPECT_LE(r.max_buffered, 80u * 1024);
}

TEST(Http1, NonStreamingChatResponseUsage) {
  std::string body = ChatBody(false);
  std::string json = R"({"choices":[{"message":{"role":"assistant","content":"Hi"}}],"model":"gpt-5-mini",)"
                     R"("usage":{"completion_tokens":2,"prompt_tokens":10,"total_tokens":12}})";
  Played r = Play({C(ChatRequestHead("/v1/chat/completions", body.size()) + body, 1),
                S(absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ", json.size(),
                               "\r\n\r\n", json),
                  2)},
               false);
  ASSERT_EQ(r.exchanges.size(), 1u);
  EXPECT_FALSE(r.exchanges[0].sse);
  ASSERT_TRUE(r.exchanges[0].usage.has_value());
  EXPECT_EQ(*r.exchanges[0].usage, (SseUsage{10, 2, 12, -1, -1}));
  // Compressed: not read.
  Played gz = Play({C(ChatRequestHead("/v1/chat/completions", body.size()) + body, 1),
                 S(absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n",
                                "Content-Length: ", json.size(), "\r\n\r\n", json),
                   2)},
                false);
  ASSERT_EQ(gz.exchanges.size(), 1u);
  EXPECT_FALSE(gz.exchanges[0].usage.has_value());
}

TEST(Http1, HeadResponseHasNoBody) {
  Played r = Play({C("HEAD /big.tar.gz HTTP/1.1\r\nHost: dl.example.com\r\n\r\nGET /x HTTP/1.1\r\nHost: dl.example.com\r\n\r\n",
                  1),
                S("HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: 123456789\r\n\r\n", 2),
                S("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 3)},
               false);
  ASSERT_EQ(r.exchanges.size(), 2u) << DescribeAll(r);
  EXPECT_EQ(r.exchanges[0].method, "HEAD");
  EXPECT_EQ(r.exchanges[0].response_body_bytes, 0u);
  EXPECT_EQ(r.exchanges[0].end_us, 2);
  EXPECT_EQ(r.exchanges[1].response_body_bytes, 2u);
}

TEST(Http1, NoContentAndNotModifiedHaveNoBody) {
  Played r = Play({C("GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"x\"\r\n\r\n", 1),
                S("HTTP/1.1 204 No Content\r\nContent-Length: 50\r\n\r\n"
                  "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 900\r\n\r\n",
                  2)},
               false);
  ASSERT_EQ(r.exchanges.size(), 2u) << DescribeAll(r);
  EXPECT_EQ(r.exchanges[0].status, 204);
  EXPECT_EQ(r.exchanges[1].status, 304);
  EXPECT_EQ(r.exchanges[1].response_body_bytes, 0u);
  EXPECT_EQ(r.problem, "");
}

TEST(Http1, CloseDelimitedResponse) {
  std::vector<Step> steps = {C("GET /legacy HTTP/1.0\r\nHost: old.example.com\r\n\r\n", 1),
                             S("HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>", 2), S("</html>", 3)};
  Played open = Play(steps, false);
  EXPECT_TRUE(open.exchanges.empty());  // the end is the close
  Played r = Play(steps, true, 9);
  ASSERT_EQ(r.exchanges.size(), 1u) << DescribeAll(r);
  EXPECT_EQ(r.exchanges[0].response_body_bytes, 13u);
  EXPECT_EQ(r.exchanges[0].end_us, 9);
  EXPECT_EQ(r.exchanges[0].problem, "");
  // A Transfer-Encoding other than chunked also runs to the close.
  Played gz = Play({C("GET / HTTP/1.1\r\nHost: h\r\n\r\n", 1),
                 S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabcdef", 2)},
                true, 5);
  ASSERT_EQ(gz.exchanges.size(), 1u);
  EXPECT_EQ(gz.exchanges[0].response_body_bytes, 6u);
  EXPECT_EQ(gz.exchanges[0].problem, "");
}

TEST(Http1, CloseBeforeTheResponse) {
  Played r = Play({C("GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n", 1),
                S("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", 2)},
               true, 3);
  ASSERT_EQ(r.exchanges.size(), 2u) << DescribeAll(r);
  EXPECT_EQ(r.exchanges[0].status, 200);
  EXPECT_EQ(r.exchanges[0].response_body_bytes, 5u);
  EXPECT_EQ(r.exchanges[0].problem, "connection closed before the response ended");
  EXPECT_EQ(r.exchanges[1].status, 0);
  EXPECT_EQ(r.exchanges[1].problem, "connection closed before the response");
  EXPECT_EQ(r.exchanges[1].end_us, 3);
  EXPECT_EQ(r.problem, "");
}

TEST(Http1, ServerAnswersWithoutARequest) {
  Played r = Play({S("HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 7)}, true, 8);
  ASSERT_EQ(r.exchanges.size(), 1u) << DescribeAll(r);
  EXPECT_EQ(r.exchanges[0].status, 408);
  EXPECT_EQ(r.exchanges[0].method, "");
  EXPECT_EQ(r.exchanges[0].problem, "response without a request");
}

// Reader and writer threads on one SSL*: the reader's SSL_read returns each answer before the
// writer's SSL_write has returned and been fed (the tap dates a request from when SSL_write began).

TEST(Http1, ResponseSeenBeforeItsRequestStillPairs) {
  std::string a = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na";
  std::string b = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nnot found\r\n.";
  std::vector<Step> steps = {S(a, 20), C("GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 10), S(b.substr(0, 50), 40),
                             C("POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n", 30), C("xyz", 31),
                             S(b.substr(50), 45)};
  Played r = Play(steps, true, 50);
  ASSERT_EQ(r.exchanges.size(), 2u) << DescribeAll(r);
  EXPECT_EQ(Describe(r.exchanges[0]), "GET h /a 200 ct= rct= req=0 resp=1 t=10,10,20,20 sse=0 sum= usage=none problem=");
  EXPECT_EQ(Describe(r.exchanges[1]),
            "POST h /b 404 ct=text/plain rct= req=3 resp=12 t=30,31,40,45 sse=0 sum= usage=none problem=");
  std::string expected = DescribeAll(r);
  EXPECT_EQ(DescribeAll(Play(steps, true, 50, Split::kBytes)), expected);
  for (uint32_t seed = 1; seed <= 10; seed++) EXPECT_EQ(DescribeAll(Play(steps, true, 50, Split::kRandom, seed)), expected);
}

TEST(Http1, ResponseWithoutARequestIsHeldOnlySoLong) {
  // More than kMaxHttpHead bytes after the head and still no request: no request is coming.
  std::string body(100000, 'x');
  Played r = Play({S(absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", body.size(), "\r\n\r\n", body), 7)}, false);
  ASSERT_EQ(r.exchanges.size(), 1u) << DescribeAll(r);
  EXPECT_EQ(r.exchanges[0].status, 200);
  EXPECT_EQ(r.exchanges[0].response_body_bytes, body.size());
  EXPECT_EQ(r.exchanges[0].problem, "response without a request");
  EXPECT_LE(r.max_buffered, kMaxHttpHead + 1024);
  // A later request and its answer pair as usual.
  Played next = Play({S(absl::StrCat("HTTP/1.1 408 Request Timeout\r\nContent-Length: ", body.size(), "\r\n\r\n", body), 1),
                      C("GET /n HTTP/1.1\r\nHost: h\r\n\r\n", 2), S("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 3)},
                     false);
  ASSERT_EQ(next.exchanges.size(), 2u) << DescribeAll(next);
  EXPECT_EQ(next.exchanges[0].status, 408);
  EXPECT_EQ(next.exchanges[1].path, "/n");
  EXPECT_EQ(next.exchanges[1].status, 200);
  EXPECT_EQ(next.exchanges[1].problem, "");
}

TEST(Http1, ExitReportsOpenExchangesIncomplete) {
  Http1Stream s;
  std::string body = ChatBody(true);
  s.OnClientBytes(ChatRequestHead("/chat/completions", body.size()) + body, 1);
  s.OnClientBytes("GET /next HTTP/1.1\r\nHost: h\r\n\r\n", 2);
  std::string first_events = ChunkedEvery(ChatSse(), 100);
  first_events.resize(300);
  s.OnServerBytes(SseResponseHead() + first_events, 3);
  EXPECT_TRUE(s.TakeCompleted().empty());
  s.OnExit(9);
  std::vector<HttpExchange> done = s.TakeCompleted();
  ASSERT_EQ(done.size(), 2u);
  EXPECT_TRUE(done[0].incomplete);
  EXPECT_EQ(done[0].status, 200);
  EXPECT_TRUE(done[0].sse);
  EXPECT_EQ(done[0].body_summary_json, kChatSummary);
  EXPECT_GT(done[0].response_body_bytes, 200u);
  EXPECT_EQ(done[0].first_response_byte_us, 3);
  EXPECT_EQ(done[0].end_us, 9);
  EXPECT_EQ(done[0].problem, "the process exited before the response ended");
  EXPECT_TRUE(done[1].incomplete);
  EXPECT_EQ(done[1].path, "/next");
  EXPECT_EQ(done[1].status, 0);
  EXPECT_EQ(done[1].problem, "the process exited before the response");
  EXPECT_TRUE(s.stopped());
  s.OnClose(10);
  EXPECT_TRUE(s.TakeCompleted().empty());

  // A body delimited by the close has not ended while the connection is open.
  Http1Stream legacy;
  legacy.OnClientBytes("GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n", 1);
  legacy.OnServerBytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.0 200 OK\r\n\r\n<html>", 2);
  ASSERT_EQ(legacy.TakeCompleted().size(), 1u);
  legacy.OnExit(3);
  done = legacy.TakeCompleted();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(done[0].incomplete);
  EXPECT_EQ(done[0].response_body_bytes, 6u);
  EXPECT_EQ(done[0].problem, "the process exited before the response ended");
}

TEST(Http1, SecretQueryValuesAreRedacted) {
  Played r = Play({C("GET /login/oauth/access_token?client_id=Iv1.abc&code=0123abcd&client_secret=s3cr3t&page=2 HTTP/1.1\r\n"
                  "Host: github.com\r\n\r\n"
                  "GET https://user:hunter2@api.github.com/repos/o/r?access_token=ghp_0123456789abcdefABCDEF0123456789abcd HTTP/1.1\r\n"
                  "\r\n"
                  "GET /raw/ghp_0123456789abcdefABCDEF0123456789abcd/x HTTP/1.1\r\nHost: u:p@raw.example.com\r\n\r\n",
                  1),
                S("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
                  "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
                  "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                  2)},
               false);
  ASSERT_EQ(r.exchanges.size(), 3u) << DescribeAll(r);
  EXPECT_EQ(r.exchanges[0].path, "/login/oauth/access_token?client_id=Iv1.abc&code=***&client_secret=***&page=2");
  // Absolute form: the authority is the host, its userinfo is dropped.
  EXPECT_EQ(r.exchanges[1].host, "api.github.com");
  EXPECT_EQ(r.exchanges[1].path, "/repos/o/r?access_token=***");
  EXPECT_EQ(r.exchanges[2].path, "/raw/ghp_***/x");
  EXPECT_EQ(r.exchanges[2].host, "raw.example.com");
  std::string all = DescribeAll(r);
  for (absl::string_view secret : {"0123abcd", "s3cr3t", "hunter2", "ghp_0123"}) {
    EXPECT_FALSE(absl::StrContains(all, secret)) << secret;
  }
}

TEST(Http1, LfOnlyAndOddButValidHeads) {
  Played r = Play({C("\r\nGET /lf HTTP/1.1\nHOST:   lf.example.com  \ncontent-LENGTH: 3\n\nabc", 1),
                S("HTTP/1.1 200\nCONTENT-TYPE:text/plain\nTRANSFER-ENCODING: chunked\n\n3\nabc\n0\n\n", 2)},
               false);
  ASSERT_EQ(r.exchanges.size(), 1u) << DescribeAll(r);
  EXPECT_EQ(r.exchanges[0].host, "lf.example.com");
  EXPECT_EQ(r.exchanges[0].request_body_bytes, 3u);
  EXPECT_EQ(r.exchanges[0].status, 200);
  EXPECT_EQ(r.exchanges[0].content_type, "text/plain");
  EXPECT_EQ(r.exchanges[0].response_body_bytes, 3u);
  EXPECT_EQ(r.exchanges[0].problem, "");
}

TEST(Http1, ParseUsageShapes) {
  EXPECT_EQ(ParseUsage(R"({"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}})"),
            (SseUsage{3, 4, 7, -1, -1}));
  EXPECT_EQ(ParseUsage(R"({"type":"response.completed","response":{"usage":{"input_tokens":1,"output_tokens":2,"total_tokens":3}}})"),
            (SseUsage{1, 2, 3, -1, -1}));
  EXPECT_EQ(ParseUsage(R"({"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1}}})"),
            (SseUsage{25, 1, -1, -1, -1}));
  EXPECT_EQ(ParseUsage(R"({"usage":null})"), std::nullopt);
  EXPECT_EQ(ParseUsage(R"({"usage":{}})"), std::nullopt);
  EXPECT_EQ(ParseUsage(R"({"usage":{"prompt_tokens":-1,"total_tokens":"7"}})"), std::nullopt);
  EXPECT_EQ(ParseUsage("[DONE]"), std::nullopt);
  EXPECT_EQ(ParseUsage(R"({"usage":{"prompt_tokens":3})"), std::nullopt);
  EXPECT_EQ(ParseUsage(""), std::nullopt);
}

}  // namespace
}  // namespace awfshim
