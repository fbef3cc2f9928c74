#include "awfshim/trace.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "awfshim/abi.h"

namespace awfshim {

std::string FormatUtcMicros(long seconds, long micros) {
  // Events come in bursts within a second: the date and time are formatted once per second and
  // thread, the microseconds every time.
  thread_local long cached_seconds = -1;
  thread_local char cached[64];
  if (seconds != cached_seconds) {
    time_t t = seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    std::snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_seconds = seconds;
  }
  std::string out = cached;
  char digits[7] = "000000";
  for (int i = 5; i >= 0 && micros > 0; i--, micros /= 10) digits[i] = static_cast<char>('0' + micros % 10);
  out.append(digits, 6).push_back('Z');
  return out;
}

Status Trace::Open(absl::string_view spec, absl::string_view exe, const awf_functions* real) {
  real_ = real;
  exe_ = std::string(exe);
  if (spec.empty()) return OkStatus();
  if (spec == "stderr") {
    fd_ = 2;
    return OkStatus();
  }
  std::string path = absl::StrReplaceAll(spec, {{"%p", absl::StrCat(getpid())}});
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return FailedPreconditionError(
        absl::StrCat("AWF_SHIM_TRACE: cannot open '", path, "': ", std::strerror(errno),
                     errno == ELOOP ? " (a symbolic link: refused)" : ""));
  }
  fd_ = fd;
  return OkStatus();
}

JsonWriter Trace::Event(absl::string_view ev) const {
  JsonWriter w;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  w.BeginObject()
      .Field("ts", FormatUtcMicros(now.tv_sec, now.tv_nsec / 1000))
      .Field("pid", static_cast<int64_t>(getpid()))
      .Field("tid", static_cast<int64_t>(syscall(SYS_gettid)))
      .Field("exe", exe_)
      .Field("ev", ev);
  return w;
}

void Trace::Emit(JsonWriter& event) const {
  if (fd_ < 0) return;
  event.EndObject();
  std::string& line = event.mutable_str();
  line.push_back('\n');
  int saved = errno;
  ssize_t n;
  do {
    n = real_->write(fd_, line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  errno = saved;
}

}  // namespace awfshim
