/* libawfshim.so — the preloaded front.
 *
 * Loaded into every process of the agent's command tree, so it depends on libc alone and costs
 * nothing where the shim is inert: the constructor resolves the real functions and reads two
 * variables; every hook then checks one word and forwards. Where the shim is active, the engine
 * (libawfshim-core.so) is loaded the first time the process looks up a name or connects an
 * AF_INET/AF_INET6 socket, never before: most of the tree (bash, git, ls) never does.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "awfshim/abi.h"
#include "engine_file.h"
#include "fail_closed.h"
#include "next_definition.h"

#define AWF_EXPORT __attribute__((visibility("default")))
#define AWF_LIKELY(x) __builtin_expect(!!(x), 1)
#define AWF_UNLIKELY(x) __builtin_expect(!!(x), 0)

static struct awf_functions awf_real;

/* Set once, in the constructor. */
static bool g_active;
static char **g_environ_at_start;

/* Published by load_engine(): g_engine first, then g_slot_count (both release), so a reader that
 * sees a slot count also sees the engine. */
static const struct awf_engine *g_engine;
static const uintptr_t *g_slots;
static unsigned int g_slot_count;

static pthread_mutex_t g_load_lock = PTHREAD_MUTEX_INITIALIZER;
static bool g_loading_at_start;
static __thread int tl_loading __attribute__((tls_model("initial-exec")));

static void say(const char *a, const char *b, const char *c) {
  /* One write, so the line never interleaves with another process's. */
  char line[1024];
  size_t n = 0;
  const char *parts[] = {"awf-shim: ", a, b, c, "\n"};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    size_t len = parts[i] ? strlen(parts[i]) : 0;
    if (len > sizeof line - 1 - n) len = sizeof line - 1 - n;
    memcpy(line + n, parts[i], len);
    n += len;
  }
  if (awf_real.write) (void)!awf_real.write(2, line, n);
}

static void resolve_real_functions(void) {
#define AWF_HOOK(ret, name, params, args, when) awf_real.name = (awf_##name##_fn)dlsym(RTLD_NEXT, #name);
#define AWF_HOOK_CUSTOM(ret, name, params) awf_real.name = (awf_##name##_fn)dlsym(RTLD_NEXT, #name);
#include "awfshim/hooks.def"
#undef AWF_HOOK
#undef AWF_HOOK_CUSTOM
}

/* A hook can run before the constructor (another library's constructor made the call), or find
 * its library loaded only later. */
static inline void *real_or_find(void **slot, const char *name) {
  void *fn = __atomic_load_n(slot, __ATOMIC_RELAXED);
  if (AWF_LIKELY(fn)) return fn;
  fn = awf_next_definition(name);
  __atomic_store_n(slot, fn, __ATOMIC_RELAXED);
  return fn;
}
#define AWF_REAL(name) ((awf_##name##_fn)real_or_find((void **)&awf_real.name, #name))

static bool is_on(const char *v) {
  return v && (strcmp(v, "1") == 0 || strcasecmp(v, "on") == 0 || strcasecmp(v, "true") == 0);
}

static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

/* AWF_SHIM_ONLY: comma-separated executable names (blanks around a name ignored); the basename
 * of argv[0] or of /proc/self/exe must be one of them. */
static bool in_scope(const char *only) {
  if (!only || !*only) return true;
  char exe_path[4096];
  ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
  exe_path[n > 0 ? n : 0] = '\0';
  const char *names[] = {program_invocation_short_name, base_name(exe_path)};
  for (const char *p = only; *p;) {
    const char *end = strchrnul(p, ',');
    const char *first = p, *last = end;
    while (first < last && (*first == ' ' || *first == '\t')) first++;
    while (last > first && (last[-1] == ' ' || last[-1] == '\t')) last--;
    size_t len = (size_t)(last - first);
    for (size_t i = 0; i < 2; i++)
      if (len && strlen(names[i]) == len && memcmp(names[i], first, len) == 0) return true;
    p = *end ? end + 1 : end;
  }
  return false;
}

static const char *start_env(const char *name) { return awf_env_lookup(g_environ_at_start, name); }

static void snapshot_environ(void) {
  /* The strings of the initial environment live for the whole process; the array may not. */
  size_t n = 0;
  while (environ && environ[n]) n++;
  g_environ_at_start = malloc((n + 1) * sizeof *g_environ_at_start);
  if (!g_environ_at_start) return;
  if (n) memcpy(g_environ_at_start, environ, n * sizeof *g_environ_at_start);
  g_environ_at_start[n] = NULL;
}

