// The engine's process-wide state, built once in awfshim_engine_attach and never freed (hooks
// can run during exit, after static destructors). The hooks and the tap read it; attach.cc makes
// it; the events, the tunnels and the pump are members, given their own pieces of it.
#pragma once

#include <unistd.h>

#include <string>

#include "awfshim/abi.h"
#include "awfshim/fd_table.h"
#include "awfshim/name_book.h"
#include "awfshim/settings.h"
#include "awfshim/trace.h"
#include "conn.h"
#include "events.h"
#include "pump.h"
#include "shim_scope.h"
#include "tunnel.h"

namespace awfshim {

// The attach fills in the settings, the trace and the fd table before any hook reaches the engine.
// The three parts at the end are handed the pieces they work with here, so none of them reaches
// back for the engine.
struct Engine {
  explicit Engine(const awf_functions& functions) : real(functions) {}

  const awf_functions& real;
  void* (*next_definition)(const char* name) = nullptr;  // the front's symbol search
  std::string exe;
  Settings settings;  // frozen after attach
  Trace trace;
  FdTable fds;
  NameBook book;
  ConnPool pool;
  Events events{trace, settings};
  Tunnels tunnels{real, events};
  Pump pump{real, trace, fds, tunnels};
  pid_t pid = 0;  // this process; kept by the fork handler
};

// Made by the attach, once; valid from then on.
Engine& NewEngine(const awf_functions& real);
bool EngineAttached();
Engine& engine();
inline const awf_functions& real() { return engine().real; }

// A child made by vfork() (CPython's subprocess, posix_spawn) runs in its parent's memory until
// it execs, and no fork handler tells us: every change to the engine's state would be the
// parent's. Its fd hooks forward untouched (the child's fd table is its own).
inline bool InVforkChild() { return getpid() != engine().pid; }

// c.mu held (through `lock`). A blocking call's wait for c's handshake
// (Tunnels::AdvanceUntilSettled): the pump lets go of a handshake that settled and takes over
// one the wait gave up on (kInterrupted, kTimedOut).
Wait WaitForHandshake(Conn& c, std::unique_lock<std::mutex>& lock, int64_t own_deadline_us, const sigset_t* mask);

// The Conn behind a tracked fd, or null.
inline Conn* ConnFor(int fd) { return ConnAt(engine().fds, fd); }

}  // namespace awfshim
