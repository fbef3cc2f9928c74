// The TLS tap: SSL_write/SSL_read (and _ex) forward to the original functions and feed copies
// of the plaintext to an HTTP/1.1 tracker per SSL*, which becomes `http` events. SSL_free ends
// the connection's tracking. The hooks are reached two ways: through the front's interposed
// symbols (OpenSSL in a shared library: curl, python, git), or through a jump patched into the
// entry of the executable's own OpenSSL (Node.js, which calls it directly), in which case the
// original is a trampoline.
//
// Criteria:
//  - on only with a trace and AWF_SHIM_TAP=auto (the front does not even call here otherwise);
//  - only calls that return > 0 bytes are recorded (SSL_write returns -1 while a handshake
//    finishes), a write dated from when it began: a reader thread may see the answer before the
//    writer's call returns (the tracker holds such an answer for its request);
//  - the client side only: an SSL* of a TLS server in the process reads requests and writes
//    responses, and is left alone;
//  - no re-entry guard: an application call made inside another (Node runs JavaScript inside
//    SSL_read, which calls SSL_write) is an ordinary call;
//  - SSL* values are reused quickly: state is dropped at SSL_free, and the tracker tells a new
//    connection from the old one only by that;
//  - at exit, exchanges still open are reported `incomplete` (an interrupted stream).
#include <atomic>
#include <mutex>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_join.h"
#include "awfshim/http1.h"
#include "code_patch.h"
#include "conn.h"
#include "elf_symbols.h"
#include "engine.h"
#include "events.h"
#include "hooks.h"

namespace awfshim {
namespace {

constexpr int kTlsextNametypeHostName = 0;  // TLSEXT_NAMETYPE_host_name

struct TapState {
  std::mutex mu;
  Http1Stream http;
  std::string sni;
  int fd = -1;             // the socket under the SSL*; -1 for memory BIOs (Node)
  bool server = false;     // the process's own TLS server: not tapped
  bool inherited = false;  // a fork child's copy: the parent reports its exchanges
};

using GetServername = const char* (*)(const void* ssl, int type);
using GetFd = int (*)(const void* ssl);
using IsServer = int (*)(const void* ssl);

std::mutex g_mu;
absl::flat_hash_map<const void*, TapState*>* g_taps;  // never freed: hooks run during exit
// OpenSSL's accessors, from the copy whose functions are tapped: the executable's own where it
// was patched (then never looked for elsewhere: another copy's would misread its SSL*).
std::atomic<GetServername> g_get_servername{nullptr};
std::atomic<GetFd> g_get_fd{nullptr};
std::atomic<IsServer> g_is_server{nullptr};
std::atomic<bool> g_patched{false};  // the executable's own OpenSSL is tapped (Node)

// The trampolines of patched functions; each published before any entry jumps to its hook.
awf_functions g_trampolines;

// The original behaviour: the trampoline where the executable's function was patched, else the
// next definition the front resolved (before it called the hook).
template <auto kMember>
auto Original() {
  auto trampoline = std::atomic_ref(g_trampolines.*kMember).load(std::memory_order_acquire);
  return trampoline ? trampoline : real().*kMember;
}

// The definition `name` in the copy of OpenSSL the front forwards the tapped calls to; null where
// that copy lacks it.
template <typename Fn>
Fn Accessor(std::atomic<Fn>& slot, const char* name) {
  Fn fn = slot.load();
  if (!fn && !g_patched.load()) {
    fn = reinterpret_cast<Fn>(engine().next_definition(name));
    slot.store(fn);
  }
  return fn;
}

TapState* StateFor(const void* ssl) {
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_taps) {
      if (auto it = g_taps->find(ssl); it != g_taps->end()) return it->second;
    }
  }
  // A new connection. What OpenSSL says of it is asked outside g_mu, which fork() waits for: the
  // lookups call into the front's symbol search (the loader's lock) and OpenSSL.
  auto* fresh = new TapState;
  GetServername get_servername = Accessor(g_get_servername, "SSL_get_servername");
  if (const char* name = get_servername ? get_servername(ssl, kTlsextNametypeHostName) : nullptr) fresh->sni = name;
  if (GetFd get_fd = Accessor(g_get_fd, "SSL_get_fd")) fresh->fd = get_fd(ssl);
  if (IsServer is_server = Accessor(g_is_server, "SSL_is_server")) fresh->server = is_server(ssl) == 1;
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_taps) g_taps = new absl::flat_hash_map<const void*, TapState*>;
  auto [it, inserted] = g_taps->try_emplace(ssl, fresh);
  if (!inserted) delete fresh;  // another thread's call on the same SSL* got there first
  return it->second;
}