/* Fork waits for a load in progress, so a child never inherits a half-taken lock. */
static void before_fork(void) { pthread_mutex_lock(&g_load_lock); }
static void after_fork(void) { pthread_mutex_unlock(&g_load_lock); }

static const struct awf_engine *load_engine(void);

/* An executable with OpenSSL of its own (Node.js) calls it directly, past any interposition; the
 * engine patches those functions, which it may do only now, before the application starts
 * threads. The first SSL_write in the lookup scope then belongs to the executable, not to us. */
int awf_front_SSL_write(void *ssl, const void *buf, int num) __attribute__((alias("SSL_write"), visibility("hidden")));
static bool executable_defines_ssl(void) {
  /* The hidden alias names our own definition; `&SSL_write` would be the interposed one. */
  void *first = dlsym(RTLD_DEFAULT, "SSL_write");
  return first && first != (void *)&awf_front_SSL_write;
}

__attribute__((constructor)) static void awf_front_init(void) {
  resolve_real_functions();
  /* From environ itself, not getenv: another preloaded library's getenv hook may not be ready
   * (or may hide variables) while constructors run. */
  if (!is_on(awf_env_lookup(environ, "AWF_SHIM"))) return;
  if (!in_scope(awf_env_lookup(environ, "AWF_SHIM_ONLY"))) return;
  snapshot_environ();
  if (!g_environ_at_start) return;
  g_active = true;
  pthread_atfork(before_fork, after_fork, after_fork);
  if (executable_defines_ssl()) {
    g_loading_at_start = true;
    load_engine();
    g_loading_at_start = false;
  }
}

static const struct awf_engine *open_engine(void) {
  char path[4096];
  const char *configured = start_env("AWF_SHIM_CORE");
  Dl_info self;
  const char *front_path = dladdr((void *)&awf_front_init, &self) && self.dli_fname ? self.dli_fname : "";
  if (configured && *configured) {
    if (strlen(configured) >= sizeof path) {
      say("AWF_SHIM_CORE is too long", "", AWF_FAIL_CLOSED);
      return NULL;
    }
    strcpy(path, configured);
  } else {
    const char *slash = strrchr(front_path, '/');
    size_t dir = slash ? (size_t)(slash - front_path) + 1 : 0;
    static const char core[] = "libawfshim-core.so";
    if (dir + sizeof core > sizeof path) return NULL;
    memcpy(path, front_path, dir);
    memcpy(path + dir, core, sizeof core);
  }
  /* No RTLD_DEEPBIND: the engine carries its libraries inside and imports nothing but glibc's C
   * functions (tests/release/elf_portable.sh), so there is no copy of ours a host could displace;
   * and DEEPBIND would put libc ahead of what the process itself interposes (its malloc, the
   * firewall's getenv hook) and is refused by the sanitizer runtimes. */
  char bad[512];
  if (!awf_engine_file_ok(path, bad, sizeof bad)) {
    say("cannot load the engine: ", bad, AWF_FAIL_CLOSED);
    awf_trace_load_failure(&awf_real, g_environ_at_start, "cannot load the engine: ", bad);
    return NULL;
  }
  void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *why = dlerror();
    say("cannot load the engine: ", why, AWF_FAIL_CLOSED);
    awf_trace_load_failure(&awf_real, g_environ_at_start, "cannot load the engine: ", why);
    return NULL;
  }
  awf_engine_attach_fn attach = (awf_engine_attach_fn)dlsym(handle, AWF_ENGINE_ATTACH_SYMBOL);
  if (!attach) {
    say("not an awf-shim engine: ", path, AWF_FAIL_CLOSED);
    awf_trace_load_failure(&awf_real, g_environ_at_start, "not an awf-shim engine: ", path);
    return NULL;
  }
  const struct awf_front_info info = {
      .abi_version = AWF_ABI_VERSION,
      .real = &awf_real,
      .environ_at_start = g_environ_at_start,
      .exe = program_invocation_short_name,
      .front_path = front_path,
      .next_definition = awf_next_definition,
      .at_start = g_loading_at_start,
  };
  return attach(&info); /* on failure the engine has said why */
}

