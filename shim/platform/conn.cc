#include "conn.h"

#include <time.h>

#include <new>

namespace awfshim {

int64_t MonotonicMicros() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000 + ts.tv_nsec / 1000;
}

Conn* ConnPool::Acquire() {
  Conn* c;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) {
      c = new Conn;
      all_.push_back(c);
    } else {
      c = free_.back();
      free_.pop_back();
    }
  }
  std::lock_guard<std::mutex> lock(c->mu);
  c->generation++;
  c->fd = -1;
  c->fd_refs.store(1);
  c->kind = ConnKind::kTunnel;
  c->phase.store(Phase::kOpen);
  c->inspecting = false;
  c->fast.store(false);
  c->host.clear();
  c->port = 0;
  c->peer = {};
  c->peer_len = 0;
  c->nonblocking = false;
  c->proxy = nullptr;
  c->proxy_at = c->proxy_tries = 0;
  c->request.clear();
  c->request_sent = 0;
  c->held.clear();
  c->error = 0;
  c->failure.clear();
  c->reply_head.clear();
  c->reply = {};
  c->started_us = MonotonicMicros();
  c->deadline_us = 0;
  c->handshake_us = -1;
  c->watched = false;
  c->waiters = 0;
  c->connect_reported = false;
  c->shut_rd = c->shut_wr = false;
  c->first_out.clear();
  c->first_in.clear();
  c->hello_done = c->request_done = c->reply_done = false;
  c->bytes_out.store(0);
  c->bytes_in.store(0);
  c->inherited = false;
  return c;
}

void ConnPool::Release(Conn* c) {
  {
    std::lock_guard<std::mutex> lock(c->mu);
    c->generation++;
    // Large buffers go back to the allocator; the pool keeps only the object.
    std::string().swap(c->held);
    std::string().swap(c->first_out);
    std::string().swap(c->first_in);
  }
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(c);
}

void ConnPool::ResetLocksInChild() {
  new (&mu_) std::mutex;
  for (Conn* c : all_) new (&c->mu) std::mutex;
}

}  // namespace awfshim
