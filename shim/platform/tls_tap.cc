// The TLS tap for dynamically linked OpenSSL: SSL_write/SSL_read (and _ex) forward to the real
// functions and feed copies of the plaintext to an HTTP/1.1 tracker per SSL*, which becomes
// `http` events. SSL_free ends the connection's tracking.
//
// Criteria:
//  - on only with a trace and AWF_SHIM_TAP=auto (the front does not even call here otherwise);
//  - only calls that return > 0 bytes are recorded (SSL_write returns -1 while a handshake
//    finishes);
//  - no re-entry guard: an application call made inside another (Node runs JavaScript inside
//    SSL_read, which calls SSL_write) is an ordinary call;
//  - SSL* values are reused quickly: state is dropped at SSL_free, and the tracker tells a new
//    connection from the old one only by that.
#include <mutex>

#include "absl/container/flat_hash_map.h"
#include "awfshim/http1.h"
#include "conn.h"
#include "engine.h"
#include "events.h"

namespace awfshim {
namespace {

constexpr int kTlsextNametypeHostName = 0;  // TLSEXT_NAMETYPE_host_name

struct TapState {
  std::mutex mu;
  Http1Stream http;
  std::string sni;
  bool http2_reported = false;
};

using GetServername = const char* (*)(const void* ssl, int type);

std::mutex g_mu;
absl::flat_hash_map<const void*, TapState*>* g_taps;  // never freed: hooks run during exit
std::atomic<GetServername> g_get_servername{nullptr};

TapState* StateFor(const void* ssl) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_taps) g_taps = new absl::flat_hash_map<const void*, TapState*>;
  auto [it, inserted] = g_taps->try_emplace(ssl, nullptr);
  if (inserted) {
    it->second = new TapState;
    GetServername get = g_get_servername.load();
    if (!get) {
      get = reinterpret_cast<GetServername>(engine().next_definition("SSL_get_servername"));
      g_get_servername.store(get);
    }
    if (const char* name = get ? get(ssl, kTlsextNametypeHostName) : nullptr) it->second->sni = name;
  }
  return it->second;
}

void Report(TapState& t) {
  for (HttpExchange& x : t.http.TakeCompleted()) TraceHttp(x, t.sni);
  if (t.http.TakeHttp2Detected()) TraceHttp2(t.sni);
}

void Feed(const void* ssl, const void* buf, size_t n, bool from_client) {
  TapState* t = StateFor(ssl);
  std::lock_guard<std::mutex> lock(t->mu);
  if (t->http.stopped()) return;
  absl::string_view bytes(static_cast<const char*>(buf), n);
  if (from_client) {
    t->http.OnClientBytes(bytes, MonotonicMicros());
  } else {
    t->http.OnServerBytes(bytes, MonotonicMicros());
  }
  Report(*t);
}

int SslWrite(void* ssl, const void* buf, int num) {
  int n = real().SSL_write(ssl, buf, num);
  if (n > 0) Feed(ssl, buf, static_cast<size_t>(n), true);
  return n;
}

int SslWriteEx(void* ssl, const void* buf, size_t num, size_t* written) {
  int ok = real().SSL_write_ex(ssl, buf, num, written);
  if (ok > 0 && written && *written > 0) Feed(ssl, buf, *written, true);
  return ok;
}

int SslRead(void* ssl, void* buf, int num) {
  int n = real().SSL_read(ssl, buf, num);
  if (n > 0) Feed(ssl, buf, static_cast<size_t>(n), false);
  return n;
}

int SslReadEx(void* ssl, void* buf, size_t num, size_t* readbytes) {
  int ok = real().SSL_read_ex(ssl, buf, num, readbytes);
  if (ok > 0 && readbytes && *readbytes > 0) Feed(ssl, buf, *readbytes, false);
  return ok;
}

void SslFree(void* ssl) {
  TapState* t = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_taps) {
      if (auto it = g_taps->find(ssl); it != g_taps->end()) {
        t = it->second;
        g_taps->erase(it);
      }
    }
  }
  if (t) {
    {
      std::lock_guard<std::mutex> lock(t->mu);
      t->http.OnClose(MonotonicMicros());
      Report(*t);
    }
    delete t;  // erased from the map first: no other thread can reach it through ssl any more
  }
  real().SSL_free(ssl);
}

}  // namespace

bool TapEnabled() { return engine().trace.on() && engine().settings.tap == TapMode::kAuto; }

void InstallTapHooks(awf_functions& hooks) {
  hooks.SSL_write = SslWrite;
  hooks.SSL_write_ex = SslWriteEx;
  hooks.SSL_read = SslRead;
  hooks.SSL_read_ex = SslReadEx;
  hooks.SSL_free = SslFree;
}

}  // namespace awfshim
