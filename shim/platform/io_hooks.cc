// The read/write family on followed fds.
//
// The front calls these only for fds with engine state. Criteria:
//  - open and nothing to look at: straight to libc, counting bytes (the hot path: one atomic
//    load, a thread-local note of the fd for the TLS tap, one call, one atomic add);
//  - a failed tunnel: every call fails with the tunnel's errno, so the proxy's error page never
//    reaches the application as data;
//  - a tunnel still in its handshake: a blocking socket waits for it (bounded by the timeout and
//    the socket's SO_RCVTIMEO/SO_SNDTIMEO, interrupted by a signal as the kernel's call would be);
//    a non-blocking read reports EAGAIN (nothing from the target can be there yet) and a
//    non-blocking write is held and reported written, to be flushed once the tunnel opens (and only
//    then counted in bytes_out: a refused tunnel carried none of it to the target);
//  - reads continue with the application's real read once the reply head is consumed: EAGAIN is
//    only ever the socket's own answer.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>

#include <cerrno>
#include <mutex>

#include "engine.h"
#include "hooks.h"
#include "inspect.h"
#include "pump.h"
#include "tracking.h"
#include "tunnel.h"

namespace awfshim {
namespace {

constexpr size_t kMaxHeld = 256 * 1024;

// glibc's fortify failure (abort with "buffer overflow detected"), as the real _chk would.
extern "C" [[noreturn]] void __chk_fail(void);

bool NonBlocking(int fd, int flags) {
  if (flags & MSG_DONTWAIT) return true;
  int fl = real().fcntl(fd, F_GETFL, nullptr);
  return fl >= 0 && (fl & O_NONBLOCK);
}

bool Fail(const Conn& c, ssize_t* rc) {
  errno = c.error;
  *rc = -1;
  return false;
}

bool Stop(ssize_t* rc, int err) {
  errno = err;
  *rc = -1;
  return false;
}

// c.mu held (through `lock`). Brings a pending tunnel as far as it can go for this call: a
// blocking call waits (AdvanceUntilSettled), bounded by the socket's own timeout for its
// direction, `opt`. Anything but kSettled ends the call with WaitErrno.
Wait Progress(Conn& c, std::unique_lock<std::mutex>& lock, int fd, int flags, int opt, const sigset_t* mask) {
  if (Settled(c) && c.held.empty()) return Wait::kSettled;
  if (NonBlocking(fd, flags)) {
    engine().tunnels.Advance(c);
    if (c.watched) engine().pump.Rearm(c);
    return Wait::kSettled;
  }
  return WaitForHandshake(c, lock, engine().tunnels.OwnDeadline(fd, opt), mask);
}

// What the kernel's own call says where the wait ended: interrupted, the socket's timeout (EAGAIN),
// or the fd closed by another thread meanwhile.
int WaitErrno(Wait w) { return w == Wait::kInterrupted ? EINTR : w == Wait::kTimedOut ? EAGAIN : EBADF; }

// Whether a call may wait for c's handshake, read before the lock is taken (signals are held
// from there on: see SignalsHeld).
bool MayWait(const Conn& c, int fd, int flags) { return !Settled(c) && !NonBlocking(fd, flags); }

// Returns true to go on with the real read; false to return *rc right away.
bool BeforeRead(Conn& c, int fd, int flags, ssize_t* rc) {
  SignalsHeld signals(MayWait(c, fd, flags));
  std::unique_lock<std::mutex> lock(c.mu);
  if (c.kind != ConnKind::kTunnel) return true;
  Wait wait = Progress(c, lock, fd, flags, SO_RCVTIMEO, signals.mask());
  if (wait != Wait::kClosed) c.RefreshFast();
  if (wait != Wait::kSettled) return Stop(rc, WaitErrno(wait));
  if (c.phase.load() == Phase::kFailed) return Fail(c, rc);
  if (c.phase.load() != Phase::kOpen) {
    // Nothing from the target can be there yet; after shutdown(SHUT_RD), the end of the stream.
    if (c.shut_rd) {
      *rc = 0;
      return false;
    }
    return Stop(rc, EAGAIN);
  }
  return true;
}

// Returns true to go on with the real write; false to return *rc (bytes held, or failure).
bool BeforeWrite(Conn& c, int fd, const iovec* iov, int iovcnt, int flags, ssize_t* rc) {
  SignalsHeld signals(MayWait(c, fd, flags));
  std::unique_lock<std::mutex> lock(c.mu);
  if (c.kind == ConnKind::kTunnel) {
    Wait wait = Progress(c, lock, fd, flags, SO_SNDTIMEO, signals.mask());
    if (wait != Wait::kClosed) c.RefreshFast();
    if (wait != Wait::kSettled) return Stop(rc, WaitErrno(wait));
    if (c.phase.load() == Phase::kFailed) return Fail(c, rc);
    if (c.shut_wr) {
      // Shut down for writing (carried out once the held bytes are out): the kernel's answer.
      lock.unlock();
      if (!(flags & MSG_NOSIGNAL)) raise(SIGPIPE);
      return Stop(rc, EPIPE);
    }
    if (c.phase.load() != Phase::kOpen || !c.held.empty()) {
      // Still in the handshake (non-blocking), or earlier bytes not yet flushed: keep order.
      size_t total = 0;
      for (int i = 0; i < iovcnt; i++) total += iov[i].iov_len;
      if (c.held.size() + total > kMaxHeld) return Stop(rc, EAGAIN);
      for (int i = 0; i < iovcnt; i++) c.held.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
      InspectOut(c, iov, iovcnt, total);
      c.RefreshFast();
      *rc = static_cast<ssize_t>(total);
      return false;
    }
  }
  c.RefreshFast();
  return true;
}

void AfterRead(Conn& c, const iovec* iov, int iovcnt, ssize_t n, int flags) {
  if (n <= 0 || (flags & MSG_PEEK)) return;
  c.bytes_in.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  if (c.fast.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> lock(c.mu);
  InspectIn(c, iov, iovcnt, static_cast<size_t>(n));
  c.RefreshFast();
}

void AfterWrite(Conn& c, const iovec* iov, int iovcnt, ssize_t n) {
  if (n <= 0) return;
  c.bytes_out.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  if (c.fast.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> lock(c.mu);
  InspectOut(c, iov, iovcnt, static_cast<size_t>(n));
  c.RefreshFast();
}

template <typename Call>
ssize_t ReadVia(int fd, const iovec* iov, int iovcnt, int flags, Call call) {
  Conn* c = ConnFor(fd);
  if (!c || tl_in_shim) return call();
  NoteIoFd(fd);
  if (!c->fast.load(std::memory_order_acquire)) {
    if (!(c = CheckedConnFor(fd))) return call();
    ssize_t rc;
    if (!BeforeRead(*c, fd, flags, &rc)) return rc;
  }
  ssize_t n = call();
  AfterRead(*c, iov, iovcnt, n, flags);
  return n;
}

template <typename Call>
ssize_t WriteVia(int fd, const iovec* iov, int iovcnt, int flags, Call call) {
  Conn* c = ConnFor(fd);
  if (!c || tl_in_shim) return call();
  NoteIoFd(fd);
  if (!c->fast.load(std::memory_order_acquire)) {
    if (!(c = CheckedConnFor(fd))) return call();
    ssize_t rc;
    if (!BeforeWrite(*c, fd, iov, iovcnt, flags, &rc)) return rc;
  }
  ssize_t n = call();
  AfterWrite(*c, iov, iovcnt, n);
  return n;
}

ssize_t Read(int fd, void* buf, size_t n) {
  iovec v{buf, n};
  return ReadVia(fd, &v, 1, 0, [&] { return real().read(fd, buf, n); });
}

ssize_t ReadChk(int fd, void* buf, size_t n, size_t buflen) {
  if (n > buflen) __chk_fail();
  return Read(fd, buf, n);
}

ssize_t Readv(int fd, const iovec* iov, int iovcnt) {
  return ReadVia(fd, iov, iovcnt, 0, [&] { return real().readv(fd, iov, iovcnt); });
}

ssize_t Recv(int fd, void* buf, size_t n, int flags) {
  iovec v{buf, n};
  return ReadVia(fd, &v, 1, flags, [&] { return real().recv(fd, buf, n, flags); });
}

ssize_t RecvChk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  if (n > buflen) __chk_fail();
  return Recv(fd, buf, n, flags);
}

ssize_t Recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* addr, socklen_t* addrlen) {
  iovec v{buf, n};
  return ReadVia(fd, &v, 1, flags, [&] { return real().recvfrom(fd, buf, n, flags, addr, addrlen); });
}

ssize_t RecvfromChk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* addr, socklen_t* addrlen) {
  if (n > buflen) __chk_fail();
  return Recvfrom(fd, buf, n, flags, addr, addrlen);
}

ssize_t Recvmsg(int fd, msghdr* msg, int flags) {
  return ReadVia(fd, msg->msg_iov, static_cast<int>(msg->msg_iovlen), flags,
                 [&] { return real().recvmsg(fd, msg, flags); });
}

ssize_t Write(int fd, const void* buf, size_t n) {
  iovec v{const_cast<void*>(buf), n};
  return WriteVia(fd, &v, 1, 0, [&] { return real().write(fd, buf, n); });
}

ssize_t Writev(int fd, const iovec* iov, int iovcnt) {
  return WriteVia(fd, iov, iovcnt, 0, [&] { return real().writev(fd, iov, iovcnt); });
}

ssize_t Send(int fd, const void* buf, size_t n, int flags) {
  iovec v{const_cast<void*>(buf), n};
  return WriteVia(fd, &v, 1, flags, [&] { return real().send(fd, buf, n, flags); });
}

ssize_t SendmsgPlain(int fd, const iovec* iov, int iovcnt, int flags) {
  msghdr m{};
  m.msg_iov = const_cast<iovec*>(iov);
  m.msg_iovlen = static_cast<size_t>(iovcnt);
  return WriteVia(fd, iov, iovcnt, flags, [&] { return real().sendmsg(fd, &m, flags); });
}

// MSG_FASTOPEN carries a connect: route it like one; a tunnelled connection then gets the bytes
// as an ordinary first write (they are held until the tunnel opens).
ssize_t Sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* addr, socklen_t addrlen) {
  if (addr && !tl_in_shim && !ConnFor(fd) && RefusedDatagram(fd, addr, addrlen)) return -1;
  if ((flags & MSG_FASTOPEN) && addr && !ConnFor(fd) && !tl_in_shim && ConnectIfRouted(fd, addr, addrlen)) {
    if (ConnFor(fd) == nullptr) return -1;  // refused: errno says why
    iovec v{const_cast<void*>(buf), n};
    return SendmsgPlain(fd, &v, 1, flags & ~MSG_FASTOPEN);
  }
  iovec v{const_cast<void*>(buf), n};
  return WriteVia(fd, &v, 1, flags, [&] { return real().sendto(fd, buf, n, flags, addr, addrlen); });
}

