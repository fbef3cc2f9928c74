// The trace sink: one JSON object per line, each written with a single write() to an O_APPEND
// file (or stderr), so processes and threads can share one file without tearing lines.
#pragma once

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
  // 0600 and never through a symbolic link. I/O goes through `real`, never through a hook.
  Status Open(absl::string_view spec, absl::string_view exe, const awf_functions* real);
  bool on() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // Whether `fd` is the trace's own file (kept open when the application closes "all" fds).
  bool owns(int fd) const { return fd >= 0 && fd == fd_ && fd_ != 2; }
  // The application moved another file onto our fd number: continue on `new_fd`.
  void Moved(int new_fd) { fd_ = new_fd; }

  // An event with the common fields (ts, pid, tid, exe, ev) written; add fields, then Emit.
  JsonWriter Event(absl::string_view ev) const;
  void Emit(JsonWriter& event) const;

 private:
  int fd_ = -1;
  std::string exe_;
  const awf_functions* real_ = nullptr;
};

// "2026-11-28T17:38:44.123456Z" for a CLOCK_REALTIME reading.
std::string FormatUtcMicros(long seconds, long micros);

}  // namespace awfshim