static __attribute__((noinline)) const struct awf_engine *load_engine(void) {
  if (!g_active || tl_loading) return NULL;
  int saved_errno = errno;
  pthread_mutex_lock(&g_load_lock);
  const struct awf_engine *engine = g_engine;
  if (!engine) {
    tl_loading = 1;
    engine = open_engine();
    if (!engine) engine = awf_fail_closed_engine(&awf_real, g_environ_at_start); /* under tl_loading: libc lookups */
    tl_loading = 0;
    g_slots = engine->fd_slots;
    __atomic_store_n(&g_engine, engine, __ATOMIC_RELEASE);
    __atomic_store_n(&g_slot_count, engine->fd_slot_count, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&g_load_lock);
  errno = saved_errno;
  return engine;
}

static inline const struct awf_engine *loaded_engine(void) {
  return __atomic_load_n(&g_engine, __ATOMIC_ACQUIRE);
}

static inline bool fd_tracked(int fd) {
  return AWF_UNLIKELY((unsigned)fd < __atomic_load_n(&g_slot_count, __ATOMIC_ACQUIRE) &&
                      __atomic_load_n(&g_slots[fd], __ATOMIC_RELAXED) != 0);
}

static inline bool is_inet(const struct sockaddr *addr) {
  return addr && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6);
}

static bool any_inet(const struct mmsghdr *vec, unsigned int vlen) {
  for (unsigned int i = 0; vec && i < vlen; i++)
    if (is_inet((const struct sockaddr *)vec[i].msg_hdr.msg_name)) return true;
  return false;
}

#define AWF_WHEN_FD(fd) fd_tracked(fd)
#define AWF_WHEN_FD2(a, b) (fd_tracked(a) || fd_tracked(b))
#define AWF_WHEN_LOADED() AWF_UNLIKELY(loaded_engine() != NULL)
#define AWF_WHEN_LOOKUP() AWF_UNLIKELY(g_active && (loaded_engine() || load_engine()))
#define AWF_WHEN_INET(addr) AWF_UNLIKELY(g_active && is_inet(addr) && (loaded_engine() || load_engine()))
#define AWF_WHEN_ANY_INET(vec, vlen) AWF_UNLIKELY(g_active && any_inet(vec, vlen) && (loaded_engine() || load_engine()))
#define AWF_WHEN_TAP() AWF_UNLIKELY(loaded_engine() && g_engine->tap_enabled)

/* The definition of an OpenSSL function that the caller at `site` is linked against, found once
 * per call site (the loader is asked then, never while the front holds a lock), else `fallback`.
 * A full table only costs the search on every call from further sites. */
#define AWF_SSL_SITES 32
struct ssl_sites {
  unsigned used;
  struct {
    void *site, *fn;
  } slot[AWF_SSL_SITES];
};

static void *ssl_definition_for(struct ssl_sites *sites, const char *name, void *site, void *fallback) {
  unsigned used = __atomic_load_n(&sites->used, __ATOMIC_ACQUIRE);
  for (unsigned i = 0; i < used && i < AWF_SSL_SITES; i++)
    if (__atomic_load_n(&sites->slot[i].site, __ATOMIC_ACQUIRE) == site)
      return __atomic_load_n(&sites->slot[i].fn, __ATOMIC_RELAXED);
  /* What the caller would bind to without the front: a definition in the global scope comes
   * first (curl's libssl; another preload's SSL_write), else the caller's own dependencies (a
   * module loaded RTLD_LOCAL with the libssl it links). */
  void *fn = dlsym(RTLD_NEXT, name);
  if (!fn) fn = awf_definition_seen_from(site, name);
  if (!fn) fn = fallback;
  unsigned i = __atomic_load_n(&sites->used, __ATOMIC_RELAXED);
  while (i < AWF_SSL_SITES && !__atomic_compare_exchange_n(&sites->used, &i, i + 1, false, __ATOMIC_ACQ_REL,
                                                           __ATOMIC_RELAXED)) {
  }
  if (i < AWF_SSL_SITES) { /* slot i is ours: the function first, then the site that finds it */
    __atomic_store_n(&sites->slot[i].fn, fn, __ATOMIC_RELAXED);
    __atomic_store_n(&sites->slot[i].site, site, __ATOMIC_RELEASE);
  }
  return fn;
}

/* The engine calls the real function through the same table: it is resolved before the call. */
#define AWF_HOOK(ret, name, params, args, when)             \
  AWF_EXPORT ret name params {                              \
    awf_##name##_fn real_fn = AWF_REAL(name);               \
    if (when) return g_engine->hooks.name args;             \
    return real_fn args;                                    \
  }
