// The CONNECT handshake on a tunnelled fd, driven from whichever thread gets there first: the
// application's own calls on the fd or the pump. Every function here expects c.mu held, unless
// it says otherwise.
#pragma once

#include <poll.h>
#include <pthread.h>
#include <signal.h>

#include <mutex>
#include <string>

#include "awfshim/abi.h"
#include "conn.h"
#include "events.h"

namespace awfshim {

// How a blocking call's wait for the handshake ended.
enum class Wait {
  kSettled,      // open with nothing held, or failed (timed out at the tunnel's deadline included)
  kInterrupted,  // a signal handler ran and the call is not restarted: the caller says EINTR
  kTimedOut,     // the socket's own timeout (SO_SNDTIMEO/SO_RCVTIMEO) passed first
  kClosed,       // the application closed the fd meanwhile: c belongs to someone else now
};

// The steps of the handshake, on the socket through the real functions, reporting each end as a
// `tunnel` event.
class Tunnels {
 public:
  Tunnels(const awf_functions& real, const Events& events) : real_(real), events_(events) {}

  // Makes as much progress as the socket allows right now, never blocking: finishes the TCP
  // connect to the proxy, sends the request, consumes exactly the reply head, flushes held
  // bytes, then carries out a shutdown the application asked for meanwhile. Fails a handshake
  // that is past its deadline.
  void Advance(Conn& c) const;

  // Blocking calls: Advance and wait until settled, bounded by the tunnel's deadline and by
  // `own_deadline_us` (the socket's own timeout as a deadline; -1: none). The wait releases c.mu
  // (held through `lock`), so the application's other threads go on with the fd, close
  // included, and runs with the signal mask `mask` (null: the thread's own): the application's
  // handlers run there. After kInterrupted and kTimedOut the handshake is still pending: a
  // kernel connect goes on after EINTR, so the caller hands it to the pump. After kClosed, c
  // must not be touched.
  Wait AdvanceUntilSettled(Conn& c, std::unique_lock<std::mutex>& lock, int64_t own_deadline_us,
                           const sigset_t* mask) const;

  // No lock needed. The socket's SO_SNDTIMEO or SO_RCVTIMEO (`opt`) as a deadline from now; -1
  // when not set.
  int64_t OwnDeadline(int fd, int opt) const;

  // Marks the tunnel failed (every later call on the fd fails with `err`), traces why, and shuts
  // the socket down so that anyone waiting on it wakes up.
  void Fail(Conn& c, int err, std::string why) const;

  // No lock needed. connect() to the proxy without blocking, whatever the socket's mode, which it
  // is back in on return: 0, EINPROGRESS or the error.
  int ConnectNonBlocking(int fd, const sockaddr* to, socklen_t len) const;

  // The TCP connect to the proxy's address c.proxy_at failed with `err`: connects the same socket
  // to the next of the proxy's addresses, as `curl -x` goes through a name's addresses, or fails
  // the tunnel once none is left (or the error is not about the address).
  void ProxyUnreachable(Conn& c, int err) const;

 private:
  bool ProxyConnected(Conn& c) const;
  bool SendRequest(Conn& c) const;
  void ReadReply(Conn& c) const;
  bool FlushHeld(Conn& c) const;
  void ShutDownAsAsked(Conn& c) const;
  void Expire(Conn& c) const;

  const awf_functions& real_;
  const Events& events_;
};

bool Settled(const Conn& c);
// What the next step waits for (POLLOUT or POLLIN).
short WantedEvents(const Conn& c);
// Takes c.mu. Whether closing `fd`, the connection's last, must shut the socket down first, so
// that a thread of this process waiting in AdvanceUntilSettled wakes up now, not at the deadline.
bool WaitedOn(Conn& c, int fd);

// A blocking call that may wait for the handshake holds the application's signals back from
// before it takes any lock, and lets them in only while it waits (mask()): a handler — which may
// siglongjmp() out, as wget's connect timeout does — then never runs while the shim holds a lock
// or is halfway through its own work.
class SignalsHeld {
 public:
  explicit SignalsHeld(bool hold) : hold_(hold) {
    if (!hold_) return;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &app_);
  }
  ~SignalsHeld() {
    if (hold_) pthread_sigmask(SIG_SETMASK, &app_, nullptr);
  }
  SignalsHeld(const SignalsHeld&) = delete;
  SignalsHeld& operator=(const SignalsHeld&) = delete;
  // The application's mask, to wait with; null when nothing is held.
  const sigset_t* mask() const { return hold_ ? &app_ : nullptr; }

 private:
  bool hold_;
  sigset_t app_;
};

}  // namespace awfshim