void Report(TapState& t) {
  for (HttpExchange& x : t.http.TakeCompleted()) engine().events.Http(x, t.sni, t.fd);
  if (t.http.TakeHttp2Detected()) engine().events.Http2(t.sni, t.fd);
}

// The followed socket one tapped call read or wrote, if only one (tl_io_fd). Not believed for a
// patched executable (Node): its memory BIOs do no socket I/O inside the call, and what happens
// there is JavaScript's, on any socket.
class IoFdWatch {
 public:
  IoFdWatch() : outer_(tl_io_fd) { tl_io_fd = kIoFdNone; }
  // A call nested in another (Node) was part of the outer one too.
  ~IoFdWatch() {
    int inner = tl_io_fd;
    tl_io_fd = outer_;
    if (inner != kIoFdNone) NoteIoFd(inner);
  }
  int fd() const { return g_patched.load(std::memory_order_relaxed) ? kIoFdNone : tl_io_fd; }

 private:
  int outer_;
};

void Feed(const void* ssl, const void* buf, size_t n, bool from_client, int64_t now_us, int io_fd) {
  TapState* t = StateFor(ssl);
  if (t->server) return;
  std::lock_guard<std::mutex> lock(t->mu);
  if (t->fd < 0 && io_fd >= 0) t->fd = io_fd;  // a BIO of its own: SSL_get_fd knew none
  if (t->http.stopped()) return;
  absl::string_view bytes(static_cast<const char*>(buf), n);
  if (from_client) {
    t->http.OnClientBytes(bytes, now_us);
  } else {
    t->http.OnServerBytes(bytes, now_us);
  }
  Report(*t);
}

int SslWrite(void* ssl, const void* buf, int num) {
  int64_t start_us = MonotonicMicros();
  IoFdWatch io;
  int n = Original<&awf_functions::SSL_write>()(ssl, buf, num);
  if (n > 0) Feed(ssl, buf, static_cast<size_t>(n), true, start_us, io.fd());
  return n;
}

int SslWriteEx(void* ssl, const void* buf, size_t num, size_t* written) {
  int64_t start_us = MonotonicMicros();
  IoFdWatch io;
  int ok = Original<&awf_functions::SSL_write_ex>()(ssl, buf, num, written);
  if (ok > 0 && written && *written > 0) Feed(ssl, buf, *written, true, start_us, io.fd());
  return ok;
}

int SslRead(void* ssl, void* buf, int num) {
  IoFdWatch io;
  int n = Original<&awf_functions::SSL_read>()(ssl, buf, num);
  if (n > 0) Feed(ssl, buf, static_cast<size_t>(n), false, MonotonicMicros(), io.fd());
  return n;
}

int SslReadEx(void* ssl, void* buf, size_t num, size_t* readbytes) {
  IoFdWatch io;
  int ok = Original<&awf_functions::SSL_read_ex>()(ssl, buf, num, readbytes);
  if (ok > 0 && readbytes && *readbytes > 0) Feed(ssl, buf, *readbytes, false, MonotonicMicros(), io.fd());
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
  Original<&awf_functions::SSL_free>()(ssl);
}

}  // namespace

// Every tap lock is taken around fork(), so that the child finds the map and each connection's
// tracker whole, then re-made in the child, whose only thread is the one that took them. Waiting
// for them cannot deadlock: a holder takes none of the engine's other locks and calls nothing
// outside the tap (parsing and one trace write), and no hook holds g_mu and a TapState's mu at
// once. (Re-making the locks in the child alone would never wait, but would hand it a tracker
// torn in the middle of an update.)
void TapLockForFork() {
  g_mu.lock();
  if (g_taps) {
    for (auto& [ssl, t] : *g_taps) t->mu.lock();
  }
}

