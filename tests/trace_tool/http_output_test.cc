// awf-shim-trace's view of HTTP exchanges: the HAR's structure, latency percentiles (exact, then
// from a bounded sample), durations that are no durations, and connections the tap could not parse.
#include <cmath>
#include <cstdio>
#include <string>

#include "gtest/gtest.h"
#include "simdjson.h"
#include "tool_run.h"

namespace trace_tool_test {
namespace {

void ExpectValidHar(const std::string& text, size_t entries) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(text).get(doc), simdjson::SUCCESS) << text.substr(0, 200);
  simdjson::dom::object log;
  ASSERT_EQ(doc["log"].get(log), simdjson::SUCCESS);
  std::string_view s;
  ASSERT_EQ(log["version"].get(s), simdjson::SUCCESS);
  EXPECT_EQ(s, "1.2");
  ASSERT_EQ(log["creator"]["name"].get(s), simdjson::SUCCESS);
  EXPECT_EQ(s, "awf-shim-trace");
  ASSERT_EQ(log["creator"]["version"].get(s), simdjson::SUCCESS);
  simdjson::dom::array list;
  ASSERT_EQ(log["entries"].get(list), simdjson::SUCCESS);
  EXPECT_EQ(list.size(), entries);
  for (simdjson::dom::element e : list) {
    std::string_view started;
    ASSERT_EQ(e["startedDateTime"].get(started), simdjson::SUCCESS);
    EXPECT_EQ(started.size(), 24u) << started;  // 2026-11-28T19:05:10.104Z
    EXPECT_EQ(started.back(), 'Z');
    double time;
    ASSERT_EQ(e["time"].get(time), simdjson::SUCCESS);
    simdjson::dom::object req, resp, content, timings, cache;
    ASSERT_EQ(e["request"].get(req), simdjson::SUCCESS);
    ASSERT_EQ(e["response"].get(resp), simdjson::SUCCESS);
    ASSERT_EQ(e["cache"].get(cache), simdjson::SUCCESS);
    ASSERT_EQ(e["timings"].get(timings), simdjson::SUCCESS);
    for (const char* k : {"method", "url", "httpVersion"}) EXPECT_EQ(req[k].get(s), simdjson::SUCCESS) << k;
    EXPECT_EQ(req["url"].get(s), simdjson::SUCCESS);
    EXPECT_EQ(s.rfind("https://", 0), 0u) << s;
    for (const char* k : {"headers", "queryString", "cookies"}) {
      EXPECT_EQ(req[k].get(list), simdjson::SUCCESS) << k;
    }
    int64_t n;
    EXPECT_EQ(req["headersSize"].get(n), simdjson::SUCCESS);
    EXPECT_EQ(n, -1);
    EXPECT_EQ(req["bodySize"].get(n), simdjson::SUCCESS);
    EXPECT_EQ(resp["status"].get(n), simdjson::SUCCESS);
    for (const char* k : {"statusText", "httpVersion", "redirectURL"}) EXPECT_EQ(resp[k].get(s), simdjson::SUCCESS) << k;
    for (const char* k : {"headers", "cookies"}) EXPECT_EQ(resp[k].get(list), simdjson::SUCCESS) << k;
    ASSERT_EQ(resp["content"].get(content), simdjson::SUCCESS);
    EXPECT_EQ(content["size"].get(n), simdjson::SUCCESS);
    EXPECT_GE(n, 0);
    EXPECT_EQ(content["mimeType"].get(s), simdjson::SUCCESS);
    EXPECT_EQ(resp["headersSize"].get(n), simdjson::SUCCESS);
    EXPECT_EQ(resp["bodySize"].get(n), simdjson::SUCCESS);
    double sum = 0;
    for (const char* k : {"send", "wait", "receive"}) {
      double v = -1;
      EXPECT_EQ(timings[k].get(v), simdjson::SUCCESS) << k;
      EXPECT_GE(v, 0) << k;
      sum += v;
    }
    EXPECT_NEAR(sum, time, 0.002);
  }
}

