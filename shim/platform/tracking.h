// The fds the engine follows, each with the Conn behind it (engine().fds).
#pragma once

#include "engine.h"

namespace awfshim {

// The Conn behind a tracked fd if the fd is still the socket it was tracked for; else the stale
// state is dropped (with its `close` event) and null returned. For the slow paths: costs an fstat.
Conn* CheckedConnFor(int fd);
void TrackConn(int fd, Conn* c);
// Forgets fd; releases its Conn (with a `close` event) when no other fd refers to it.
void UntrackFd(int fd);

}  // namespace awfshim
