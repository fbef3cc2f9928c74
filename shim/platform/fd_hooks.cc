// fd lifetime hooks: close, close_range, closefrom, dup, dup2, dup3, fcntl(F_DUPFD*).
//
// The front calls these only for fds that carry engine state (and the bulk closes once the
// engine is loaded). Criteria:
//  - a connection's state goes with its fd: cleared before the fd is closed (so a new file that
//    gets the number is never mistaken for it), shared by dup'ed fds until the last one closes;
//    closing never waits for a handshake in progress, and ends a blocking call waiting for it;
//  - an fd of the shim's own (trace file, pump) is never closed by the application: close()
//    reports success and leaves it, bulk closes skip it, dup2/dup3 onto it move it aside first;
//  - a vfork child (see InVforkChild) changes nothing: its calls are forwarded as they are.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <vector>

#include "engine.h"
#include "hooks.h"
#include "pump.h"
#include "tracking.h"
#include "tunnel.h"

namespace awfshim {
namespace {

// Forgets fd before it is closed or replaced. When it is the last fd of a tunnel whose handshake
// a thread of this process waits for (a blocking connect, read or write), the socket is shut down
// too: the waiter wakes now and fails with EBADF, as it would at the deadline.
void Forget(int fd) {
  Conn* c = ConnFor(fd);
  bool wake = c && WaitedOn(*c, fd);
  UntrackFd(fd);
  if (wake) real().shutdown(fd, SHUT_RDWR);
}

// The shim's own fds in [first, last], ascending; with `forget`, the state of the others there
// is cleared as well.
std::vector<unsigned> ScanRange(unsigned first, unsigned last, bool forget) {
  std::vector<unsigned> owned;
  int max = engine().fds.highest();
  if (max < 0 || first > static_cast<unsigned>(max)) return owned;
  last = std::min(last, static_cast<unsigned>(max));
  for (unsigned fd = first; fd <= last; fd++) {
    uintptr_t v = engine().fds.Get(static_cast<int>(fd));
    if (v == FdTable::kOwned) {
      owned.push_back(fd);
    } else if (v && forget) {
      Forget(static_cast<int>(fd));
    }
  }
  return owned;
}

// close_range over [first, last] minus `owned` (ascending, within the range).
int CloseRangeAround(unsigned first, unsigned last, int flags, const std::vector<unsigned>& owned) {
  int rc = 0;
  unsigned from = first;
  for (unsigned fd : owned) {
    if (fd > from && real().close_range(from, fd - 1, flags) != 0) rc = -1;
    from = fd + 1;
  }
  if (from <= last && real().close_range(from, last, flags) != 0) rc = -1;
  return rc;
}

int Close(int fd) {
  if (InVforkChild()) return real().close(fd);
  if (engine().fds.IsOwned(fd)) return 0;
  Forget(fd);
  return real().close(fd);
}

int CloseRange(unsigned first, unsigned last, int flags) {
  if (first > last || InVforkChild()) return real().close_range(first, last, flags);  // libc reports EINVAL
  // CLOSE_RANGE_CLOEXEC closes nothing, so state stays; our own fds are close-on-exec already.
  bool closes = !(flags & CLOSE_RANGE_CLOEXEC);
  return CloseRangeAround(first, last, flags, ScanRange(first, last, closes));
}

void Closefrom(int low) { CloseRange(static_cast<unsigned>(std::max(low, 0)), UINT_MAX, 0); }

// The application is about to put another file on `fd`: if it is ours, move ours elsewhere.
void VacateOwned(int fd) {
  if (!engine().fds.IsOwned(fd)) return;
  int moved = real().fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (moved < 0) return;  // ours is lost; the application's dup2 still happens
  engine().fds.Set(moved, FdTable::kOwned);
  if (engine().pump.OwnsFd(fd)) {
    engine().pump.FdMoved(moved);
  } else {
    engine().trace.Moved(moved);
  }
  engine().fds.Set(fd, 0);
  real().close(fd);
}

// newfd now refers to the same socket as oldfd: it shares oldfd's state.
int Shared(int oldfd, int newfd) {
  if (newfd < 0) return newfd;
  if (Conn* c = CheckedConnFor(oldfd)) {
    c->fd_refs.fetch_add(1);
    TrackConn(newfd, c);
  }
  return newfd;
}

int Dup(int fd) { return InVforkChild() ? real().dup(fd) : Shared(fd, real().dup(fd)); }

int Dup2(int oldfd, int newfd) {
  if (oldfd == newfd || InVforkChild()) return real().dup2(oldfd, newfd);
  VacateOwned(newfd);
  Forget(newfd);
  return Shared(oldfd, real().dup2(oldfd, newfd));
}

int Dup3(int oldfd, int newfd, int flags) {
  if (InVforkChild()) return real().dup3(oldfd, newfd, flags);
  if (oldfd != newfd) {
    VacateOwned(newfd);
    Forget(newfd);
  }
  return Shared(oldfd, real().dup3(oldfd, newfd, flags));
}

template <typename Fn>
int FcntlVia(Fn fn, int fd, int cmd, void* arg) {
  int rc = fn(fd, cmd, arg);
  if ((cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && !InVforkChild()) return Shared(fd, rc);
  return rc;
}

int Fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return FcntlVia(real().fcntl, fd, cmd, arg);
}

int Fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return FcntlVia(real().fcntl64, fd, cmd, arg);
}

}  // namespace

void InstallFdHooks(awf_functions& hooks) {
  hooks.close = Close;
  hooks.close_range = CloseRange;
  hooks.closefrom = Closefrom;
  hooks.dup = Dup;
  hooks.dup2 = Dup2;
  hooks.dup3 = Dup3;
  hooks.fcntl = Fcntl;
  hooks.fcntl64 = Fcntl64;
}

}  // namespace awfshim
