#include "awfshim/trace.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
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

namespace {

int64_t NowMicros() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000 + ts.tv_nsec / 1000;
}

// Opens `path` for appending without following a symbolic link in any component (O_NOFOLLOW
// alone covers only the last one): each directory is opened in turn with O_NOFOLLOW.
// O_NONBLOCK: a FIFO at the path must not block the open (it is refused below anyway).
int OpenNoFollow(const std::string& path, std::string* why) {
  int dir = path.front() == '/' ? open("/", O_PATH | O_DIRECTORY | O_CLOEXEC) : AT_FDCWD;
  size_t begin = path.find_first_not_of('/');
  while (begin != std::string::npos) {
    size_t end = path.find('/', begin);
    std::string part = path.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    size_t next = end == std::string::npos ? std::string::npos : path.find_first_not_of('/', end);
    int fd;
    if (next == std::string::npos && end == std::string::npos) {
      // O_RDWR: a line cut short by a full disk is read back before it is taken back (TakeBack).
      fd = openat(dir, part.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY,
                  0600);
    } else {
      fd = openat(dir, part.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    }
    int err = errno;
    if (dir != AT_FDCWD) close(dir);
    if (fd < 0) {
      *why = absl::StrCat(std::strerror(err), err == ELOOP || err == ENOTDIR ? absl::StrCat(" ('", part,
                                                   "' is a symbolic link or not a directory: refused)")
                                                                            : "");
      return -1;
    }
    if (next == std::string::npos && end == std::string::npos) return fd;
    dir = fd;
    begin = next;
  }
  if (dir != AT_FDCWD) close(dir);
  *why = "not a file name";
  return -1;
}

}  // namespace

Status Trace::Open(absl::string_view spec, absl::string_view exe, const awf_functions* real) {
  real_ = real;
  exe_ = std::string(exe);
  spec_ = std::string(spec);
  if (spec.empty()) return OkStatus();
  if (spec == "stderr") {
    fd_ = 2;
    struct stat st;
    regular_ = fstat(2, &st) == 0 && S_ISREG(st.st_mode);
    return OkStatus();
  }
  std::string path = absl::StrReplaceAll(spec, {{"%p", absl::StrCat(getpid())}});
  std::string why;
  int fd = OpenNoFollow(path, &why);
  struct stat st;
  if (fd >= 0 && fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
    why = "not a regular file (a FIFO or device would block or kill the application)";
    close(fd);
    fd = -1;
  } else if (fd >= 0 && (st.st_mode & 077) && (st.st_uid != geteuid() || fchmod(fd, 0600) != 0)) {
    why = "readable by others, and its mode cannot be made 0600";
    close(fd);
    fd = -1;
  }
  if (fd >= 0 && fd < 3) {  // stdin/stdout/stderr were closed at start: keep the trace off them
    int moved = real_->fcntl(fd, F_DUPFD_CLOEXEC, reinterpret_cast<void*>(intptr_t{3}));
    close(fd);
    fd = moved;
    if (fd < 0) why = std::strerror(errno);
  }
  if (fd < 0) return FailedPreconditionError(absl::StrCat("AWF_SHIM_TRACE: cannot open '", path, "': ", why));
  fd_ = fd;
  return OkStatus();
}

void Trace::ReopenInChild() {
  if (fd_ < 0 || fd_ == 2 || spec_.find("%p") == std::string::npos) return;
  int old = fd_;
  fd_ = -1;
  // The child's own file takes the parent's fd number, which stays marked as the shim's. If it
  // cannot be opened the child traces nothing (the number stays open, close-on-exec, unused).
  std::string spec = spec_, exe = exe_;  // Open() assigns both: hand it copies, not views of them
  if (Open(spec, exe, real_).ok() && fd_ != old) {
    int child = fd_;
    fd_ = real_->dup3(child, old, O_CLOEXEC) == old ? old : -1;
    real_->close(child);
  }
  dropped_ = 0;
  stalled_ = cut_ = gone_ = false;
}

JsonWriter Trace::Event(absl::string_view ev) const {
  JsonWriter w;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  w.BeginObject()
      .Field("ts", FormatUtcMicros(now.tv_sec, now.tv_nsec / 1000))
      .Field("pid", static_cast<int64_t>(getpid()))
      .Field("tid", static_cast<int64_t>(gettid()))
      .Field("exe", exe_)
      .Field("ev", ev);
  return w;
}

// Waits until the fd can take bytes, at most until `deadline_us`.
bool Trace::WaitWritable(int64_t deadline_us) const {
  for (;;) {
    int64_t left_us = deadline_us - NowMicros();
    if (left_us <= 0) return false;
    struct pollfd p = {fd_, POLLOUT, 0};
    int n = poll(&p, 1, static_cast<int>((left_us + 999) / 1000));
    if (n > 0) return true;  // writable, or an error the next write reports
    if (n < 0 && errno != EINTR) return false;
  }
}

