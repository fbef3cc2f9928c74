// The pump: one background thread, started by the first routed name lookup (StartAhead) or else
// on the first non-blocking tunnel that cannot finish its handshake at once. It moves every
// pending handshake forward as soon as its socket is ready — even when the application never
// touches the fd (a server-speaks-first client that only waits for input) — and fails the ones
// that outlive the timeout.
#pragma once

#include <atomic>
#include <mutex>
#include <vector>

#include "awfshim/abi.h"
#include "awfshim/fd_table.h"
#include "awfshim/trace.h"
#include "conn.h"
#include "tunnel.h"

namespace awfshim {

class Pump {
 public:
  // `fds` to find a conn from its fd and to mark the pump's epoll fd as the shim's own; `tunnels`
  // to move each handshake on; `trace` to say, once, why there is no pump.
  Pump(const awf_functions& real, const Trace& trace, FdTable& fds, const Tunnels& tunnels)
      : real_(real), trace_(trace), fds_(fds), tunnels_(tunnels) {}
  Pump(const Pump&) = delete;
  Pump& operator=(const Pump&) = delete;

  // A routed name was just answered: its tunnel usually follows at once, and a non-blocking one
  // needs the pump. Starting it here keeps the thread's creation (~0.1 ms of a fresh curl here)
  // out of the application's connect(), where it delays the TLS handshake. A pump that cannot
  // start is reported as Watch reports it, and tried again there. Not in a child of fork().
  void StartAhead();
  // c.mu held. Registers c until its handshake settles (or it is closed). False when there is
  // no pump (no thread or epoll instance could be made; the trace says why, once): then nothing
  // but the application's own calls on the fd moves the handshake or enforces its deadline.
  bool Watch(Conn& c);
  // c.mu held.
  void Unwatch(Conn& c);
  // c.mu held: the pending step changed (e.g. from POLLOUT to POLLIN).
  void Rearm(Conn& c);

  // The pump's epoll fd is one of the shim's own; the application moved a file onto its number.
  bool OwnsFd(int fd) const { return fd >= 0 && fd == epoll_.load(); }
  void FdMoved(int new_fd) { epoll_.store(new_fd); }

  // fork()
  void LockForFork() { mu_.lock(); }
  void UnlockAfterFork() { mu_.unlock(); }
  void ResetInChild();

 private:
  struct Watched {
    Conn* conn;
    uint32_t generation;
    int fd;
  };

  static void* Loop(void* self);
  void Run();
  void Step(Conn& c);
  int NextTimeoutMs();
  void ExpireOverdue();
  void SayWhyNot(const char* what, int err);
  bool StartLocked();

  const awf_functions& real_;
  const Trace& trace_;
  FdTable& fds_;
  const Tunnels& tunnels_;

  std::mutex mu_;  // guards everything below; taken after a Conn's mu, never before
  std::atomic<int> epoll_{-1};  // an owned fd; moves if the application dup2()s onto it
  bool running_ = false;
  bool said_why_not_ = false;  // the trace has the `error` event for a pump that cannot start
  // In a child of fork(), the pump starts only when a tunnel needs it: its parent may have had
  // threads, and a thread the child did not need is best not made there (ThreadSanitizer, for
  // one, refuses to start any).
  bool forked_ = false;
  std::vector<Watched> watched_;  // the engine is never freed: the thread may read it during exit
};

}  // namespace awfshim
