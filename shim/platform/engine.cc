// The engine's process-wide state: made once by the attach, never freed; and the hand-over of a
// handshake between the application's wait and the pump.
#include "engine.h"

namespace awfshim {
namespace {

Engine* g_engine;

}  // namespace

Engine& NewEngine(const awf_functions& real) {
  g_engine = new Engine(real);
  return *g_engine;
}

bool EngineAttached() { return g_engine != nullptr; }

Engine& engine() { return *g_engine; }

Wait WaitForHandshake(Conn& c, std::unique_lock<std::mutex>& lock, int64_t own_deadline_us, const sigset_t* mask) {
  Wait wait = g_engine->tunnels.AdvanceUntilSettled(c, lock, own_deadline_us, mask);
  if (wait == Wait::kSettled && c.watched) g_engine->pump.Unwatch(c);
  if ((wait == Wait::kInterrupted || wait == Wait::kTimedOut) && !c.watched) g_engine->pump.Watch(c);
  return wait;
}

constinit thread_local bool tl_in_shim __attribute__((tls_model("initial-exec"))) = false;

}  // namespace awfshim