#define AWF_HOOK_CUSTOM(ret, name, params)
/* A process may hold two OpenSSL copies (a Python wheel bundling its own libssl beside the
 * system's); the front's unversioned SSL_* definitions capture the calls of both. Each call goes
 * on to the copy its caller is linked against, and to the engine only when that is the copy the
 * engine taps (the next definition after the front). */
#define AWF_HOOK_SSL(ret, name, params, args)                                                        \
  AWF_EXPORT ret name params {                                                                       \
    static struct ssl_sites sites;                                                                   \
    awf_##name##_fn tapped = AWF_REAL(name);                                                         \
    awf_##name##_fn own = (awf_##name##_fn)ssl_definition_for(&sites, #name, __builtin_return_address(0), \
                                                              (void *)tapped);                       \
    if (own == tapped && AWF_WHEN_TAP()) return g_engine->hooks.name args;                           \
    return own args;                                                                                 \
  }
#include "awfshim/hooks.def"
#undef AWF_HOOK
#undef AWF_HOOK_CUSTOM
#undef AWF_HOOK_SSL

/* fcntl's third argument is an int, a long or a pointer depending on cmd; on the ABIs we support
 * all of them travel in one register, which va_arg as a pointer reads back unchanged. */
#define AWF_FCNTL(name)                                    \
  AWF_EXPORT int name(int fd, int cmd, ...) {              \
    va_list ap;                                            \
    va_start(ap, cmd);                                     \
    void *arg = va_arg(ap, void *);                        \
    va_end(ap);                                            \
    if (fd_tracked(fd)) return g_engine->hooks.name(fd, cmd, arg); \
    return AWF_REAL(name)(fd, cmd, arg);                   \
  }
AWF_FCNTL(fcntl)
AWF_FCNTL(fcntl64)

/* The kernel's own calling convention, for syscall() numbers the front passes on before its
 * constructor has resolved libc's syscall: nothing here may depend on dlsym, which can be
 * running below us (a program's malloc calling syscall(SYS_mmap) while the loader resolves). */
static long raw_syscall(long n, long a, long b, long c, long d, long e, long f) {
  long ret;
#if defined(__x86_64__)
  register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = n, x0 __asm__("x0") = a, x1 __asm__("x1") = b, x2 __asm__("x2") = c,
                x3 __asm__("x3") = d, x4 __asm__("x4") = e, x5 __asm__("x5") = f;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  ret = x0;
#else
#error "raw_syscall: unsupported architecture"
#endif
  if ((unsigned long)ret > -4096UL) {
    errno = (int)-ret;
    return -1;
  }
  return ret;
}

/* syscall(): the numbers that end or copy an fd, and connect, go where their libc wrappers go
 * (libuv closes sockets with syscall(SYS_close), which a close hook never sees, leaving state
 * for the next owner of the number); every other number passes on untouched (torsocks denied
 * the rest with ENOSYS and broke programs calling getrandom or futex this way). */
AWF_EXPORT long syscall(long number, ...) {
  va_list ap;
  va_start(ap, number);
  long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
  long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
  va_end(ap);
  switch (number) {
    case SYS_close:
      if (fd_tracked((int)a)) return g_engine->hooks.close((int)a);
      break;
    case SYS_close_range:
      if (AWF_WHEN_LOADED()) return g_engine->hooks.close_range((unsigned)a, (unsigned)b, (int)c);
      break;
    case SYS_dup:
      if (fd_tracked((int)a)) return g_engine->hooks.dup((int)a);
      break;
#ifdef SYS_dup2
    case SYS_dup2:
      if (AWF_WHEN_FD2((int)a, (int)b)) return g_engine->hooks.dup2((int)a, (int)b);
      break;
#endif
    case SYS_dup3:
      if (AWF_WHEN_FD2((int)a, (int)b)) return g_engine->hooks.dup3((int)a, (int)b, (int)c);
      break;
    case SYS_connect:
      if (AWF_WHEN_INET((const struct sockaddr *)b))
        return g_engine->hooks.connect((int)a, (const struct sockaddr *)b, (socklen_t)c);
      break;
  }
  awf_syscall_fn real_fn = __atomic_load_n(&awf_real.syscall, __ATOMIC_RELAXED);
  return real_fn ? real_fn(number, a, b, c, d, e, f) : raw_syscall(number, a, b, c, d, e, f);
}
