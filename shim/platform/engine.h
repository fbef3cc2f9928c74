// The engine's process-wide state, built once in awfshim_engine_attach and never freed (hooks
// can run during exit, after static destructors).
#pragma once

#include <unistd.h>

#include <mutex>
#include <optional>
#include <string>

#include "awfshim/abi.h"
#include "awfshim/fd_table.h"
#include "awfshim/name_book.h"
#include "awfshim/settings.h"
#include "awfshim/trace.h"
#include "conn.h"

namespace awfshim {

// Where the proxy is, resolved on first use.
struct ProxyEndpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string error;  // non-empty: could not be resolved
};

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

  std::mutex proxy_mu;
  std::optional<ProxyEndpoint> proxy_endpoint;
};

// Valid once the front has attached the engine.
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

// Each hooked family sets its entries of the engine's table; the rest forward to `real`.
void InstallDnsHooks(awf_functions& hooks);
void InstallSocketHooks(awf_functions& hooks);
void InstallIoHooks(awf_functions& hooks);
void InstallFdHooks(awf_functions& hooks);
void InstallTapHooks(awf_functions& hooks);
// The TLS tap runs where there is a trace to write to and AWF_SHIM_TAP is not off.
bool TapEnabled();
// Points the executable's own OpenSSL functions (Node.js) at the tap's hooks; the trace says
// whether it did or why not. Called at start; refused unless the process still has a single
// thread (a library's constructor may have started another).
void PatchExecutableOpenSsl();
// The tap's locks around fork() (engine.cc's handlers).
void TapLockForFork();
void TapUnlockAfterFork();
void TapResetInChild();
// At exit: each exchange still open becomes an `http` event marked incomplete.
void TapFlushAtExit();
// The followed fd this thread last read or wrote through the I/O hooks since the tap reset it to
// kIoFdNone, kIoFdMany after two different ones: the socket under an SSL* whose BIO is its own
// (curl's), which SSL_get_fd cannot name.
inline constexpr int kIoFdNone = -1;
inline constexpr int kIoFdMany = -2;
extern constinit thread_local int tl_io_fd;
inline void NoteIoFd(int fd) { tl_io_fd = tl_io_fd == kIoFdNone || tl_io_fd == fd ? fd : kIoFdMany; }

// The shim's own fds (the trace file, the pump's epoll): kept open when the application closes
// fds in bulk, and moved aside when the application dup2()s onto one.
bool IsOwnedFd(int fd);
void MarkOwnedFd(int fd);

// The Conn behind a tracked fd, or null.
inline Conn* ConnFor(int fd) {
  uintptr_t v = engine().fds.Get(fd);
  return v > FdTable::kOwned ? reinterpret_cast<Conn*>(v) : nullptr;
}
// The Conn behind a tracked fd if the fd is still the socket it was tracked for; else the stale
// state is dropped (with its `close` event) and null returned. For the slow paths: costs an fstat.
Conn* CheckedConnFor(int fd);
void TrackConn(int fd, Conn* c);
// Forgets fd; releases its Conn (with a `close` event) when no other fd refers to it.
void UntrackFd(int fd);

// sendto/sendmsg with MSG_FASTOPEN on an unconnected fd: if `addr` is routed, starts the tunnel
// as connect() would and returns true (the fd is then tracked, or, when the tunnel was refused,
// untracked with errno set). False: not routed, the caller goes on with the real call.
bool ConnectIfRouted(int fd, const sockaddr* addr, socklen_t len);

// sendto/sendmsg with an address on a datagram socket: a routed destination (a synthetic address
// above all) is never sent to directly: refuses it (errno ENETUNREACH, a `connect` event with
// decision "refuse") and returns true. False: the caller goes on with the real call.
bool RefusedDatagram(int fd, const sockaddr* addr, socklen_t len);

// The proxy's address, resolved once (through the real getaddrinfo when it is a name).
const ProxyEndpoint& ResolveProxy();

}  // namespace awfshim