ssize_t Sendmsg(int fd, const msghdr* msg, int flags) {
  const auto* addr = static_cast<const sockaddr*>(msg->msg_name);
  if (addr && !tl_in_shim && !ConnFor(fd) && RefusedDatagram(fd, addr, msg->msg_namelen)) return -1;
  if ((flags & MSG_FASTOPEN) && addr && !ConnFor(fd) && !tl_in_shim && ConnectIfRouted(fd, addr, msg->msg_namelen)) {
    if (ConnFor(fd) == nullptr) return -1;
    return SendmsgPlain(fd, msg->msg_iov, static_cast<int>(msg->msg_iovlen), flags & ~MSG_FASTOPEN);
  }
  return WriteVia(fd, msg->msg_iov, static_cast<int>(msg->msg_iovlen), flags,
                  [&] { return real().sendmsg(fd, msg, flags); });
}

// A batch: datagrams to routed destinations are refused as sendmsg refuses them (the messages
// before the first refused one still go). On a followed fd, or with MSG_FASTOPEN (a connect),
// one message at a time through Sendmsg: the kernel makes no batch atomic either.
int Sendmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags) {
  if (tl_in_shim) return real().sendmmsg(fd, vec, vlen, flags);
  if (!ConnFor(fd) && !(flags & MSG_FASTOPEN)) {
    unsigned int allowed = 0;
    while (allowed < vlen && !RefusedDatagram(fd, static_cast<const sockaddr*>(vec[allowed].msg_hdr.msg_name),
                                              vec[allowed].msg_hdr.msg_namelen)) {
      allowed++;
    }
    if (allowed == 0 && vlen > 0) return -1;
    return real().sendmmsg(fd, vec, allowed, flags);
  }
  unsigned int sent = 0;
  for (; sent < vlen; sent++) {
    ssize_t n = Sendmsg(fd, &vec[sent].msg_hdr, flags);
    if (n < 0) return sent ? static_cast<int>(sent) : -1;
    vec[sent].msg_len = static_cast<unsigned int>(n);
  }
  return static_cast<int>(sent);
}

}  // namespace

constinit thread_local int tl_io_fd __attribute__((tls_model("initial-exec"))) = kIoFdNone;

void InstallIoHooks(awf_functions& hooks) {
  hooks.read = Read;
  hooks.__read_chk = ReadChk;
  hooks.readv = Readv;
  hooks.recv = Recv;
  hooks.__recv_chk = RecvChk;
  hooks.recvfrom = Recvfrom;
  hooks.__recvfrom_chk = RecvfromChk;
  hooks.recvmsg = Recvmsg;
  hooks.write = Write;
  hooks.writev = Writev;
  hooks.send = Send;
  hooks.sendto = Sendto;
  hooks.sendmsg = Sendmsg;
  hooks.sendmmsg = Sendmmsg;
}

}  // namespace awfshim
