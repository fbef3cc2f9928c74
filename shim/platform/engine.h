// The engine's process-wide state, built once in awfshim_engine_attach and never freed (hooks
// can run during exit, after static destructors).
#pragma once

#include <string>

#include "awfshim/abi.h"
#include "awfshim/fd_table.h"
#include "awfshim/settings.h"
#include "awfshim/trace.h"

namespace awfshim {

struct Engine {
  const awf_functions* real = nullptr;
  std::string exe;
  Settings settings;  // frozen after attach
  Trace trace;
  FdTable fds;
};

// Valid once the front has attached the engine.
Engine& engine();
inline const awf_functions& real() { return *engine().real; }

// Each hooked family sets its entries of the engine's table; the rest forward to `real`.
void InstallFdHooks(awf_functions& hooks);

// The shim's own fds (the trace file): kept open when the application closes fds in bulk, and
// moved aside when the application dup2()s onto one.
bool IsOwnedFd(int fd);

}  // namespace awfshim
