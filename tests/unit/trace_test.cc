#include "awfshim/trace.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libc_functions.h"
#include "simdjson.h"

namespace awfshim {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/awfshim-trace-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf " + path_).c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(Trace, EventsCarryTheCommonFields) {
  TempDir dir;
  std::string path = dir.path() + "/t.jsonl";
  Trace t;
  ASSERT_TRUE(t.Open(path, "curl", LibcFunctions()).ok());
  JsonWriter w = t.Event("dns");
  w.Field("host", "api.github.com");
  t.Emit(w);
  auto lines = Lines(path);
  ASSERT_EQ(lines.size(), 1u);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_FALSE(parser.parse(lines[0]).get(doc));
  std::string_view ts, exe, ev;
  int64_t pid = 0, tid = 0;
  ASSERT_FALSE(doc["ts"].get(ts));
  ASSERT_FALSE(doc["exe"].get(exe));
  ASSERT_FALSE(doc["ev"].get(ev));
  ASSERT_FALSE(doc["pid"].get(pid));
  ASSERT_FALSE(doc["tid"].get(tid));
  EXPECT_EQ(ts.size(), 27u);
  EXPECT_EQ(ts.back(), 'Z');
  EXPECT_EQ(exe, "curl");
  EXPECT_EQ(ev, "dns");
  EXPECT_EQ(pid, getpid());
  EXPECT_GT(tid, 0);
}

TEST(Trace, TimestampIsUtcWithMicroseconds) {
  EXPECT_EQ(FormatUtcMicros(0, 0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(FormatUtcMicros(1795887524, 123456), "2026-11-28T17:38:44.123456Z");
  EXPECT_EQ(FormatUtcMicros(1795887524, 7), "2026-11-28T17:38:44.000007Z");  // the same second, cached
  EXPECT_EQ(FormatUtcMicros(1795887525, 999999), "2026-11-28T17:38:45.999999Z");
}

TEST(Trace, FileIsCreated0600AndPercentPBecomesThePid) {
  TempDir dir;
  Trace t;
  ASSERT_TRUE(t.Open(dir.path() + "/trace-%p.jsonl", "x", LibcFunctions()).ok());
  std::string expected = absl::StrCat(dir.path(), "/trace-", getpid(), ".jsonl");
  struct stat st;
  ASSERT_EQ(stat(expected.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(Trace, RefusesToFollowASymlink) {
  TempDir dir;
  std::string target = dir.path() + "/target";
  std::string link = dir.path() + "/link";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  Trace t;
  Status s = t.Open(link, "x", LibcFunctions());
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("symbolic link"), std::string::npos) << s.message();
  EXPECT_FALSE(t.on());
  struct stat st;
  EXPECT_NE(stat(target.c_str(), &st), 0) << "the link's target must not have been created";
}

TEST(Trace, UnwritableLocationIsAClearError) {
  Trace t;
  Status s = t.Open("/nonexistent-dir/x.jsonl", "x", LibcFunctions());
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("AWF_SHIM_TRACE: cannot open '/nonexistent-dir/x.jsonl'"), std::string::npos);
}

// 8 processes x 4 threads x 10,000 events into one file: every line is valid JSON, and every
// (pid, tid, seq) arrives exactly once.
TEST(Trace, SharedFileNeverTearsOrLosesLines) {
  constexpr int kProcesses = 8, kThreads = 4, kEvents = 10000;
  TempDir dir;
  std::string path = dir.path() + "/shared.jsonl";
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; p++) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      Trace t;
      if (!t.Open(path, "writer", LibcFunctions()).ok()) _exit(2);
      std::vector<std::thread> threads;
      for (int i = 0; i < kThreads; i++) {
        threads.emplace_back([&t, i] {
          for (int n = 0; n < kEvents; n++) {
            JsonWriter w = t.Event("http");
            // Lines of varied length, some longer than PIPE_BUF.
            w.Field("thread", i).Field("seq", n).Field("pad", std::string(static_cast<size_t>(n % 5000), 'x'));
            t.Emit(w);
          }
        });
      }
      for (auto& th : threads) th.join();
      _exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t c : children) {
    int status = 0;
    ASSERT_EQ(waitpid(c, &status, 0), c);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto lines = Lines(path);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kProcesses * kThreads * kEvents));
  simdjson::dom::parser parser;
  std::map<std::pair<int64_t, int64_t>, std::set<int64_t>> seen;
  for (const std::string& line : lines) {
    simdjson::dom::element doc;
    ASSERT_FALSE(parser.parse(line).get(doc)) << "torn line: " << line.substr(0, 200);
    int64_t pid, thread, seq;
    ASSERT_FALSE(doc["pid"].get(pid));
    ASSERT_FALSE(doc["thread"].get(thread));
    ASSERT_FALSE(doc["seq"].get(seq));
    seen[{pid, thread}].insert(seq);
  }
  ASSERT_EQ(seen.size(), static_cast<size_t>(kProcesses * kThreads));
  for (const auto& [who, seqs] : seen) EXPECT_EQ(seqs.size(), static_cast<size_t>(kEvents));
}

}  // namespace
}  // namespace awfshim
