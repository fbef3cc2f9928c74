// Looks at the first bytes of a followed connection for the trace: the ClientHello (SNI, ALPN)
// and, for an application that proxies itself, its CONNECT line and the proxy's answer.
// The bytes are copied, never changed. c.mu held.
#pragma once

#include <sys/uio.h>

#include "conn.h"

namespace awfshim {

// Whether a new connection to `port` is worth inspecting at all.
bool WantsInspection(ConnKind kind, uint16_t port);
void InspectOut(Conn& c, const iovec* iov, int iovcnt, size_t n);
void InspectIn(Conn& c, const iovec* iov, int iovcnt, size_t n);

}  // namespace awfshim
