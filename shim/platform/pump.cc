#include "pump.h"

#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine.h"
#include "tunnel.h"

namespace awfshim {
namespace {

struct Watched {
  Conn* conn;
  uint32_t generation;
  int fd;
};

std::mutex g_mu;  // guards everything below; taken after a Conn's mu, never before
std::atomic<int> g_epoll{-1};  // an owned fd; moves if the application dup2()s onto it
bool g_running = false;
bool g_said_why_not = false;  // the trace has the `error` event for a pump that cannot start
// In a child of fork(), the pump starts only when a tunnel needs it: its parent may have had
// threads, and a thread the child did not need is best not made there (ThreadSanitizer, for one,
// refuses to start any).
bool g_forked = false;
// Never freed: the pump thread may still read it while exit handlers run.
std::vector<Watched>& g_watched = *new std::vector<Watched>;

uint64_t Tag(const Conn& c) { return (uint64_t{c.generation} << 32) | static_cast<uint32_t>(c.fd); }

uint32_t EpollEvents(const Conn& c) {
  short want = WantedEvents(c);
  uint32_t events = EPOLLONESHOT;
  if (want & POLLIN) events |= EPOLLIN;
  if (want & POLLOUT) events |= EPOLLOUT;
  return events;
}

// Runs the step for one conn; c.mu held.
void Step(Conn& c) {
  Advance(c);
  if (Settled(c) && c.held.empty()) {
    PumpUnwatch(c);
  } else if (c.phase.load() != Phase::kFailed) {
    PumpRearm(c);
  }
  c.RefreshFast();
}

int NextTimeoutMs() {
  std::lock_guard<std::mutex> lock(g_mu);
  int64_t now = MonotonicMicros(), earliest = -1;
  for (const Watched& w : g_watched) {
    int64_t d = w.conn->deadline_us;
    if (earliest < 0 || d < earliest) earliest = d;
  }
  if (earliest < 0) return 1000;
  return static_cast<int>(std::clamp<int64_t>((earliest - now + 999) / 1000, 0, 1000));
}

void ExpireOverdue() {
  std::vector<Watched> due;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    int64_t now = MonotonicMicros();
    for (const Watched& w : g_watched) {
      if (w.conn->deadline_us <= now) due.push_back(w);
    }
  }
  for (const Watched& w : due) {
    std::lock_guard<std::mutex> lock(w.conn->mu);
    if (w.conn->generation != w.generation || !w.conn->watched) continue;
    Advance(*w.conn);  // past the deadline: fails a handshake still pending
    PumpUnwatch(*w.conn);
    w.conn->RefreshFast();
  }
}

void* Loop(void*) {
  tl_in_shim = true;
  // Named from inside: for itself, one prctl; from the creator, three syscalls on /proc in the
  // application's connect().
  pthread_setname_np(pthread_self(), "awfshim-pump");
  epoll_event events[64];
  for (;;) {
    int n = epoll_wait(g_epoll.load(), events, 64, NextTimeoutMs());
    for (int i = 0; i < n; i++) {
      int fd = static_cast<int>(events[i].data.u64 & 0xffffffff);
      uint32_t generation = static_cast<uint32_t>(events[i].data.u64 >> 32);
      Conn* c = ConnFor(fd);
      if (!c) continue;
      std::lock_guard<std::mutex> lock(c->mu);
      if (c->generation != generation || !c->watched) continue;
      Step(*c);
    }
    ExpireOverdue();
  }
  return nullptr;
}

// g_mu held. Once per process: the trace says why there is no pump and what that changes.
void SayWhyNot(const char* what, int err) {
  if (g_said_why_not || !engine().trace.on()) return;
  g_said_why_not = true;
  JsonWriter w = engine().trace.Event("error");
  w.Field("where", "pump")
      .Field("message", absl::StrCat(what, ": ", std::strerror(err)))
      .Field("effect", "non-blocking tunnels finish their handshake inside connect(), bounded by the timeout");
  engine().trace.Emit(w);
}

// g_mu held. Tried again by every tunnel that needs the pump: the limit that stopped it may lift.
bool StartLocked() {
  if (g_running) return true;
  if (g_epoll < 0) {
    g_epoll = epoll_create1(EPOLL_CLOEXEC);
    if (g_epoll < 0) {
      SayWhyNot("cannot create the pump's epoll instance", errno);
      return false;
    }
    MarkOwnedFd(g_epoll);
  }
  // The pump must never run the application's signal handlers.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t thread;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  int rc = pthread_create(&thread, &attr, Loop, nullptr);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) {
    SayWhyNot("cannot start the pump thread", rc);
    return false;
  }
  g_running = true;
  return true;
}

}  // namespace

void PumpStartAhead() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_forked) StartLocked();
}

bool PumpWatch(Conn& c) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (c.watched) return true;
  if (!StartLocked()) return false;
  epoll_event ev{};
  ev.events = EpollEvents(c);
  ev.data.u64 = Tag(c);
  if (epoll_ctl(g_epoll, EPOLL_CTL_ADD, c.fd, &ev) != 0) return false;
  c.watched = true;
  g_watched.push_back({&c, c.generation, c.fd});
  return true;
}

void PumpRearm(Conn& c) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!c.watched) return;
  epoll_event ev{};
  ev.events = EpollEvents(c);
  ev.data.u64 = Tag(c);
  epoll_ctl(g_epoll, EPOLL_CTL_MOD, c.fd, &ev);
}

void PumpUnwatch(Conn& c) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!c.watched) return;
  c.watched = false;
  epoll_ctl(g_epoll, EPOLL_CTL_DEL, c.fd, nullptr);
  g_watched.erase(std::remove_if(g_watched.begin(), g_watched.end(), [&c](const Watched& w) { return w.conn == &c; }),
                  g_watched.end());
}

bool PumpOwnsFd(int fd) { return fd >= 0 && fd == g_epoll.load(); }
void PumpFdMoved(int fd) { g_epoll.store(fd); }

void PumpLockForFork() { g_mu.lock(); }
void PumpUnlockAfterFork() { g_mu.unlock(); }

void PumpResetInChild() {
  // The thread is gone; its epoll set belongs to the parent. Start afresh when needed.
  new (&g_mu) std::mutex;
  for (const Watched& w : g_watched) w.conn->watched = false;
  g_watched.clear();
  if (int fd = g_epoll.exchange(-1); fd >= 0) {
    UnmarkOwnedFd(fd);
    real().close(fd);
  }
  g_running = false;
  g_said_why_not = false;
  g_forked = true;
}

}  // namespace awfshim
