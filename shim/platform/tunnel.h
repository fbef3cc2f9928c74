// The CONNECT handshake on a tunnelled fd, driven from whichever thread gets there first: the
// application's own calls on the fd or the pump. Every function here expects c.mu held.
#pragma once

#include <poll.h>

#include <string>

#include "conn.h"

namespace awfshim {

// Makes as much progress as the socket allows right now, never blocking: finishes the TCP
// connect to the proxy, sends the request, consumes exactly the reply head, flushes held bytes.
void Advance(Conn& c);
// Blocking sockets: Advance and wait until the tunnel is open or failed (bounded by the deadline).
void AdvanceUntilSettled(Conn& c);
bool Settled(const Conn& c);
// What the next step waits for (POLLOUT or POLLIN).
short WantedEvents(const Conn& c);
// Marks the tunnel failed (every later call on the fd fails with `err`), traces why, and shuts
// the socket down so that anyone waiting on it wakes up.
void FailTunnel(Conn& c, int err, std::string why);
// Sends held application bytes; true when none are left.
bool FlushHeld(Conn& c);

}  // namespace awfshim
