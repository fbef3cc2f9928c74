// awf-shim-trace --follow: a growing file read until SIGINT, a summary printed again as the file
// grows, and the file truncated (copytruncate) or rotated away under the tool.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tool_run.h"

namespace trace_tool_test {
namespace {

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
  const std::vector<std::string> v = Lines(ReadFile(DataDir() + "/denial.jsonl"));
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

}  // namespace
}  // namespace trace_tool_test
