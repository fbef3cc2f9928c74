// fd lifetime hooks: close, close_range, closefrom, dup2, dup3.
//
// The front calls these only for fds that carry engine state (and the bulk closes once the
// engine is loaded). Criteria:
//  - an fd of the shim's own (the trace file) is never closed by the application: close()
//    reports success and leaves it, bulk closes skip it, dup2/dup3 onto it move it aside first;
//  - every other fd goes to the real function unchanged.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "engine.h"

namespace awfshim {
namespace {

int Close(int fd) {
  if (IsOwnedFd(fd)) return 0;
  return real().close(fd);
}

// Runs `op` on [first, last] minus the shim's own fd.
template <typename Op>
int AroundOwned(unsigned first, unsigned last, Op op) {
  int owned = engine().trace.fd();
  if (!IsOwnedFd(owned) || static_cast<unsigned>(owned) < first || static_cast<unsigned>(owned) > last) {
    return op(first, last);
  }
  int rc = 0;
  if (static_cast<unsigned>(owned) > first) rc = op(first, static_cast<unsigned>(owned) - 1);
  if (rc == 0 && static_cast<unsigned>(owned) < last) rc = op(static_cast<unsigned>(owned) + 1, last);
  return rc;
}

int CloseRange(unsigned first, unsigned last, int flags) {
  return AroundOwned(first, last, [flags](unsigned a, unsigned b) { return real().close_range(a, b, flags); });
}

void Closefrom(int low) {
  if (low < 0) low = 0;
  AroundOwned(static_cast<unsigned>(low), UINT_MAX, [](unsigned a, unsigned b) {
    if (b == UINT_MAX) {
      real().closefrom(static_cast<int>(a));
      return 0;
    }
    return real().close_range(a, b, 0);
  });
}

// The application is about to put another file on `fd`: if it is ours, move ours elsewhere.
void VacateOwned(int fd) {
  if (!IsOwnedFd(fd)) return;
  int moved = real().fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (moved < 0) return;  // the trace stops; the application's dup2 still happens
  engine().fds.Set(moved, FdTable::kOwned);
  engine().trace.Moved(moved);
  engine().fds.Set(fd, 0);
}

int Dup2(int oldfd, int newfd) {
  if (oldfd != newfd) VacateOwned(newfd);
  return real().dup2(oldfd, newfd);
}

int Dup3(int oldfd, int newfd, int flags) {
  if (oldfd != newfd) VacateOwned(newfd);
  return real().dup3(oldfd, newfd, flags);
}

}  // namespace

bool IsOwnedFd(int fd) { return engine().fds.Get(fd) == FdTable::kOwned; }

void InstallFdHooks(awf_functions& hooks) {
  hooks.close = Close;
  hooks.close_range = CloseRange;
  hooks.closefrom = Closefrom;
  hooks.dup2 = Dup2;
  hooks.dup3 = Dup3;
}

}  // namespace awfshim
