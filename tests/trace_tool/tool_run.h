// Running awf-shim-trace as a program in the tests: where the tool and the traces are (meson passes
// AWF_SHIM_TRACE_BIN, TRACE_TOOL_DIR and, in a cross build, AWF_SHIM_TEST_WRAPPER), scratch
// directories, and a run's exit status, stdout and stderr.
#ifndef AWFSHIM_TESTS_TRACE_TOOL_TOOL_RUN_H_
#define AWFSHIM_TESTS_TRACE_TOOL_TOOL_RUN_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace trace_tool_test {

std::string Dir();      // this directory (cases.txt, data/, golden/)
std::string DataDir();  // the traces
std::string GoldenDir();

std::string ReadFile(const std::string& path, bool* exists = nullptr);
bool WriteFile(const std::string& path, const std::string& content);

// A text's lines, each with its newline; and lines [from, to) joined again.
std::vector<std::string> Lines(const std::string& text);
std::string Joined(const std::vector<std::string>& v, size_t from, size_t to);

// A scratch directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Result {
  int status = -1;  // the exit status, or 128 + the signal that ended it
  std::string out, err;
};

// Starts the tool in cwd with stdout/stderr to files under tmp; stdin from stdin_path ("" =
// /dev/null). Returns the pid.
pid_t Start(const std::vector<std::string>& args, const std::string& cwd, const TempDir& tmp,
            const std::string& stdin_path = "");
// Waits for a Start()ed run and collects what it wrote.
Result Wait(pid_t pid, const TempDir& tmp);
// Start() and Wait(), in the traces' directory unless told otherwise.
Result RunTool(const std::vector<std::string>& args, const std::string& cwd = DataDir(),
               const std::string& stdin_path = "");

}  // namespace trace_tool_test

#endif  // AWFSHIM_TESTS_TRACE_TOOL_TOOL_RUN_H_
