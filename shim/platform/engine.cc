// awfshim_engine_attach: settings, trace, and the engine's hook table, once per process.
#include "engine.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "awfshim/redact.h"
#include "events.h"
#include "pump.h"

namespace awfshim {
namespace {

Engine* g_engine;
awf_functions g_hooks_table;
awf_engine g_published;

constexpr size_t kMaxConfigBytes = 1 << 20;
constexpr unsigned kMaxTrackedFds = 1 << 20;

// stderr is the application's: scrubbed like the trace, whatever a message quotes.
void Say(absl::string_view message) {
  std::string line = absl::StrCat("awf-shim: ", ScrubTokens(message), "\n");
  (void)!real().write(2, line.data(), line.size());
}

Environment CopyEnvironment(char* const* env) {
  Environment out;
  for (char* const* e = env; e && *e; e++) {
    absl::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq == absl::string_view::npos) continue;
    absl::string_view name = entry.substr(0, eq);
    if (IsSettingsVariable(name) || name.substr(0, 8) == "AWF_SHIM") {
      out.emplace(std::string(name), std::string(entry.substr(eq + 1)));
    }
  }
  return out;
}

StatusOr<std::string> ReadWholeFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFoundError(absl::StrCat("cannot open: ", std::strerror(errno)));
  std::string content;
  char buf[16384];
  for (;;) {
    ssize_t n = real().read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      real().close(fd);
      return DataLossError(absl::StrCat("cannot read: ", std::strerror(err)));
    }
    if (n == 0) break;
    content.append(buf, static_cast<size_t>(n));
    if (content.size() > kMaxConfigBytes) {
      real().close(fd);
      return ResourceExhaustedError("larger than 1 MiB");
    }
  }
  real().close(fd);
  return content;
}

unsigned TrackedFdLimit() {
  struct rlimit rl;
  rlim_t limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_max : 65536;
  return static_cast<unsigned>(std::clamp<rlim_t>(limit, 1024, kMaxTrackedFds));
}

void EmitInit(const Engine& e) {
  if (!e.trace.on()) return;
  const Settings& s = e.settings;
  JsonWriter w = e.trace.Event("init");
  w.Field("version", AWFSHIM_VERSION);
  w.Key("settings").BeginObject();
  if (s.proxy) {
    w.Field("proxy", s.proxy->Redacted()).Field("proxy_source", s.proxy_source);
  } else {
    w.Key("proxy").Null();
  }
  w.Key("route").BeginArray();
  for (const auto& p : s.rules.route()) w.String(p.ToString());
  w.EndArray().Key("bypass").BeginArray();
  for (const auto& p : s.rules.bypass_names()) w.String(p.ToString());
  for (const auto& c : s.rules.bypass_addresses()) w.String(c.ToString());
  w.EndArray();
  w.Field("dns", s.dns == DnsMode::kFake ? "fake" : "system")
      .Field("tap", s.tap == TapMode::kAuto ? "auto" : "off")
      .Field("timeout_ms", s.timeout_ms)
      .Field("config", s.config_path)
      .EndObject();
  w.Field("refuse_routed", s.refuse_routed());
  w.Key("errors").BeginArray();
  for (const auto& err : s.errors) w.String(err.ToString());
  w.EndArray().Key("warnings").BeginArray();
  for (const auto& warning : s.warnings) w.String(warning);
  w.EndArray();
  e.trace.Emit(w);
}

void BeforeFork() {
  engine().proxy_mu.lock();
  engine().book.LockForFork();
  engine().pool.LockForFork();
  PumpLockForFork();
  TapLockForFork();
  engine().trace.LockForFork();  // last: the tap writes events while holding its own locks
}

void AfterForkInParent() {
  engine().trace.UnlockAfterFork();
  TapUnlockAfterFork();
  PumpUnlockAfterFork();
  engine().pool.UnlockAfterFork();
  engine().book.UnlockAfterFork();
  engine().proxy_mu.unlock();
}

// The child has one thread: every lock another thread held is re-made, the pump starts afresh.
// The connections it inherits are the parent's too (see Conn::inherited).
void AfterForkInChild() {
  engine().pid = getpid();
  engine().trace.UnlockAfterFork();
  engine().trace.ReopenInChild();  // a %p trace: the child's events go to a file of its own
  TapResetInChild();
  PumpResetInChild();
  engine().pool.ResetLocksInChild();
  engine().book.UnlockAfterFork();
  engine().proxy_mu.unlock();
  for (int fd = 0; fd <= engine().max_tracked_fd.load(); fd++) {
    if (Conn* c = ConnFor(fd)) {
      c->inherited = true;
      c->bytes_out.store(0);
      c->bytes_in.store(0);
    }
  }
}

// Long-lived clients (the Copilot CLI among them) exit without closing their connections: their
// byte counts still belong in the trace. Conns are never freed, so reading them here is safe
// even while other threads run on.
__attribute__((destructor)) void TraceOpenConnectionsAtExit() {
  if (!g_engine || !g_engine->trace.on()) return;
  TapFlushAtExit();
  for (int fd = 0; fd <= g_engine->max_tracked_fd.load(); fd++) {
    if (Conn* c = ConnFor(fd); c && c->fd == fd) TraceClose(*c, /*at_exit=*/true);
  }
  g_engine->trace.ReportDropsAtExit();
}