// A write lock on the whole sink (per process: POSIX record locks exclude other processes, which
// share the pipe's open file description, where flock would not), within kStallBoundMs.
bool Trace::LockSink() const {
  struct flock l = {};
  l.l_type = F_WRLCK;
  l.l_whence = SEEK_SET;
  int64_t deadline = NowMicros() + int64_t{kStallBoundMs} * 1000;
  while (real_->fcntl(fd_, F_SETLK, &l) != 0) {
    if ((errno != EAGAIN && errno != EACCES && errno != EINTR) || NowMicros() >= deadline) {
      // A sink that takes no locks (some ttys, sockets): write as is rather than drop.
      return errno != EAGAIN && errno != EACCES && errno != EINTR;
    }
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, nullptr);
  }
  return true;
}

void Trace::UnlockSink() const {
  struct flock l = {};
  l.l_type = F_UNLCK;
  l.l_whence = SEEK_SET;
  real_->fcntl(fd_, F_SETLK, &l);
}

// A file that filled up mid-line: if the file still ends with the `n` bytes just written (no
// other writer got in after them), they are cut off again, so the file holds only whole lines.
bool Trace::TakeBack(const char* written, size_t n) const {
  struct stat st;
  if (fstat(fd_, &st) != 0 || static_cast<uint64_t>(st.st_size) < n) return false;
  std::string tail(n, '\0');
  off_t at = st.st_size - static_cast<off_t>(n);
  return pread(fd_, tail.data(), n, at) == static_cast<ssize_t>(n) && tail.compare(0, n, written, n) == 0 &&
         ftruncate(fd_, at) == 0;
}

// Writes all of `bytes`, bounded by kStallBoundMs; false (errno set) if it could not. A pipe
// whose reader has gone raises no SIGPIPE: the signal is blocked around the write and a
// SIGPIPE it caused is taken back.
bool Trace::WriteAll(const std::string& bytes) const {
  sigset_t pipe_only, old;
  bool mask = !regular_;
  if (mask) {
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  }
  sigset_t pending;
  bool pipe_was_pending = mask && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
  int64_t deadline = NowMicros() + int64_t{kStallBoundMs} * 1000;
  size_t done = 0;
  int err = 0;
  while (done < bytes.size()) {
    ssize_t n = real_->write(fd_, bytes.data() + done, bytes.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN && !stalled_.load() && WaitWritable(deadline)) {
      continue;
    } else {
      err = n < 0 ? errno : EIO;
      break;
    }
  }
  if (mask) {
    if (err == EPIPE && !pipe_was_pending) {
      struct timespec zero = {0, 0};
      sigtimedwait(&pipe_only, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  if (done > 0 && done < bytes.size() && !(regular_ && TakeBack(bytes.data(), done))) {
    cut_ = true;  // a line cut short stays: the next write ends it first, so nothing is glued to it
  }
  if (err) errno = err;
  return err == 0;
}

void Trace::Emit(JsonWriter& event) const {
  if (fd_ < 0) return;
  event.EndObject();
  std::string& line = event.mutable_str();
  line.push_back('\n');
  int saved = errno;
  if (gone_.load()) {
    dropped_.fetch_add(1);
    errno = saved;
    return;
  }
  // A line longer than PIPE_BUF is not written to a pipe in one piece, and a short line written
  // meanwhile lands inside it: every writer to a pipe takes turns, the threads of this process by
  // a mutex, processes by a record lock on the pipe.
  std::unique_lock<std::mutex> lock(pipe_mu_, std::defer_lock);
  bool take_turns = !regular_;
  if (take_turns) {
    lock.lock();
    if (!LockSink()) {
      dropped_.fetch_add(1);
      drop_errno_ = ETIMEDOUT;
      errno = saved;
      return;
    }
  }
  std::string bytes;
  if (cut_.exchange(false)) bytes.push_back('\n');
  uint64_t dropped = dropped_.exchange(0);
  if (dropped) bytes += GapLine(dropped);
  bytes += line;
  bool written = WriteAll(bytes);
  if (take_turns) UnlockSink();
  if (written) {
    stalled_ = false;
  } else {
    dropped_.fetch_add(1 + dropped);
    drop_errno_ = errno;
    stalled_ = errno == EAGAIN;  // until the reader catches up, later events do not wait
    if (errno == EPIPE) gone_ = true;
  }
  errno = saved;
}

std::string Trace::GapLine(uint64_t dropped) const {
  JsonWriter gap = Event("trace_dropped");
  gap.Field("dropped", static_cast<int64_t>(dropped)).Field("reason", std::strerror(drop_errno_.load()));
  gap.EndObject();
  std::string line = std::move(gap.mutable_str());
  line.push_back('\n');
  return line;
}

void Trace::ReportDropsAtExit() {
  uint64_t lost = dropped_.exchange(0);
  if (fd_ < 0 || lost == 0) return;
  stalled_ = false;
  std::string bytes = cut_.exchange(false) ? "\n" : "";
  bytes += GapLine(lost);
  std::unique_lock<std::mutex> lock(pipe_mu_, std::defer_lock);
  bool written = false;
  if (!gone_.load() && (regular_ || (lock.lock(), LockSink()))) {
    written = WriteAll(bytes);
    if (!regular_) UnlockSink();
  }
  if (!written && fd_ != 2) {  // no room in the trace for it: say it where a person sees it
    std::string line = absl::StrCat("awf-shim: the trace lost ", lost, " events (", std::strerror(drop_errno_.load()),
                                    ")\n");
    (void)!real_->write(2, line.data(), line.size());
  }
}

}  // namespace awfshim
