// Per-connection state for the fds the engine follows: tunnels through the proxy, connections
// an application makes to the proxy itself, and direct connections watched for a ClientHello.
//
// Conns are pooled and never freed: a thread that still holds a pointer after another thread
// closed the fd touches valid memory (a recycled Conn is told apart by its generation).
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "awfshim/fd_table.h"
#include "awfshim/proxy_protocol.h"

namespace awfshim {

struct ProxyEndpoint;

enum class ConnKind : uint8_t {
  kTunnel,      // routed: the fd is connected to the proxy and the shim speaks CONNECT
  kAppProxied,  // the application connected to the proxy itself: its bytes are left alone
  kObserved,    // direct: watched only for the ClientHello
};

enum class Phase : uint8_t {
  kProxyConnecting,  // TCP connect to the proxy in progress
  kRequestSending,   // connected; CONNECT request (partly) unsent
  kReplyWaiting,     // request sent; waiting for the reply head
  kOpen,             // bytes flow between application and target
  kFailed,           // every later call fails with `error`
};

struct Conn {
  std::mutex mu;
  uint32_t generation = 0;
  int fd = -1;  // the fd connect() was called on
  std::atomic<int> fd_refs{0};
  ConnKind kind = ConnKind::kTunnel;
  std::atomic<Phase> phase{Phase::kOpen};
  // True while the first bytes are still examined (CONNECT line, reply, ClientHello).
  bool inspecting = false;
  // Open, nothing held, nothing to inspect: reads and writes go straight through. The only
  // field the hot path reads; RefreshFast() keeps it in step, under mu.
  std::atomic<bool> fast{false};

  std::string host;  // CONNECT target host (a name, or an address literal)
  uint16_t port = 0;
  sockaddr_storage peer{};  // what the application asked for: getpeername answers this
  socklen_t peer_len = 0;
  bool nonblocking = false;

  // The proxy's addresses (never freed), the one this tunnel connects to, and how many it tried.
  const ProxyEndpoint* proxy = nullptr;
  unsigned proxy_at = 0, proxy_tries = 0;
  std::string request;  // the CONNECT request and how much of it is on the wire
  size_t request_sent = 0;
  std::string held;     // application bytes written before the tunnel opened
  int error = 0;
  std::string failure;  // why, for the trace
  std::string reply_head;  // the part of the proxy's reply head consumed so far
  ProxyReply reply;
  int64_t started_us = 0, deadline_us = 0, handshake_us = -1;
  bool watched = false;  // registered with the pump
  // Threads of this process waiting in the handshake with mu released (AdvanceUntilSettled).
  int waiters = 0;
  // A connect() has reported the tunnel open (the kernel's SS_CONNECTED): later ones get EISCONN.
  bool connect_reported = false;
  // shutdown() asked for during the handshake: carried out once the held bytes are flushed.
  bool shut_rd = false, shut_wr = false;

  std::string first_out, first_in;  // bytes under inspection
  bool hello_done = false, request_done = false, reply_done = false;

  std::atomic<uint64_t> bytes_out{0}, bytes_in{0};
  // The socket the state belongs to (fstat of the fd when it was tracked): a runtime that closes
  // fds behind libc's back leaves the number to another file, which must not inherit the state.
  uint64_t socket_dev = 0, socket_ino = 0;
  // A fork child's copy: the parent still holds the connection, so the child's close does not
  // end it, and the child counts only the bytes it moves itself.
  bool inherited = false;

  void RefreshFast() {
    fast.store(phase.load(std::memory_order_relaxed) == Phase::kOpen && !inspecting && held.empty(),
               std::memory_order_release);
  }
};

class ConnPool {
 public:
  Conn* Acquire();
  void Release(Conn* c);
  // fork(): the child re-initialises every lock (its other threads are gone).
  void LockForFork() { mu_.lock(); }
  void UnlockAfterFork() { mu_.unlock(); }
  void ResetLocksInChild();

 private:
  std::mutex mu_;
  std::vector<Conn*> all_, free_;
};

// The Conn behind a tracked fd, or null.
inline Conn* ConnAt(const FdTable& fds, int fd) {
  uintptr_t v = fds.Get(fd);
  return v > FdTable::kOwned ? reinterpret_cast<Conn*>(v) : nullptr;
}

int64_t MonotonicMicros();

}  // namespace awfshim
