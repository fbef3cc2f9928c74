// The engine's process-wide state, built once in awfshim_engine_attach and never freed (hooks
// can run during exit, after static destructors). Every part of the engine reads it; attach.cc
// makes it.
#pragma once

#include <unistd.h>

#include <atomic>
#include <string>

#include "awfshim/abi.h"
#include "awfshim/fd_table.h"
#include "awfshim/name_book.h"
#include "awfshim/settings.h"
#include "awfshim/trace.h"
#include "conn.h"

namespace awfshim {

struct Engine {
  const awf_functions* real = nullptr;
  void* (*next_definition)(const char* name) = nullptr;  // the front's symbol search
  std::string exe;
  Settings settings;  // frozen after attach
  Trace trace;
  FdTable fds;
  NameBook book;
  ConnPool pool;
  std::atomic<int> max_tracked_fd{-1};  // bounds the scans of close_range/closefrom
  pid_t pid = 0;                         // this process; kept by the fork handler
};

// Made by the attach, once; valid from then on.
Engine& NewEngine();
bool EngineAttached();
Engine& engine();
inline const awf_functions& real() { return *engine().real; }

// A child made by vfork() (CPython's subprocess, posix_spawn) runs in its parent's memory until
// it execs, and no fork handler tells us: every change to the engine's state would be the
// parent's. Its fd hooks forward untouched (the child's fd table is its own).
inline bool InVforkChild() { return getpid() != engine().pid; }

// The shim's own calls into libc (name resolution of the proxy, forwarded lookups) set this, so
// that a hook reached from inside them forwards instead of re-entering the engine. Application
// calls nested in other application calls are not re-entry and are handled normally.
extern constinit thread_local bool tl_in_shim;  // constinit: no TLS init wrapper to import
class ShimScope {
 public:
  ShimScope() : outer_(tl_in_shim) { tl_in_shim = true; }
  ~ShimScope() { tl_in_shim = outer_; }

 private:
  bool outer_;
};

// The shim's own fds (the trace file, the pump's epoll): kept open when the application closes
// fds in bulk, and moved aside when the application dup2()s onto one.
bool IsOwnedFd(int fd);
void MarkOwnedFd(int fd);
void UnmarkOwnedFd(int fd);
// Bounds the scans of close_range/closefrom (and fork's) to the highest fd ever followed.
void RaiseMaxTrackedFd(int fd);

// The Conn behind a tracked fd, or null.
inline Conn* ConnFor(int fd) {
  uintptr_t v = engine().fds.Get(fd);
  return v > FdTable::kOwned ? reinterpret_cast<Conn*>(v) : nullptr;
}

}  // namespace awfshim
