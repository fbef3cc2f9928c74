// Running awf-shim-trace as a program in the tests (see tool_run.h).
#include "tool_run.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace trace_tool_test {

namespace {

std::string Env(const char* name) {
  const char* v = getenv(name);
  return v ? v : "";
}

std::string Bin() { return Env("AWF_SHIM_TRACE_BIN"); }

}  // namespace

std::string Dir() { return Env("TRACE_TOOL_DIR"); }
std::string DataDir() { return Dir() + "/data"; }
std::string GoldenDir() { return Dir() + "/golden"; }

std::string ReadFile(const std::string& path, bool* exists) {
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

TempDir::TempDir() {
  char tmpl[] = "/tmp/awf-shim-trace-test-XXXXXX";
  const char* made = mkdtemp(tmpl);
  if (!made) {
    perror("trace_tool_test: mkdtemp");
    abort();
  }
  path_ = made;
}

TempDir::~TempDir() { (void)!system(("rm -rf '" + path_ + "'").c_str()); }

pid_t Start(const std::vector<std::string>& args, const std::string& cwd, const TempDir& tmp,
            const std::string& stdin_path) {
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

Result RunTool(const std::vector<std::string>& args, const std::string& cwd, const std::string& stdin_path) {
  TempDir tmp;
  return Wait(Start(args, cwd, tmp, stdin_path), tmp);
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

}  // namespace trace_tool_test