TEST(TraceTool, HarIsStructurallyValid) {
  TempDir tmp;
  Result r = RunTool({"har", "http.jsonl", "-o", tmp / "h.har"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "awf-shim-trace har: 1 http event without a parsed request (e.g. HTTP/2) left out\n");
  std::string har = ReadFile(tmp / "h.har");
  ExpectValidHar(har, 10);
  EXPECT_NE(har.find("\"queryString\":[{\"name\":\"state\",\"value\":\"open\"},{\"name\":\"per_page\",\"value\":\"50\"},"
                     "{\"name\":\"labels\",\"value\":\"bug,ui\"}]"), std::string::npos);
  // -o - writes to stdout.
  Result out = RunTool({"har", "http.jsonl", "-o", "-"});
  EXPECT_EQ(out.out, har);
}

TEST(TraceTool, HarWithoutHttpEventsHasNoEntriesAndSaysSo) {
  TempDir tmp;
  Result r = RunTool({"har", "success.jsonl", "-o", tmp / "h.har"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.err.find("no http events in the input: the HAR has no entries"), std::string::npos) << r.err;
  ExpectValidHar(ReadFile(tmp / "h.har"), 0);
}

// The query string as a form decodes it: '+' a space, %XX a byte; a '%' without two hex digits
// after it is kept as it is, at the end of the string too.
TEST(TraceTool, HarQueryStringDecodesOnlyWholeEscapes) {
  TempDir tmp;
  WriteFile(tmp / "t.jsonl",
            "{\"ts\":\"2026-11-28T19:05:10.100000Z\",\"pid\":5,\"tid\":5,\"exe\":\"node\",\"ev\":\"http\","
            "\"method\":\"GET\",\"host\":\"h\",\"path\":\"/p?a=%zz&b=%4&e=%4z&c=x+y%41%2b&d=%\",\"status\":200,"
            "\"ms\":1.0}\n");
  Result r = RunTool({"har", tmp / "t.jsonl", "-o", "-"});
  EXPECT_EQ(r.status, 0) << r.err;
  ExpectValidHar(r.out, 1);
  EXPECT_NE(r.out.find("\"queryString\":[{\"name\":\"a\",\"value\":\"%zz\"},{\"name\":\"b\",\"value\":\"%4\"},"
                       "{\"name\":\"e\",\"value\":\"%4z\"},"
                       "{\"name\":\"c\",\"value\":\"x yA+\"},{\"name\":\"d\",\"value\":\"%\"}]"),
            std::string::npos)
      << r.out;
}

// ---- percentiles -------------------------------------------------------------------------------

std::string HttpLine(int i, double ms) {
  char buf[512];
  snprintf(buf, sizeof buf,
           "{\"ts\":\"2026-11-28T19:%02d:%02d.%06dZ\",\"pid\":5,\"tid\":5,\"exe\":\"node\",\"ev\":\"http\",\"fd\":7,"
           "\"method\":\"GET\",\"host\":\"api.example.test\",\"path\":\"/p?i=%d\",\"status\":200,\"ms\":%.3f}\n",
           i / 60000 % 60, i / 1000 % 60, i % 1000 * 1000, i, ms);
  return buf;
}

double JsonPercentile(const std::string& summary_json, const char* key) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(summary_json).get(doc) != simdjson::SUCCESS) return NAN;
  double v = NAN;
  simdjson::dom::array http;
  if (doc["http"].get(http) != simdjson::SUCCESS || http.size() != 1) return NAN;
  if (http.at(0)[key].get(v) != simdjson::SUCCESS) return NAN;
  return v;
}

