// The pump: one background thread, started by the first routed name lookup (PumpStartAhead) or
// else on the first non-blocking tunnel that cannot finish its handshake at once. It moves every pending handshake forward as soon as its socket is
// ready — even when the application never touches the fd (a server-speaks-first client that
// only waits for input) — and fails the ones that outlive the timeout.
#pragma once

#include "conn.h"

namespace awfshim {

// A routed name was just answered: its tunnel usually follows at once, and a non-blocking one
// needs the pump. Starting it here keeps the thread's creation (~0.1 ms of a fresh curl here) out
// of the application's connect(), where it delays the TLS handshake. A pump that cannot start is
// reported as PumpWatch reports it, and tried again there. Not in a child of fork().
void PumpStartAhead();
// c.mu held. Registers c until its handshake settles (or it is closed). False when there is no
// pump (no thread or epoll instance could be made; the trace says why, once): then nothing but
// the application's own calls on the fd moves the handshake or enforces its deadline.
bool PumpWatch(Conn& c);
// c.mu held.
void PumpUnwatch(Conn& c);
// c.mu held: the pending step changed (e.g. from POLLOUT to POLLIN).
void PumpRearm(Conn& c);

// The pump's epoll fd is one of the shim's own; the application moved a file onto its number.
bool PumpOwnsFd(int fd);
void PumpFdMoved(int new_fd);

// fork()
void PumpLockForFork();
void PumpUnlockAfterFork();
void PumpResetInChild();

}  // namespace awfshim
