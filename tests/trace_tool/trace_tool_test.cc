// Tests of awf-shim-trace, run as a program on the traces in data/ (see data/README.md):
// golden outputs, malformed input, exit codes, HAR structure, percentiles, --follow.
//
// meson passes AWF_SHIM_TRACE_BIN (the built binary) and TRACE_TOOL_DIR (this directory).
// The golden cases are listed in cases.txt (see there): golden/NAME.txt|json (stdout; for har,
// the HAR file) plus golden/STEM.stderr ("exit status N" and stderr) when the run exits non-zero
// or writes to stderr. recount.py checks the goldens' facts against the traces, independently.
//
// A test run only compares. To regenerate the goldens after an intended change, run
// scripts/update-goldens (it calls this binary with --write-goldens DIR), then review the diff.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "simdjson.h"

namespace {

std::string Env(const char* name) {
  const char* v = getenv(name);
  return v ? v : "";
}

std::string Bin() { return Env("AWF_SHIM_TRACE_BIN"); }
std::string Dir() { return Env("TRACE_TOOL_DIR"); }
std::string DataDir() { return Dir() + "/data"; }
std::string GoldenDir() { return Dir() + "/golden"; }

std::string ReadFile(const std::string& path, bool* exists = nullptr) {
  std::ifstream f(path, std::ios::binary);
  if (exists) *exists = f.good();
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool WriteFile(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << content;
  f.close();
  return !f.fail();
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/awf-shim-trace-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { (void)!system(("rm -rf '" + path_ + "'").c_str()); }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Result {
  int status = -1;
  std::string out, err;
};

// Starts the tool in cwd with stdout/stderr to files under tmp; stdin from stdin_path ("" =
// /dev/null). Returns the pid.
pid_t Start(const std::vector<std::string>& args, const std::string& cwd, const TempDir& tmp,
            const std::string& stdin_path = "") {
  // A cross build's test runs under qemu-user, which cannot exec the target's binaries by itself:
  // the cross file's wrapper (meson.build) comes first, its words separated by tabs.
  std::vector<std::string> argv_s;
  std::stringstream wrapper(Env("AWF_SHIM_TEST_WRAPPER"));
  for (std::string word; std::getline(wrapper, word, '\t');) {
    if (!word.empty()) argv_s.push_back(word);
  }
  argv_s.push_back(Bin());
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string out = tmp / "stdout", err = tmp / "stderr";
  pid_t pid = fork();
  if (pid == 0) {
    int in = open(stdin_path.empty() ? "/dev/null" : stdin_path.c_str(), O_RDONLY);
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || o < 0 || e < 0 || chdir(cwd.c_str()) != 0) _exit(127);
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

Result Wait(pid_t pid, const TempDir& tmp) {
  Result r;
  int st = 0;
  waitpid(pid, &st, 0);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = ReadFile(tmp / "stdout");
  r.err = ReadFile(tmp / "stderr");
  return r;
}

Result RunTool(const std::vector<std::string>& args, const std::string& cwd = DataDir(),
           const std::string& stdin_path = "") {
  TempDir tmp;
  return Wait(Start(args, cwd, tmp, stdin_path), tmp);
}

struct GoldenCase {
  std::string name;  // golden file name
  std::vector<std::string> args;
};

void PrintTo(const GoldenCase& c, std::ostream* os) {
  *os << c.name << ":";
  for (const std::string& a : c.args) *os << " " << a;
}

// cases.txt: "GOLDEN COMMAND [ARG...]" per line; '#' comments and blank lines aside.
std::vector<GoldenCase> Cases() {
  std::vector<GoldenCase> cases;
  std::istringstream lines(ReadFile(Dir() + "/cases.txt"));
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    GoldenCase c;
    if (!(words >> c.name) || c.name[0] == '#') continue;
    for (std::string w; words >> w;) c.args.push_back(w);
    cases.push_back(c);
  }
  return cases;
}

std::string StderrGolden(const std::string& name) { return name.substr(0, name.rfind('.')) + ".stderr"; }

// What the goldens of a case hold: the tool's stdout (for har, the HAR it writes with -o), and
// "exit status N" and stderr when it fails or writes to stderr ("" otherwise).
struct CaseOutput {
  std::string out, err;
  std::string har_stdout;  // for har, what it wrote to stdout besides the file: nothing
};

CaseOutput RunCase(const GoldenCase& c) {
  TempDir tmp;
  std::vector<std::string> args = c.args;
  const bool har = args[0] == "har";
  if (har) {
    args.push_back("-o");
    args.push_back(tmp / "out.har");
  }
  Result r = RunTool(args);
  CaseOutput o;
  o.out = har ? ReadFile(tmp / "out.har") : r.out;
  if (har) o.har_stdout = r.out;
  if (r.status != 0 || !r.err.empty()) o.err = "exit status " + std::to_string(r.status) + "\n" + r.err;
  return o;
}

class Golden : public testing::TestWithParam<GoldenCase> {};

TEST_P(Golden, MatchesStoredOutput) {
  const GoldenCase& c = GetParam();
  ASSERT_FALSE(c.args.empty()) << "cases.txt: " << c.name << " has no command";
  CaseOutput o = RunCase(c);
  EXPECT_EQ(o.har_stdout, "");
  const std::string path = GoldenDir() + "/" + c.name, err_path = GoldenDir() + "/" + StderrGolden(c.name);
  bool exists = false;
  std::string expected = ReadFile(path, &exists);
  ASSERT_TRUE(exists) << path << " missing: scripts/update-goldens writes it";
  EXPECT_EQ(o.out, expected) << "differs from " << path << " (after an intended change: scripts/update-goldens)";
  bool err_exists = false;
  std::string expected_err = ReadFile(err_path, &err_exists);
  EXPECT_EQ(o.err, err_exists ? expected_err : std::string()) << "exit status / stderr differ from " << err_path;
}

INSTANTIATE_TEST_SUITE_P(
    TraceTool, Golden, testing::ValuesIn(Cases()),
    [](const testing::TestParamInfo<GoldenCase>& info) {
      std::string n = info.param.name;
      for (char& c : n) {
        if (!isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return n;
    });

// An unreadable cases.txt would make the golden test pass by running nothing; and a file in
// golden/ that no case writes is checked by nobody.
TEST(TraceTool, EveryGoldenFileIsACasesOutput) {
  std::vector<GoldenCase> cases = Cases();
  ASSERT_FALSE(cases.empty()) << "no cases in " << Dir() << "/cases.txt";
  std::set<std::string> written;
  for (const GoldenCase& c : cases) {
    written.insert(c.name);
    written.insert(StderrGolden(c.name));
  }
  DIR* d = opendir(GoldenDir().c_str());
  ASSERT_NE(d, nullptr) << GoldenDir();
  while (const dirent* f = readdir(d)) {
    if (f->d_name[0] != '.') {
      EXPECT_TRUE(written.count(f->d_name)) << "golden/" << f->d_name << " is no case's output";
    }
  }
  closedir(d);
}

// ---- malformed input and exit codes (beyond the goldens) ---------------------------------------

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

// ---- HAR structure -------------------------------------------------------------------------------

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

// ---- --follow ------------------------------------------------------------------------------------

// A --follow run: stopped with SIGINT by Stop(); killed if a failed ASSERT returns first.
class Follower {
 public:
  Follower(const std::vector<std::string>& args, const TempDir& out) : out_(out), pid_(Start(args, DataDir(), out)) {}
  ~Follower() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Result Stop() {
    kill(pid_, SIGINT);
    Result r = Wait(pid_, out_);
    pid_ = -1;
    return r;
  }

 private:
  const TempDir& out_;
  pid_t pid_;
};

bool WaitFor(const std::string& path, const std::string& needle, int ms = 5000) {
  for (int waited = 0; waited < ms; waited += 50) {
    if (ReadFile(path).find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST(TraceTool, FollowReadsAGrowingFileUntilSigint) {
  TempDir tmp;
  std::string lines = ReadFile(DataDir() + "/denial.jsonl");
  std::vector<std::string> v;
  for (size_t p = 0; p < lines.size();) {
    size_t nl = lines.find('\n', p);
    v.push_back(lines.substr(p, nl + 1 - p));
    p = nl + 1;
  }
  ASSERT_EQ(v.size(), 16u);
  const std::string trace = tmp / "t.jsonl";
  WriteFile(trace, v[0] + v[1]);
  TempDir out;
  Follower follower({"timeline", "--follow", trace}, out);
  ASSERT_TRUE(WaitFor(out / "stdout", "dns     api.contoso-aw.ghe.com"));
  {
    std::ofstream f(trace, std::ios::app);
    f << v[2];
    f << v[3].substr(0, 40);  // half a line: not an error while following
  }
  ASSERT_TRUE(WaitFor(out / "stdout", "connect fd=5 198.19.152.234:443"));
  {
    std::ofstream f(trace, std::ios::app);
    f << v[3].substr(40);
    for (size_t i = 4; i < v.size(); ++i) f << v[i];
  }
  ASSERT_TRUE(WaitFor(out / "stdout", "python3[3650/3650]     close"));
  Result r = follower.Stop();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out, RunTool({"timeline", "denial.jsonl"}).out);
}

TEST(TraceTool, FollowSummaryIsPrintedAgainWhenTheFileGrows) {
  TempDir tmp;
  const std::string trace = tmp / "t.jsonl";
  std::string success = ReadFile(DataDir() + "/success.jsonl");
  WriteFile(trace, success);
  TempDir out;
  Follower follower({"summary", "--follow", trace}, out);
  ASSERT_TRUE(WaitFor(out / "stdout", "1 host tunnelled\n"));
  {
    std::ofstream f(trace, std::ios::app);
    f << ReadFile(DataDir() + "/denial.jsonl");
    f << "{\"ts\":\"2026-11-28T19:00:56.0Z\",\"pid\":1,";  // cut short: reported at the end
  }
  ASSERT_TRUE(WaitFor(out / "stdout", "--- updated ---\n1 host tunnelled, 1 refused by the proxy"));
  Result r = follower.Stop();
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("t.jsonl:35: truncated last line"), std::string::npos) << r.err;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> v;
  for (size_t p = 0; p < text.size();) {
    size_t nl = text.find('\n', p);
    v.push_back(text.substr(p, nl + 1 - p));
    p = nl + 1;
  }
  return v;
}

std::string Joined(const std::vector<std::string>& v, size_t from, size_t to) {
  std::string s;
  for (size_t i = from; i < to; ++i) s += v[i];
  return s;
}

// The file is truncated and at once written again, longer than what was read (a copytruncate
// while the writers go on): the tool must not go on from its old offset, mid-line.
TEST(TraceTool, FollowStartsOverWhenTheFileIsTruncated) {
  TempDir tmp;
  const std::vector<std::string> denial = Lines(ReadFile(DataDir() + "/denial.jsonl"));
  const std::string success = ReadFile(DataDir() + "/success.jsonl");
  const std::string trace = tmp / "t.jsonl";
  WriteFile(trace, Joined(denial, 0, 10) + denial[10].substr(0, 40));  // the last line half written
  TempDir out;
  Follower follower({"timeline", "--follow", trace}, out);
  ASSERT_TRUE(WaitFor(out / "stdout", "curl[3647/3647]        connect"));
  ASSERT_GT(success.size(), ReadFile(trace).size());
  WriteFile(trace, success);  // O_TRUNC, then the new lines: one step between two polls
  ASSERT_TRUE(WaitFor(out / "stdout", "curl[3639/3639]        close"));
  WriteFile(trace, Joined(denial, 14, 16));  // and now shorter than what was read
  ASSERT_TRUE(WaitFor(out / "stdout", "python3[3650/3650]     close"));
  Result r = follower.Stop();
  WriteFile(tmp / "before.jsonl", Joined(denial, 0, 10));
  WriteFile(tmp / "after.jsonl", Joined(denial, 14, 16));
  EXPECT_EQ(r.out, RunTool({"timeline", tmp / "before.jsonl"}).out + RunTool({"timeline", "success.jsonl"}).out +
                       RunTool({"timeline", tmp / "after.jsonl"}).out);
  const std::string again = trace + ": the file was truncated: reading it again from the start\n";
  EXPECT_EQ(r.err, again + again);
  EXPECT_EQ(r.status, 0);
}

// logrotate without copytruncate: the file is renamed away (its writers still append to it) and a
// new one is created at the path. The tool reads the old one to its end, then the new one.
TEST(TraceTool, FollowFinishesARotatedFileThenReadsTheNewOne) {
  TempDir tmp;
  const std::vector<std::string> denial = Lines(ReadFile(DataDir() + "/denial.jsonl"));
  const std::string trace = tmp / "t.jsonl";
  WriteFile(trace, Joined(denial, 0, 5));
  TempDir out;
  Follower follower({"timeline", "--follow", trace}, out);
  ASSERT_TRUE(WaitFor(out / "stdout", "curl[3643/3643]        connect"));
  int writer = open(trace.c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(writer, 0);
  ASSERT_EQ(rename(trace.c_str(), (trace + ".1").c_str()), 0);
  const std::string more = Joined(denial, 5, 10) + denial[10].substr(0, 40);  // ends cut short
  ASSERT_EQ(write(writer, more.data(), more.size()), static_cast<ssize_t>(more.size()));
  close(writer);
  WriteFile(trace, ReadFile(DataDir() + "/success.jsonl"));
  ASSERT_TRUE(WaitFor(out / "stdout", "curl[3639/3639]        close"));
  Result r = follower.Stop();
  WriteFile(tmp / "old.jsonl", Joined(denial, 0, 10));
  EXPECT_EQ(r.out, RunTool({"timeline", tmp / "old.jsonl"}).out + RunTool({"timeline", "success.jsonl"}).out);
  EXPECT_EQ(r.err, trace + ":11: truncated last line (no newline at the end of the file, 40 bytes): skipped\n" +
                       trace + ": replaced by a new file (rotated?): read the old one to its end, reading the new one "
                               "from the start\n" +
                       trace + ": 1 of 29 lines skipped: 1 unreadable\n");
  EXPECT_EQ(r.status, 1);  // the cut line
}

// --write-goldens DIR: runs every case as the golden test does and writes into DIR what the test
// compares (scripts/update-goldens). The only way to write goldens: no environment variable can
// turn a test run into an update that passes.
int WriteGoldens(const std::string& dir) {
  std::vector<GoldenCase> cases = Cases();
  if (cases.empty()) {
    fprintf(stderr, "trace_tool_test: no cases in %s/cases.txt\n", Dir().c_str());
    return 1;
  }
  for (const GoldenCase& c : cases) {
    if (c.args.empty()) {
      fprintf(stderr, "trace_tool_test: cases.txt: %s has no command\n", c.name.c_str());
      return 1;
    }
    CaseOutput o = RunCase(c);
    const std::string path = dir + "/" + c.name, err_path = dir + "/" + StderrGolden(c.name);
    const bool written = WriteFile(path, o.out) &&
                         (o.err.empty() ? unlink(err_path.c_str()) == 0 || errno == ENOENT : WriteFile(err_path, o.err));
    if (!written) {
      fprintf(stderr, "trace_tool_test: cannot write %s or %s: %s\n", path.c_str(), err_path.c_str(), strerror(errno));
      return 1;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);  // takes out gtest's own flags
  if (argc == 3 && std::string(argv[1]) == "--write-goldens") return WriteGoldens(argv[2]);
  if (argc != 1) {
    fprintf(stderr, "usage: %s [gtest flags] | --write-goldens DIR\n", argv[0]);
    return 2;
  }
  return RUN_ALL_TESTS();
}