TEST(TraceTool, PercentilesAreExactUpToTheSampleCap) {
  TempDir tmp;
  std::string t;
  for (int i = 100; i >= 1; --i) t += HttpLine(100 - i, i);  // 100 … 1 ms, one group (query ignored)
  WriteFile(tmp / "t.jsonl", t);
  Result r = RunTool({"summary", "--json", tmp / "t.jsonl"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(JsonPercentile(r.out, "p50_ms"), 50);
  EXPECT_EQ(JsonPercentile(r.out, "p90_ms"), 90);
  EXPECT_EQ(JsonPercentile(r.out, "p99_ms"), 99);
  EXPECT_NE(r.out.find("\"count\":100,"), std::string::npos);
}

TEST(TraceTool, PercentilesPastTheCapComeFromABoundedSample) {
  TempDir tmp;
  std::string t;
  for (int i = 0; i < 40000; ++i) t += HttpLine(i, (i * 7919) % 40000 + 1);  // 1 … 40000 ms, shuffled
  WriteFile(tmp / "t.jsonl", t);
  Result r = RunTool({"summary", "--json", tmp / "t.jsonl"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("\"count\":40000,"), std::string::npos);
  EXPECT_NE(r.out.find("\"samples\":10000}"), std::string::npos);
  EXPECT_NEAR(JsonPercentile(r.out, "p50_ms"), 20000, 800);
  EXPECT_NEAR(JsonPercentile(r.out, "p90_ms"), 36000, 800);
  EXPECT_NEAR(JsonPercentile(r.out, "p99_ms"), 39600, 400);
}

TEST(TraceTool, AbsurdDurationsCountAsNotKnown) {
  // 1e300 ms is no duration: the HAR entry takes it as unknown (0, so the HAR stays valid), and
  // so do the timeline (no duration shown) and the summary (no latency sample).
  TempDir tmp;
  const std::string head = "{\"pid\":5,\"tid\":5,\"exe\":\"node\",\"ev\":\"http\",\"method\":\"GET\",\"host\":\"h\","
                           "\"path\":\"/\",\"status\":200,";
  WriteFile(tmp / "t.jsonl",
            head + "\"ts\":\"2026-11-28T19:05:10.100000Z\",\"ms\":1e300,\"ttfb_ms\":1e300}\n" +
            head + "\"ts\":\"2026-11-28T19:05:11.100000Z\",\"ms\":2e12}\n" +
            head + "\"ts\":\"2026-11-28T19:05:12.100000Z\",\"ms\":12.5,\"ttfb_ms\":1e300}\n" +
            "{\"ts\":\"2026-11-28T19:05:13.100000Z\",\"pid\":5,\"tid\":5,\"exe\":\"node\",\"ev\":\"tunnel\","
            "\"target\":\"h:443\",\"result\":\"failed\",\"errno\":\"ECONNREFUSED\",\"ms\":1e300}\n");
  Result har = RunTool({"har", tmp / "t.jsonl", "-o", tmp / "h.har"});
  EXPECT_EQ(har.status, 0) << har.err;
  std::string text = ReadFile(tmp / "h.har");
  ExpectValidHar(text, 3);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(text).get(doc), simdjson::SUCCESS);
  double time = -1, wait = -1;
  std::string_view started;
  EXPECT_EQ(doc.at_pointer("/log/entries/0/time").get(time), simdjson::SUCCESS);
  EXPECT_EQ(time, 0);
  EXPECT_EQ(doc.at_pointer("/log/entries/0/startedDateTime").get(started), simdjson::SUCCESS);
  EXPECT_EQ(started, "2026-11-28T19:05:10.100Z");
  EXPECT_EQ(doc.at_pointer("/log/entries/1/time").get(time), simdjson::SUCCESS);
  EXPECT_EQ(time, 0);
  EXPECT_EQ(doc.at_pointer("/log/entries/2/time").get(time), simdjson::SUCCESS);
  EXPECT_EQ(time, 12.5);
  EXPECT_EQ(doc.at_pointer("/log/entries/2/timings/wait").get(wait), simdjson::SUCCESS);
  EXPECT_EQ(wait, 12.5);  // the ttfb is not known either: all of it is waiting

  Result timeline = RunTool({"timeline", tmp / "t.jsonl"});
  EXPECT_EQ(timeline.status, 0) << timeline.err;
  EXPECT_EQ(timeline.out.find("ttfb"), std::string::npos) << timeline.out;
  size_t unknown = 0;
  for (size_t p = 0; (p = timeline.out.find("GET h/ → 200\n", p)) != std::string::npos; ++p) ++unknown;
  EXPECT_EQ(unknown, 2u) << timeline.out;
  EXPECT_NE(timeline.out.find("GET h/ → 200, 12.500 ms\n"), std::string::npos) << timeline.out;
  EXPECT_NE(timeline.out.find("→ FAILED ECONNREFUSED\n"), std::string::npos) << timeline.out;

  Result errors = RunTool({"errors", tmp / "t.jsonl"});
  EXPECT_NE(errors.out.find("errno    ECONNREFUSED\n"), std::string::npos) << errors.out;

  Result summary = RunTool({"summary", "--json", tmp / "t.jsonl"});
  EXPECT_EQ(summary.status, 0) << summary.err;
  EXPECT_EQ(JsonPercentile(summary.out, "p99_ms"), 12.5) << summary.out;
  EXPECT_NE(summary.out.find("\"count\":3,"), std::string::npos) << summary.out;
  EXPECT_NE(summary.out.find("\"samples\":1}"), std::string::npos) << summary.out;
}

// The tap writes an http event with an empty method (and a duration of 0) for a connection whose
// first bytes are not an HTTP/1.x request: a connection it could not parse, with no latency.
TEST(TraceTool, AConnectionTheTapCouldNotParseIsNoRequest) {
  TempDir tmp;
  WriteFile(tmp / "t.jsonl",
            "{\"ts\":\"2026-12-06T06:44:56.000764Z\",\"pid\":7,\"tid\":7,\"exe\":\"node\",\"ev\":\"http\","
            "\"host\":\"\",\"sni\":\"\",\"method\":\"\",\"path\":\"\",\"status\":0,\"req_bytes\":0,\"resp_bytes\":0,"
            "\"ttfb_ms\":-1.000,\"ms\":0.000,\"problem\":\"not an HTTP/1.x request\"}\n");
  Result r = RunTool({"summary", "--json", tmp / "t.jsonl"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("\"verdict\":\"no host tunnelled, 1 HTTP connection not parsed\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"path\":\"(not parsed)\",\"status\":0,\"count\":1,\"p50_ms\":null,\"p90_ms\":null,"
                       "\"p99_ms\":null,\"samples\":0}"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\"errors\":[]"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace trace_tool_test
