// The engine's process-wide state: made once by the attach, never freed.
#include "engine.h"

namespace awfshim {
namespace {

Engine* g_engine;

}  // namespace

Engine& NewEngine() {
  g_engine = new Engine;
  return *g_engine;
}

bool EngineAttached() { return g_engine != nullptr; }

Engine& engine() { return *g_engine; }

thread_local bool tl_in_shim __attribute__((tls_model("initial-exec"))) = false;

void RaiseMaxTrackedFd(int fd) {
  int max = engine().max_tracked_fd.load();
  while (fd > max && !engine().max_tracked_fd.compare_exchange_weak(max, fd)) {
  }
}

bool IsOwnedFd(int fd) { return engine().fds.Get(fd) == FdTable::kOwned; }

void MarkOwnedFd(int fd) {
  engine().fds.Set(fd, FdTable::kOwned);
  RaiseMaxTrackedFd(fd);
}

void UnmarkOwnedFd(int fd) { engine().fds.Set(fd, 0); }

}  // namespace awfshim