void TapUnlockAfterFork() {
  if (g_taps) {
    for (auto& [ssl, t] : *g_taps) t->mu.unlock();
  }
  g_mu.unlock();
}

void TapResetInChild() {
  new (&g_mu) std::mutex;
  if (g_taps) {
    for (auto& [ssl, t] : *g_taps) {
      new (&t->mu) std::mutex;
      t->inherited = true;
    }
  }
}

// Other threads may still run: each connection is taken under its locks (g_mu, then its own, the
// order of the fork handler; no hook holds both), and its tracker stopped, so nothing is reported
// twice.
void TapFlushAtExit() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_taps) return;
  for (auto& [ssl, t] : *g_taps) {
    if (t->server || t->inherited) continue;
    std::lock_guard<std::mutex> state_lock(t->mu);
    t->http.OnExit(MonotonicMicros());
    Report(*t);
  }
}

bool TapEnabled() { return engine().trace.on() && engine().settings.tap == TapMode::kAuto; }

void InstallTapHooks(awf_functions& hooks) {
  hooks.SSL_write = SslWrite;
  hooks.SSL_write_ex = SslWriteEx;
  hooks.SSL_read = SslRead;
  hooks.SSL_read_ex = SslReadEx;
  hooks.SSL_free = SslFree;
}

namespace {

struct PatchTarget {
  const char* name;
  void* hook;
  bool required;
  void (*publish)(void* trampoline);
};

template <auto kMember, auto kHook>
PatchTarget Target(const char* name, bool required) {
  return {name, reinterpret_cast<void*>(kHook), required, [](void* trampoline) {
            using Fn = std::remove_reference_t<decltype(g_trampolines.*kMember)>;
            std::atomic_ref(g_trampolines.*kMember).store(reinterpret_cast<Fn>(trampoline), std::memory_order_release);
          }};
}

void TraceTapPatch(absl::string_view outcome, absl::string_view detail) {
  const Trace& t = engine().trace;
  if (!t.on()) return;
  JsonWriter w = t.Event("tap");
  w.Field("mode", "patch").Field("outcome", outcome).Field(outcome == "patched" ? "functions" : "reason", detail);
  t.Emit(w);
}

}  // namespace

void PatchExecutableOpenSsl() {
  // The _ex forms arrived in OpenSSL 1.1.1; an executable may predate them.
  const PatchTarget targets[] = {
      Target<&awf_functions::SSL_write, SslWrite>("SSL_write", true),
      Target<&awf_functions::SSL_write_ex, SslWriteEx>("SSL_write_ex", false),
      Target<&awf_functions::SSL_read, SslRead>("SSL_read", true),
      Target<&awf_functions::SSL_read_ex, SslReadEx>("SSL_read_ex", false),
      Target<&awf_functions::SSL_free, SslFree>("SSL_free", true),
  };
  std::vector<PatchRequest> requests;
  std::vector<absl::string_view> names;
  for (const PatchTarget& t : targets) {
    ExecutableSymbol fn = FindInExecutable(t.name);
    if (!fn.address) {
      if (!t.required) continue;
      if (!requests.empty()) TraceTapPatch("refused", absl::StrCat("the executable does not define ", t.name));
      return;  // an executable without OpenSSL of its own: nothing to patch, nothing to say
    }
    requests.push_back({t.name, fn.address, fn.size, t.hook, t.publish});
    names.push_back(t.name);
  }
  if (Status s = PatchFunctions(requests); !s.ok()) {
    TraceTapPatch("refused", s.message());
    return;
  }
  // The accessors too come from the executable's OpenSSL (the front's search skips the
  // executable, whose definitions it never interposes).
  g_get_servername.store(reinterpret_cast<GetServername>(FindInExecutable("SSL_get_servername").address));
  g_get_fd.store(reinterpret_cast<GetFd>(FindInExecutable("SSL_get_fd").address));
  g_is_server.store(reinterpret_cast<IsServer>(FindInExecutable("SSL_is_server").address));
  g_patched.store(true);
  TraceTapPatch("patched", absl::StrJoin(names, ","));
}

}  // namespace awfshim
