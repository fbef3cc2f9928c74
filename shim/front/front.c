/* libawfshim.so — the preloaded front.
 *
 * Loaded into every process of the agent's command tree, so it depends on libc alone and costs
 * nothing where the shim is inert: the constructor resolves the real functions and reads two
 * variables; every hook then checks one word and forwards. Where the shim is active, the engine
 * (libawfshim-core.so) is loaded the first time the process looks up a name or connects an
 * AF_INET/AF_INET6 socket, never before: most of the tree (bash, git, ls) never does.
 */
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "awfshim/abi.h"

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
static bool g_load_failed;
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

struct symbol_search {
  const char *name;
  void *found;
};

static int search_object(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  struct symbol_search *search = arg;
  Dl_info self;
  if (!info->dlpi_name[0] || !dladdr((void *)&search_object, &self) || strcmp(info->dlpi_name, self.dli_fname) == 0)
    return 0; /* the executable (its own definitions are never interposed) or the front itself */
  void *handle = dlopen(info->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
  if (!handle) return 0;
  search->found = dlsym(handle, search->name);
  dlclose(handle); /* RTLD_NOLOAD took a reference */
  return search->found != NULL;
}

/* The next definition of `name`. A library loaded with RTLD_LOCAL after start (Python's _ssl
 * brings libssl that way) is outside RTLD_NEXT's reach: look through the loaded objects, never
 * loading one. */
static void *next_definition(const char *name) {
  void *sym = dlsym(RTLD_NEXT, name);
  if (sym) return sym;
  struct symbol_search search = {name, NULL};
  dl_iterate_phdr(search_object, &search);
  return search.found;
}

/* A hook can run before the constructor (another library's constructor made the call), or find
 * its library loaded only later. */
static inline void *real_or_find(void **slot, const char *name) {
  void *fn = __atomic_load_n(slot, __ATOMIC_RELAXED);
  if (AWF_LIKELY(fn)) return fn;
  fn = next_definition(name);
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

/* AWF_SHIM_ONLY: comma-separated executable names; the basename of argv[0] or of
 * /proc/self/exe must be one of them. */
static bool in_scope(const char *only) {
  if (!only || !*only) return true;
  char exe_path[4096];
  ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
  exe_path[n > 0 ? n : 0] = '\0';
  const char *names[] = {program_invocation_short_name, base_name(exe_path)};
  for (const char *p = only; *p;) {
    const char *end = strchrnul(p, ',');
    size_t len = (size_t)(end - p);
    for (size_t i = 0; i < 2; i++)
      if (len && strlen(names[i]) == len && memcmp(names[i], p, len) == 0) return true;
    p = *end ? end + 1 : end;
  }
  return false;
}

static const char *start_env(const char *name) {
  size_t len = strlen(name);
  for (char **e = g_environ_at_start; e && *e; e++)
    if (strncmp(*e, name, len) == 0 && (*e)[len] == '=') return *e + len + 1;
  return NULL;
}

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
  if (!is_on(getenv("AWF_SHIM"))) return;
  if (!in_scope(getenv("AWF_SHIM_ONLY"))) return;
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
      say("AWF_SHIM_CORE is too long", "", "; running without the shim");
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
  /* RTLD_DEEPBIND: the engine's libraries bind to each other before the global scope, where an
   * executable may export its own copies (Node 24 exports simdjson: the engine's parser ran on
   * Node's implementation objects). Sanitizer runtimes refuse DEEPBIND; their builds do without. */
  bool sanitized = dlsym(RTLD_DEFAULT, "__asan_init") || dlsym(RTLD_DEFAULT, "__tsan_init");
  void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL | (sanitized ? 0 : RTLD_DEEPBIND));
  if (!handle) {
    say("cannot load the engine: ", dlerror(), "; running without the shim");
    return NULL;
  }
  awf_engine_attach_fn attach = (awf_engine_attach_fn)dlsym(handle, AWF_ENGINE_ATTACH_SYMBOL);
  if (!attach) {
    say("not an awf-shim engine: ", path, "; running without the shim");
    return NULL;
  }
  const struct awf_front_info info = {
      .abi_version = AWF_ABI_VERSION,
      .real = &awf_real,
      .environ_at_start = g_environ_at_start,
      .exe = program_invocation_short_name,
      .front_path = front_path,
      .next_definition = next_definition,
      .at_start = g_loading_at_start,
  };
  return attach(&info); /* on failure the engine has said why */
}

static __attribute__((noinline)) const struct awf_engine *load_engine(void) {
  if (!g_active || tl_loading) return NULL;
  int saved_errno = errno;
  pthread_mutex_lock(&g_load_lock);
  const struct awf_engine *engine = g_engine;
  if (!engine && !g_load_failed) {
    tl_loading = 1;
    engine = open_engine();
    tl_loading = 0;
    if (engine) {
      g_slots = engine->fd_slots;
      __atomic_store_n(&g_engine, engine, __ATOMIC_RELEASE);
      __atomic_store_n(&g_slot_count, engine->fd_slot_count, __ATOMIC_RELEASE);
    } else {
      g_load_failed = true;
    }
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

#define AWF_WHEN_FD(fd) fd_tracked(fd)
#define AWF_WHEN_FD2(a, b) (fd_tracked(a) || fd_tracked(b))
#define AWF_WHEN_LOADED() AWF_UNLIKELY(loaded_engine() != NULL)
#define AWF_WHEN_LOOKUP() AWF_UNLIKELY(g_active && (loaded_engine() || load_engine()))
#define AWF_WHEN_INET(addr) AWF_UNLIKELY(g_active && is_inet(addr) && (loaded_engine() || load_engine()))
#define AWF_WHEN_FASTOPEN(flags, addr) AWF_UNLIKELY(((flags) & MSG_FASTOPEN) && AWF_WHEN_INET(addr))
#define AWF_WHEN_TAP() AWF_UNLIKELY(loaded_engine() && g_engine->tap_enabled)

/* The engine calls the real function through the same table: it is resolved before the call. */
#define AWF_HOOK(ret, name, params, args, when)             \
  AWF_EXPORT ret name params {                              \
    awf_##name##_fn real_fn = AWF_REAL(name);               \
    if (when) return g_engine->hooks.name args;             \
    return real_fn args;                                    \
  }
#define AWF_HOOK_CUSTOM(ret, name, params)
#include "awfshim/hooks.def"
#undef AWF_HOOK
#undef AWF_HOOK_CUSTOM

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
