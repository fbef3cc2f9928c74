// The fds the engine follows and the Conn behind each: tracked on connect, checked against the
// socket they were tracked for, and released with their `close` event by the last close.
#include "tracking.h"

#include <sys/stat.h>

#include "events.h"
#include "pump.h"

namespace awfshim {
namespace {

bool SocketIdentity(int fd, uint64_t* dev, uint64_t* ino) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  *dev = st.st_dev;
  *ino = st.st_ino;
  return true;
}

// `closing` is about to be closed while dup()s of it live on, and the shim reads, writes and
// polls the connection through it: move to one of the others before the number can go to
// another file (the handshake would then be spoken into that file). c.mu held. Rare (a dup of a
// connection and a close of the original), so a scan of the fd table will do.
void MoveToAnotherFd(Conn& c, int closing) {
  int other = -1;
  for (int fd = 0; fd <= engine().fds.highest() && other < 0; fd++) {
    if (fd != closing && ConnFor(fd) == &c) other = fd;
  }
  bool watched = c.watched;
  if (watched) engine().pump.Unwatch(c);
  c.fd = other;  // -1 when the others are being closed too: the last close ends the connection
  if (watched && other >= 0) engine().pump.Watch(c);
}

}  // namespace

Conn* CheckedConnFor(int fd) {
  Conn* c = ConnFor(fd);
  uint64_t dev, ino;
  if (!c || (SocketIdentity(fd, &dev, &ino) && dev == c->socket_dev && ino == c->socket_ino)) return c;
  UntrackFd(fd);  // closed behind libc's back; the number now holds another file, or none
  return nullptr;
}

void TrackConn(int fd, Conn* c) {
  if (engine().fds.Get(fd) > FdTable::kOwned) UntrackFd(fd);  // a close we never saw
  SocketIdentity(fd, &c->socket_dev, &c->socket_ino);
  engine().fds.Set(fd, reinterpret_cast<uintptr_t>(c));
}

void UntrackFd(int fd) {
  uintptr_t v = engine().fds.Get(fd);
  if (v <= FdTable::kOwned) return;
  if (engine().fds.Exchange(fd, 0) != v) return;  // another thread got there first
  Conn* c = reinterpret_cast<Conn*>(v);
  if (c->fd_refs.fetch_sub(1) != 1) {
    std::lock_guard<std::mutex> lock(c->mu);
    if (c->fd == fd) MoveToAnotherFd(*c, fd);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(c->mu);
    engine().pump.Unwatch(*c);
    engine().events.Close(*c);
  }
  engine().pool.Release(c);
}

}  // namespace awfshim
