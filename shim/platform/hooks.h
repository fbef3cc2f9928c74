// What the hook families offer each other and the attach: their tables, the TLS tap's life
// around fork() and exit, and the steps of connect() that sendto/sendmsg share.
#pragma once

#include <sys/socket.h>

#include "awfshim/abi.h"

namespace awfshim {

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
// The tap's locks around fork() (attach.cc's handlers).
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

// sendto/sendmsg with MSG_FASTOPEN on an unconnected fd: if `addr` is routed, starts the tunnel
// as connect() would and returns true (the fd is then tracked, or, when the tunnel was refused,
// untracked with errno set). False: not routed, the caller goes on with the real call.
bool ConnectIfRouted(int fd, const sockaddr* addr, socklen_t len);

// sendto/sendmsg with an address on a datagram socket: a routed destination (a synthetic address
// above all) is never sent to directly: refuses it (errno ENETUNREACH, a `connect` event with
// decision "refuse") and returns true. False: the caller goes on with the real call.
bool RefusedDatagram(int fd, const sockaddr* addr, socklen_t len);

}  // namespace awfshim
