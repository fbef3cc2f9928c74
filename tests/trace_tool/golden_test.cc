// awf-shim-trace's golden outputs: each case of cases.txt ("GOLDEN COMMAND [ARG...]") run on the
// traces in data/ (see data/README.md), its stdout (for har, the HAR file) compared with
// golden/NAME, and with golden/STEM.stderr ("exit status N" and stderr) when the run exits non-zero
// or writes to stderr. recount.py checks the goldens' facts against the traces, independently.
//
// A test run only compares. To regenerate the goldens after an intended change, run
// scripts/update-goldens (it calls this binary with --write-goldens DIR), then review the diff.
// This file holds the binary's main(); the other tests of the tool are linked in with it.
#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tool_run.h"

namespace trace_tool_test {
namespace {

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
}  // namespace trace_tool_test

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);  // takes out gtest's own flags
  if (argc == 3 && std::string(argv[1]) == "--write-goldens") return trace_tool_test::WriteGoldens(argv[2]);
  if (argc != 1) {
    fprintf(stderr, "usage: %s [gtest flags] | --write-goldens DIR\n", argv[0]);
    return 2;
  }
  return RUN_ALL_TESTS();
}
