// awfshim_engine_attach, the engine's one entry point: settings, trace and hook table, once per
// process; and what the engine does at fork() and at exit.
#include "engine.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "awfshim/redact.h"
#include "events.h"
#include "hooks.h"
#include "proxy_endpoint.h"
#include "pump.h"

namespace awfshim {
namespace {

awf_functions g_hooks_table;
awf_engine g_published;

constexpr size_t kMaxConfigBytes = 1 << 20;
// Every fd number the kernel hands out under its default fs.nr_open. The fd limits of the moment
// would not do: an fd inherited or made before the process lowered its limit stays usable above
// it. Reserved, not committed: only the pages of fds in use are ever touched.
constexpr unsigned kTrackedFds = 1 << 20;

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
  ProxyLockForFork();
  engine().book.LockForFork();
  engine().pool.LockForFork();
  engine().pump.LockForFork();
  TapLockForFork();
  engine().trace.LockForFork();  // last: the tap writes events while holding its own locks
}

void AfterForkInParent() {
  engine().trace.UnlockAfterFork();
  TapUnlockAfterFork();
  engine().pump.UnlockAfterFork();
  engine().pool.UnlockAfterFork();
  engine().book.UnlockAfterFork();
  ProxyUnlockAfterFork();
}

// The child has one thread: every lock another thread held is re-made, the pump starts afresh.
// The connections it inherits are the parent's too (see Conn::inherited).
void AfterForkInChild() {
  engine().pid = getpid();
  engine().trace.UnlockAfterFork();
  engine().trace.ReopenInChild();  // a %p trace: the child's events go to a file of its own
  TapResetInChild();
  engine().pump.ResetInChild();
  engine().pool.ResetLocksInChild();
  engine().book.UnlockAfterFork();
  ProxyUnlockAfterFork();
  for (int fd = 0; fd <= engine().fds.highest(); fd++) {
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
  if (!EngineAttached() || !engine().trace.on()) return;
  TapFlushAtExit();
  for (int fd = 0; fd <= engine().fds.highest(); fd++) {
    if (Conn* c = ConnFor(fd); c && c->fd == fd) engine().events.Close(*c, /*at_exit=*/true);
  }
  engine().trace.ReportDropsAtExit();
}

}  // namespace
}  // namespace awfshim

extern "C" __attribute__((visibility("default"))) const awf_engine* awfshim_engine_attach(const awf_front_info* front) {
  using namespace awfshim;
  if (front->abi_version != AWF_ABI_VERSION) {
    std::string line = absl::StrCat("awf-shim: the engine (ABI ", AWF_ABI_VERSION, ") does not match the front (ABI ",
                                    front->abi_version, "); failing closed: TCP connections other than to loopback and the proxy are refused\n");
    (void)!front->real->write(2, line.data(), line.size());
    return nullptr;
  }
  Engine* e = &NewEngine(*front->real);
  e->next_definition = front->next_definition;
  e->exe = front->exe ? front->exe : "";
  e->pid = getpid();
  e->settings = BuildSettings(CopyEnvironment(front->environ_at_start), ReadWholeFile);
  if (!e->fds.Init(kTrackedFds)) {
    Say("cannot reserve the fd table; failing closed: TCP connections other than to loopback and the proxy are refused");
    return nullptr;
  }
  if (Status s = e->trace.Open(e->settings.trace, e->exe, &e->real); !s.ok()) Say(s.message());
  if (e->trace.on() && e->trace.owns(e->trace.fd())) e->fds.Set(e->trace.fd(), FdTable::kOwned);

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
