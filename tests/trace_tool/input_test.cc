// awf-shim-trace on input the goldens do not hold: malformed and oversized lines, unknown events,
// usage errors and exit codes, stdin, formats, control characters, one row per host whatever the
// port, and what `errors --json` echoes.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "simdjson.h"
#include "tool_run.h"

namespace trace_tool_test {
namespace {

TEST(TraceTool, MalformedLinesAreReportedWithFileAndLine) {
  Result r = RunTool({"summary", "garbage.jsonl", "truncated.jsonl", "schema.jsonl", "nonobject.jsonl"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("garbage.jsonl:4: not JSON"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("truncated.jsonl:5: truncated last line"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("schema.jsonl:4: schema 2 (this tool reads schema 1): skipped"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("schema.jsonl:5: unknown event \"future\": skipped"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nonobject.jsonl:1: not a JSON object (an array)"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.rfind("1 host tunnelled, 1 failed name lookup\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("  api.contoso-aw.ghe.com  443           3     3       0        750      1827  200 ×3\n"),
            std::string::npos)
      << r.out;
}

TEST(TraceTool, UnknownEventsAndOtherSchemasAloneDoNotFail) {
  TempDir tmp;
  std::string denial = ReadFile(DataDir() + "/denial.jsonl");
  WriteFile(tmp / "t.jsonl", denial +
            "{\"ts\":\"2026-11-28T19:00:55.000000Z\",\"pid\":1,\"tid\":1,\"exe\":\"x\",\"ev\":\"future\"}\n"
            "{\"schema\":3,\"ts\":\"2026-11-28T19:00:55.000001Z\",\"pid\":1,\"tid\":1,\"exe\":\"x\",\"ev\":\"dns\"}\n");
  Result r = RunTool({"summary", tmp / "t.jsonl"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("t.jsonl:17: unknown event \"future\": skipped"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("t.jsonl:18: schema 3 (this tool reads schema 1): skipped"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("2 of 18 lines skipped: 1 of another schema version, 1 unknown event (future ×1)"),
            std::string::npos) << r.err;
}

TEST(TraceTool, RefusedTapPatchIsAnErrorAndAPatchIsNot) {
  TempDir tmp;
  WriteFile(tmp / "t.jsonl",
            "{\"ts\":\"2026-11-28T19:00:55.000000Z\",\"pid\":7,\"tid\":7,\"exe\":\"node\",\"ev\":\"tap\",\"mode\":\"patch\","
            "\"outcome\":\"patched\",\"functions\":\"SSL_write,SSL_read,SSL_free\"}\n"
            "{\"ts\":\"2026-11-28T19:00:56.000000Z\",\"pid\":8,\"tid\":8,\"exe\":\"app\",\"ev\":\"tap\",\"mode\":\"patch\","
            "\"outcome\":\"refused\",\"reason\":\"SSL_write: too short to patch: its code ends at +3\"}\n");
  Result errors = RunTool({"errors", tmp / "t.jsonl"});
  EXPECT_EQ(errors.err, "");
  EXPECT_NE(errors.out.find("TLS tap off in this process: SSL_write: too short to patch"), std::string::npos) << errors.out;
  EXPECT_EQ(errors.out.find("node"), std::string::npos) << "a successful patch is not an error: " << errors.out;
  Result timeline = RunTool({"timeline", tmp / "t.jsonl"});
  EXPECT_NE(timeline.out.find("patched SSL_write,SSL_read,SSL_free"), std::string::npos) << timeline.out;
}

TEST(TraceTool, AForkChildsCopyClosingEndsNoConnectionButItsBytesCount) {
  TempDir tmp;
  auto close = [](int pid, int bytes, bool inherited) {
    std::string p = std::to_string(pid), b = std::to_string(bytes);
    return "{\"ts\":\"2026-11-28T19:00:5" + p + ".000000Z\",\"pid\":" + p + ",\"tid\":" + p +
           ",\"exe\":\"python3\",\"ev\":\"close\",\"fd\":3,\"host\":\"api.example\",\"port\":443,"
           "\"kind\":\"tunnel\",\"bytes_out\":" + b + ",\"bytes_in\":" + b +
           (inherited ? ",\"inherited\":true" : "") + ",\"ms\":1.0}\n";
  };
  WriteFile(tmp / "t.jsonl", close(2, 6, true) + close(1, 18, false));
  Result r = RunTool({"summary", "--json", tmp / "t.jsonl"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("\"bytes_out\":24,\"bytes_in\":24,\"closes\":1,"), std::string::npos) << r.out;
  // The child's copy alone (the parent's close not in the trace): its bytes still have a row.
  WriteFile(tmp / "child.jsonl", close(2, 6, true));
  Result child = RunTool({"summary", "--json", tmp / "child.jsonl"});
  EXPECT_NE(child.out.find("\"bytes_out\":6,\"bytes_in\":6,\"closes\":0,"), std::string::npos) << child.out;
}

// ports.jsonl: tunnels on 443, 7000, 8443 and 9443, an application's own CONNECT to
// ghes.corp.example:8443 (its Host header "GHES.corp.example:8443", its close's host "host:port"
// with the proxy's port), a bypassed [::1]:443. Each host is one row, its ports listed; the HTTP
// groups, --host and the HAR go by the same host.
TEST(TraceTool, OneRowPerHostWhateverThePort) {
  Result r = RunTool({"summary", "--json", "ports.jsonl"});
  ASSERT_EQ(r.status, 0) << r.err;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
  std::map<std::string, std::string> ports;  // host → "443,8443"
  simdjson::dom::object ghes;
  simdjson::dom::array hosts, http;
  ASSERT_EQ(doc["hosts"].get(hosts), simdjson::SUCCESS);
  for (simdjson::dom::element h : hosts) {
    std::string_view name;
    simdjson::dom::array list;
    ASSERT_EQ(h["host"].get(name), simdjson::SUCCESS);
    std::string& text = ports[std::string(name)];
    if (h["ports"].get(list) == simdjson::SUCCESS) {
      for (simdjson::dom::element p : list) text += (text.empty() ? "" : ",") + simdjson::minify(p);
    }
    if (name == "ghes.corp.example") {
      EXPECT_EQ(h.get(ghes), simdjson::SUCCESS);
    }
  }
  EXPECT_EQ(ports, (std::map<std::string, std::string>{{"127.0.0.1", "3128"},
                                                       {"::1", "443"},
                                                       {"api.contoso-aw.ghe.com", "443,7000"},
                                                       {"ghes.corp.example", "443,8443,9443"}}))
      << r.out;
  ASSERT_TRUE(ghes.size() > 0) << r.out;
  EXPECT_EQ(ghes["bytes_out"].get_int64().value_unsafe(), 517 + 861 + 0 + 1034);
  EXPECT_EQ(ghes["bytes_in"].get_int64().value_unsafe(), 3310 + 4127 + 0 + 1201);
  EXPECT_EQ(ghes["closes"].get_int64().value_unsafe(), 4);
  EXPECT_EQ(ghes["http_requests"].get_int64().value_unsafe(), 2);
  std::set<std::string> http_hosts;
  ASSERT_EQ(doc["http"].get(http), simdjson::SUCCESS);
  for (simdjson::dom::element g : http) http_hosts.insert(simdjson::minify(g["host"]));
  EXPECT_EQ(http_hosts, (std::set<std::string>{"\"api.contoso-aw.ghe.com\"", "\"ghes.corp.example\""}));

  // Every event about the host, whatever its port or case: pid 12810's 12, and the application's
  // CONNECT, tls, http and close (its connect went to the proxy).
  Result timeline = RunTool({"timeline", "--host", "GHES.corp.example", "ports.jsonl"});
  EXPECT_EQ(timeline.status, 0) << timeline.err;
  EXPECT_EQ(std::count(timeline.out.begin(), timeline.out.end(), '\n'), 16) << timeline.out;
  EXPECT_NE(timeline.out.find("close   fd=3 ghes.corp.example:8443 application-proxied"), std::string::npos)
      << timeline.out;
  Result v6 = RunTool({"timeline", "--host", "[::1]", "ports.jsonl"});
  EXPECT_EQ(std::count(v6.out.begin(), v6.out.end(), '\n'), 3) << v6.out;

  TempDir tmp;
  Result har = RunTool({"har", "-o", tmp / "h.har", "ports.jsonl"});
  EXPECT_EQ(har.status, 0) << har.err;
  EXPECT_NE(ReadFile(tmp / "h.har").find("\"url\":\"https://GHES.corp.example:8443/api/graphql?per_page=5\""),
            std::string::npos);
}

TEST(TraceTool, TenMegabyteLineIsSkippedWithoutBufferingIt) {
  TempDir tmp;
  std::string lines = ReadFile(DataDir() + "/success.jsonl");
  std::string first = lines.substr(0, lines.find('\n') + 1);
  std::string huge = "{\"ts\":\"2026-11-28T19:00:54.400000Z\",\"pid\":1,\"tid\":1,\"exe\":\"x\",\"ev\":\"dns\",\"host\":\"";
  huge.append(10 << 20, 'a');
  huge += "\"}\n";
  WriteFile(tmp / "big.jsonl", first + huge + lines.substr(first.size()));
  Result r = RunTool({"summary", "--json", tmp / "big.jsonl"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("big.jsonl:2: line longer than 1 MiB: skipped"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("\"lines\":19,\"events\":18,\"unreadable\":1"), std::string::npos) << r.out;
  // A 10 MB line with no newline at the end is skipped too, and is the last line.
  WriteFile(tmp / "big2.jsonl", first + huge.substr(0, huge.size() - 1));
  r = RunTool({"timeline", tmp / "big2.jsonl"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("big2.jsonl:2: line longer than 1 MiB: skipped"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
}

TEST(TraceTool, LastLineWithoutNewlineThatFillsTheFirstBufferIsRead) {
  // 256 KiB is the reader's first buffer (Source::kFirstCap): looking for more of the line
  // grows the buffer, finds the end of the file, and the line must then be read from the new one.
  TempDir tmp;
  std::string lines = ReadFile(DataDir() + "/success.jsonl");
  std::string first = lines.substr(0, lines.find('\n') + 1);
  std::string last = "{\"ts\":\"2026-11-28T19:00:54.400000Z\",\"pid\":1,\"tid\":1,\"exe\":\"x\",\"ev\":\"dns\",\"host\":\"";
  last.append((256 << 10) - last.size() - 2, 'a');
  last += "\"}";
  WriteFile(tmp / "t.jsonl", first + last);
  Result r = RunTool({"summary", "--json", tmp / "t.jsonl"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("\"lines\":2,\"events\":2,\"unreadable\":0"), std::string::npos) << r.out.substr(0, 2000);
}

TEST(TraceTool, StdinIsReadForDashOrNoFile) {
  Result file = RunTool({"summary", "denial.jsonl"});
  Result dash = RunTool({"summary", "-"}, DataDir(), DataDir() + "/denial.jsonl");
  Result none = RunTool({"summary"}, DataDir(), DataDir() + "/denial.jsonl");
  EXPECT_EQ(dash.status, 0);
  auto body = [](const std::string& s) { return s.substr(0, s.find("\nInput\n")); };
  EXPECT_EQ(body(dash.out), body(file.out));
  EXPECT_NE(dash.out.find("  <stdin>: 16 lines, 16 events"), std::string::npos) << dash.out;
  EXPECT_EQ(none.out, dash.out);
}

TEST(TraceTool, UsageErrorsExitTwoWithAClearMessage) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  std::vector<Case> cases = {
      {{}, "awf-shim-trace: missing command: summary, errors, timeline or har"},
      {{"sumary", "x"}, "awf-shim-trace: unknown command 'sumary'; expected summary, errors, timeline or har"},
      {{"summary", "--jsno"}, "awf-shim-trace summary: unknown option '--jsno'"},
      {{"har", "http.jsonl"}, "awf-shim-trace har: missing -o FILE (where to write the HAR)"},
      {{"timeline", "--json", "http.jsonl"}, "awf-shim-trace timeline: --json is not an option of timeline (only of summary and errors)"},
      {{"har", "--follow", "-o", "x.har"}, "awf-shim-trace har: --follow is not an option of har"},
      {{"summary", "-o", "x"}, "awf-shim-trace summary: -o is not an option of summary (only of har)"},
      {{"timeline", "--pid", "abc"}, "awf-shim-trace timeline: --pid wants a process id, not 'abc'"},
      {{"timeline", "--pid"}, "awf-shim-trace timeline: --pid needs a value"},
      {{"timeline", "--host", "ghes.example:8443"},
       "awf-shim-trace timeline: --host takes a host without a port, not 'ghes.example:8443'"},
      {{"summary", "no-such-file.jsonl"}, "awf-shim-trace summary: cannot read no-such-file.jsonl: No such file or directory"},
      {{"summary", "."}, "awf-shim-trace summary: cannot read .: is a directory"},
      {{"har", "http.jsonl", "-o", "/nonexistent-dir/x.har"}, "awf-shim-trace har: cannot write /nonexistent-dir/x.har"},
      {{"summary", "-", "-"}, "awf-shim-trace summary: stdin ('-') given more than once"},
      {{"summary", "--format", "xml"}, "awf-shim-trace summary: --format wants pretty, markdown or json, not 'xml'"},
      {{"errors", "--format=markdown"},
       "awf-shim-trace errors: --format markdown is for summary only (errors: pretty or json)"},
      {{"timeline", "--format", "json"},
       "awf-shim-trace timeline: --format is not an option of timeline (only of summary and errors)"},
      {{"summary", "--format", "markdown", "-f"},
       "awf-shim-trace summary: --format markdown does not go with --follow"},
      {{"summary", "--json", "--format", "pretty"}, "awf-shim-trace summary: --format pretty contradicts --json"},
  };
  for (const Case& c : cases) {
    Result r = RunTool(c.args);
    std::string what = c.args.empty() ? "(no arguments)" : c.args[0] + "…";
    EXPECT_EQ(r.status, 2) << what;
    EXPECT_EQ(r.err.rfind(c.message, 0), 0u) << what << ": " << r.err;
    EXPECT_EQ(r.out, "") << what;
  }
  Result help = RunTool({"--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_EQ(help.out.rfind("usage: awf-shim-trace COMMAND", 0), 0u);
}

// --format pretty is the default, --format json the same as --json (the goldens hold them too).
TEST(TraceTool, FormatPrettyAndJsonAreTheDefaultAndJson) {
  for (const char* cmd : {"summary", "errors"}) {
    EXPECT_EQ(RunTool({cmd, "--format", "pretty", "denial.jsonl"}).out, RunTool({cmd, "denial.jsonl"}).out) << cmd;
    EXPECT_EQ(RunTool({cmd, "--format=json", "denial.jsonl"}).out, RunTool({cmd, "--json", "denial.jsonl"}).out)
        << cmd;
  }
  Result both = RunTool({"summary", "--json", "--format", "json", "denial.jsonl"});
  EXPECT_EQ(both.status, 0) << both.err;
}

// Every human-readable command shows `escaped` and no control character (ESC, BEL, C1 CSI).
void ExpectEscapedInHumanOutput(const std::string& trace, const std::string& escaped) {
  for (const char* cmd : {"summary", "timeline", "errors"}) {
    Result r = RunTool({cmd, trace});
    EXPECT_EQ(r.status, 0) << cmd;
    EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << cmd << ": " << r.out;
    EXPECT_EQ(r.out.find('\x07'), std::string::npos) << cmd << ": " << r.out;
    EXPECT_EQ(r.out.find("\xc2\x9b"), std::string::npos) << cmd << ": " << r.out;
    EXPECT_NE(r.out.find(escaped), std::string::npos) << cmd << ": " << r.out;
  }
}

TEST(TraceTool, ControlCharactersNeverReachTheTerminal) {
  TempDir tmp;
  WriteFile(tmp / "t.jsonl",
            "{\"ts\":\"2026-11-28T19:00:54.000001Z\",\"pid\":9,\"tid\":9,\"exe\":\"evil\\u001b[2J\",\"ev\":\"dns\","
            "\"host\":\"a\\u0007b\",\"family\":\"any\",\"mode\":\"system\",\"error\":\"x\\u009b1m\"}\n");
  ExpectEscapedInHumanOutput(tmp / "t.jsonl", "evil\\x1b[2J");
}

TEST(TraceTool, ControlCharactersInAProxyAnswerNeverReachTheTerminal) {
  TempDir tmp;
  WriteFile(tmp / "t.jsonl",
            "{\"ts\":\"2026-11-28T19:05:10.100000Z\",\"pid\":1,\"tid\":1,\"exe\":\"x\",\"ev\":\"tunnel\","
            "\"target\":\"h:443\",\"result\":\"failed\",\"status\":403,\"squid_error\":\"\\u001b[2J\","
            "\"errno\":\"E\\u0007\"}\n"
            "{\"ts\":\"2026-11-28T19:05:10.200000Z\",\"pid\":1,\"tid\":1,\"exe\":\"x\",\"ev\":\"tunnel\","
            "\"target\":\"g:443\",\"result\":\"failed\",\"errno\":\"E\\u0007\"}\n");
  ExpectEscapedInHumanOutput(tmp / "t.jsonl", "\\x1b[2J");
  // The verdict names each refusal, the proxy's answer as well.
  Result r = RunTool({"summary", tmp / "t.jsonl"});
  EXPECT_EQ(r.out.rfind("no host tunnelled, 1 refused by the proxy: h 403 \\x1b[2J, 1 not reached through the proxy: "
                        "g E\\x07\n", 0), 0u) << r.out;
}

TEST(TraceTool, ErrorsJsonIsValidWhateverTheEventHolds) {
  // The event is echoed: values nested deeper than JsonWriter keeps track of, and numbers too
  // large to print digit by digit, must still come out as JSON.
  TempDir tmp;
  std::string deep = std::string(64, '[') + std::string(64, ']');
  WriteFile(tmp / "t.jsonl",
            "{\"ts\":\"2026-11-28T19:05:10.100000Z\",\"pid\":1,\"tid\":1,\"exe\":\"x\",\"ev\":\"tunnel\","
            "\"target\":\"h:443\",\"result\":\"failed\",\"deep\":" + deep + ",\"big\":1e300,\"neg\":-2.5e200,"
            "\"u\":18446744073709551615,\"after\":1}\n");
  Result r = RunTool({"errors", "--json", tmp / "t.jsonl"});
  EXPECT_EQ(r.status, 0) << r.err;
  ASSERT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(r.out).get(doc), simdjson::SUCCESS) << r.out;
  int64_t after = 0;
  EXPECT_EQ(doc.at_pointer("/event/after").get(after), simdjson::SUCCESS) << r.out;
  EXPECT_EQ(after, 1);
  double d = 0;
  EXPECT_EQ(doc.at_pointer("/event/big").get(d), simdjson::SUCCESS);
  EXPECT_EQ(d, 1e300);
  EXPECT_EQ(doc.at_pointer("/event/neg").get(d), simdjson::SUCCESS);
  EXPECT_EQ(d, -2.5e200);
  EXPECT_EQ(doc.at_pointer("/event/u").get(d), simdjson::SUCCESS);
  EXPECT_EQ(d, 18446744073709551615.0);
  // What is too deep comes as its compact JSON, in a string.
  simdjson::dom::element v;
  ASSERT_EQ(doc.at_pointer("/event/deep").get(v), simdjson::SUCCESS);
  simdjson::dom::array a;
  int depth = 0;
  for (; v.get(a) == simdjson::SUCCESS && a.size() > 0; ++depth) v = a.at(0).value_unsafe();
  EXPECT_GT(depth, 8);
  std::string_view rest;
  ASSERT_EQ(v.get(rest), simdjson::SUCCESS) << r.out;
  EXPECT_EQ(rest, deep.substr(depth, 64 - depth) + deep.substr(64, 64 - depth));
}

}  // namespace
}  // namespace trace_tool_test