// `closing` is about to be closed while dup()s of it live on, and the shim reads, writes and
// polls the connection through it: move to one of the others before the number can go to
// another file (the handshake would then be spoken into that file). c.mu held. Rare (a dup of a
// connection and a close of the original), so a scan of the fd table will do.
void MoveToAnotherFd(Conn& c, int closing) {
  int other = -1;
  for (int fd = 0; fd <= engine().max_tracked_fd.load() && other < 0; fd++) {
    if (fd != closing && ConnFor(fd) == &c) other = fd;
  }
  bool watched = c.watched;
  if (watched) PumpUnwatch(c);
  c.fd = other;  // -1 when the others are being closed too: the last close ends the connection
  if (watched && other >= 0) PumpWatch(c);
}

}  // namespace

Engine& engine() { return *g_engine; }

thread_local bool tl_in_shim __attribute__((tls_model("initial-exec"))) = false;

namespace {
bool SocketIdentity(int fd, uint64_t* dev, uint64_t* ino) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  *dev = st.st_dev;
  *ino = st.st_ino;
  return true;
}
}  // namespace

Conn* CheckedConnFor(int fd) {
  Conn* c = ConnFor(fd);
  uint64_t dev, ino;
  if (!c || (SocketIdentity(fd, &dev, &ino) && dev == c->socket_dev && ino == c->socket_ino)) return c;
  UntrackFd(fd);  // closed behind libc's back; the number now holds another file, or none
  return nullptr;
}

void TrackConn(int fd, Conn* c) {
  if (engine().fds.Get(fd) > FdTable::kOwned) UntrackFd(fd);  // a close we never saw
  SocketIdentity(fd, &c->socket_dev, &c->socket_ino);
  engine().fds.Set(fd, reinterpret_cast<uintptr_t>(c));
  int max = engine().max_tracked_fd.load();
  while (fd > max && !engine().max_tracked_fd.compare_exchange_weak(max, fd)) {
  }
}

void UntrackFd(int fd) {
  uintptr_t v = engine().fds.Get(fd);
  if (v <= FdTable::kOwned) return;
  if (engine().fds.Exchange(fd, 0) != v) return;  // another thread got there first
  Conn* c = reinterpret_cast<Conn*>(v);
  if (c->fd_refs.fetch_sub(1) != 1) {
    std::lock_guard<std::mutex> lock(c->mu);
    if (c->fd == fd) MoveToAnotherFd(*c, fd);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(c->mu);
    PumpUnwatch(*c);
    TraceClose(*c);
  }
  engine().pool.Release(c);
}

}  // namespace awfshim

extern "C" __attribute__((visibility("default"))) const awf_engine* awfshim_engine_attach(const awf_front_info* front) {
  using namespace awfshim;
  if (front->abi_version != AWF_ABI_VERSION) {
    std::string line = absl::StrCat("awf-shim: the engine (ABI ", AWF_ABI_VERSION, ") does not match the front (ABI ",
                                    front->abi_version, "); failing closed: TCP connections other than to loopback and the proxy are refused\n");
    (void)!front->real->write(2, line.data(), line.size());
    return nullptr;
  }
  auto* e = new Engine;
  g_engine = e;
  e->real = front->real;
  e->next_definition = front->next_definition;
  e->exe = front->exe ? front->exe : "";
  e->pid = getpid();
  e->settings = BuildSettings(CopyEnvironment(front->environ_at_start), ReadWholeFile);
  if (!e->fds.Init(TrackedFdLimit())) {
    Say("cannot reserve the fd table; failing closed: TCP connections other than to loopback and the proxy are refused");
    return nullptr;
  }
  if (Status s = e->trace.Open(e->settings.trace, e->exe, e->real); !s.ok()) Say(s.message());
  if (e->trace.on() && e->trace.owns(e->trace.fd())) MarkOwnedFd(e->trace.fd());

  for (const ConfigError& err : e->settings.errors) {
    Say(absl::StrCat(err.ToString(), "; routed connections are refused"));
    if (e->trace.on()) {
      JsonWriter w = e->trace.Event("error");
      w.Field("where", err.where).Field("message", err.message).Field("effect", "refuse routed connections");
      e->trace.Emit(w);
    }
  }
  EmitInit(*e);

  pthread_atfork(BeforeFork, AfterForkInParent, AfterForkInChild);
  g_hooks_table = *front->real;
  InstallDnsHooks(g_hooks_table);
  InstallSocketHooks(g_hooks_table);
  InstallIoHooks(g_hooks_table);
  InstallFdHooks(g_hooks_table);
  InstallTapHooks(g_hooks_table);
  g_published.hooks = g_hooks_table;
  g_published.tap_enabled = TapEnabled();
  if (front->at_start && g_published.tap_enabled) PatchExecutableOpenSsl();
  g_published.fd_slots = e->fds.raw();
  g_published.fd_slot_count = e->fds.size();
  return &g_published;
}
