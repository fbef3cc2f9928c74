// The trace sink: one JSON object per line, each written with a single write() to an O_APPEND
// file (or stderr), so processes and threads can share one file without tearing lines.
//
// What it guarantees (README, "Trace"): it never blocks the application for more than
// kStallBound per event (a slow or stuck reader of a pipe), never raises SIGPIPE, and never loses
// an event without saying so: what it had to drop is counted and reported by a `trace_dropped`
// event in front of the next event that gets through, and at exit.
#pragma once

#include <atomic>
#include <mutex>
#include <string>

#include "absl/strings/string_view.h"
#include <string_view>

#include "awfshim/status.h"
#include "awfshim/json_writer.h"

struct awf_functions;

namespace awfshim {

class Trace {
 public:
  // `spec`: "" (off), "stderr", or a path in which %p becomes the pid. The file is created
  // 0600 (an existing one of ours is made 0600), must be a regular file, and is reached through
  // no symbolic link, in any component. Its fd is never 0, 1 or 2 (a process that started with
  // stdout closed keeps its output out of the trace). I/O goes through `real`, never a hook.
  Status Open(absl::string_view spec, absl::string_view exe, const awf_functions* real);
  // fork(): no other thread is inside a write to a pipe while the process forks.
  void LockForFork() { pipe_mu_.lock(); }
  void UnlockAfterFork() { pipe_mu_.unlock(); }
  // A fork child: with %p in the spec, continue in a file of the child's own.
  void ReopenInChild();
  // At exit: report what was dropped and not reported yet.
  void ReportDropsAtExit();
  bool on() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // Whether `fd` is the trace's own file (kept open when the application closes "all" fds).
  bool owns(int fd) const { return fd >= 0 && fd == fd_ && fd_ != 2; }
  // The application moved another file onto our fd number: continue on `new_fd`.
  void Moved(int new_fd) { fd_ = new_fd; }

  // An event with the common fields (ts, pid, tid, exe, ev) written; add fields, then Emit.
  JsonWriter Event(absl::string_view ev) const;
  void Emit(JsonWriter& event) const;

  // How long one event may wait for a pipe's reader before it is dropped (and, until the pipe
  // drains, the events after it without waiting).
  static constexpr int kStallBoundMs = 1000;

 private:
  bool WriteAll(const std::string& bytes) const;
  bool LockSink() const;
  bool TakeBack(const char* written, size_t n) const;
  std::string GapLine(uint64_t dropped) const;
  void UnlockSink() const;
  bool WaitWritable(int64_t deadline_us) const;

  int fd_ = -1;
  bool regular_ = true;  // a regular file: O_APPEND writes are atomic whatever their size
  std::string spec_, exe_;
  const awf_functions* real_ = nullptr;
  // Serialises this process's writes to a pipe (a line past PIPE_BUF is not atomic there).
  mutable std::mutex pipe_mu_;
  mutable std::atomic<uint64_t> dropped_{0};
  mutable std::atomic<bool> stalled_{false}, cut_{false}, gone_{false};
  mutable std::atomic<int> drop_errno_{0};  // why the last event was dropped
};

// "2026-11-28T17:38:44.123456Z" for a CLOCK_REALTIME reading.
std::string FormatUtcMicros(long seconds, long micros);

}  // namespace awfshim
