#include "pump.h"

#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"
#include "shim_scope.h"

namespace awfshim {
namespace {

uint64_t Tag(const Conn& c) { return (uint64_t{c.generation} << 32) | static_cast<uint32_t>(c.fd); }

uint32_t EpollEvents(const Conn& c) {
  short want = WantedEvents(c);
  uint32_t events = EPOLLONESHOT;
  if (want & POLLIN) events |= EPOLLIN;
  if (want & POLLOUT) events |= EPOLLOUT;
  return events;
}

}  // namespace

// Runs the step for one conn; c.mu held.
void Pump::Step(Conn& c) {
  tunnels_.Advance(c);
  if (Settled(c) && c.held.empty()) {
    Unwatch(c);
  } else if (c.phase.load() != Phase::kFailed) {
    Rearm(c);
  }
  c.RefreshFast();
}

int Pump::NextTimeoutMs() {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t now = MonotonicMicros(), earliest = -1;
  for (const Watched& w : watched_) {
    int64_t d = w.conn->deadline_us;
    if (earliest < 0 || d < earliest) earliest = d;
  }
  if (earliest < 0) return 1000;
  return static_cast<int>(std::clamp<int64_t>((earliest - now + 999) / 1000, 0, 1000));
}

void Pump::ExpireOverdue() {
  std::vector<Watched> due;
  {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t now = MonotonicMicros();
    for (const Watched& w : watched_) {
      if (w.conn->deadline_us <= now) due.push_back(w);
    }
  }
  for (const Watched& w : due) {
    std::lock_guard<std::mutex> lock(w.conn->mu);
    if (w.conn->generation != w.generation || !w.conn->watched) continue;
    tunnels_.Advance(*w.conn);  // past the deadline: fails a handshake still pending
    Unwatch(*w.conn);
    w.conn->RefreshFast();
  }
}

void* Pump::Loop(void* self) {
  tl_in_shim = true;
  // Named from inside: for itself, one prctl; from the creator, three syscalls on /proc in the
  // application's connect().
  pthread_setname_np(pthread_self(), "awfshim-pump");
  static_cast<Pump*>(self)->Run();
  return nullptr;
}

void Pump::Run() {
  epoll_event events[64];
  for (;;) {
    int n = epoll_wait(epoll_.load(), events, 64, NextTimeoutMs());
    for (int i = 0; i < n; i++) {
      int fd = static_cast<int>(events[i].data.u64 & 0xffffffff);
      uint32_t generation = static_cast<uint32_t>(events[i].data.u64 >> 32);
      Conn* c = ConnAt(fds_, fd);
      if (!c) continue;
      std::lock_guard<std::mutex> lock(c->mu);
      if (c->generation != generation || !c->watched) continue;
      Step(*c);
    }
    ExpireOverdue();
  }
}

// mu_ held. Once per process: the trace says why there is no pump and what that changes.
void Pump::SayWhyNot(const char* what, int err) {
  if (said_why_not_ || !trace_.on()) return;
  said_why_not_ = true;
  JsonWriter w = trace_.Event("error");
  w.Field("where", "pump")
      .Field("message", absl::StrCat(what, ": ", std::strerror(err)))
      .Field("effect", "non-blocking tunnels finish their handshake inside connect(), bounded by the timeout");
  trace_.Emit(w);
}

// mu_ held. Tried again by every tunnel that needs the pump: the limit that stopped it may lift.
bool Pump::StartLocked() {
  if (running_) return true;
  if (epoll_ < 0) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) {
      SayWhyNot("cannot create the pump's epoll instance", errno);
      return false;
    }
    fds_.Set(epoll_, FdTable::kOwned);
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
  int rc = pthread_create(&thread, &attr, Loop, this);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) {
    SayWhyNot("cannot start the pump thread", rc);
    return false;
  }
  running_ = true;
  return true;
}

void Pump::StartAhead() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!forked_) StartLocked();
}

bool Pump::Watch(Conn& c) {
  std::lock_guard<std::mutex> lock(mu_);
  if (c.watched) return true;
  if (!StartLocked()) return false;
  epoll_event ev{};
  ev.events = EpollEvents(c);
  ev.data.u64 = Tag(c);
  if (epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev) != 0) return false;
  c.watched = true;
  watched_.push_back({&c, c.generation, c.fd});
  return true;
}

void Pump::Rearm(Conn& c) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!c.watched) return;
  epoll_event ev{};
  ev.events = EpollEvents(c);
  ev.data.u64 = Tag(c);
  epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
}

void Pump::Unwatch(Conn& c) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!c.watched) return;
  c.watched = false;
  epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
  watched_.erase(std::remove_if(watched_.begin(), watched_.end(), [&c](const Watched& w) { return w.conn == &c; }),
                 watched_.end());
}

void Pump::ResetInChild() {
  // The thread is gone; its epoll set belongs to the parent. Start afresh when needed.
  new (&mu_) std::mutex;
  for (const Watched& w : watched_) w.conn->watched = false;
  watched_.clear();
  if (int fd = epoll_.exchange(-1); fd >= 0) {
    fds_.Set(fd, 0);
    real_.close(fd);
  }
  running_ = false;
  said_why_not_ = false;
  forked_ = true;
}

}  // namespace awfshim
