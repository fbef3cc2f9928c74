// Per-call cost of hooked functions, with Google Benchmark. Every benchmark comes in a pair run in
// the same process, repetitions interleaved at random:
//   NAME:symbol  the call as the application makes it (through whatever LD_PRELOAD interposes)
//   NAME:libc    the same call straight into libc, through a pointer from libc.so.6's own handle
// so the difference is what the preloaded library adds per call, measured side by side — on a
// shared machine, far steadier than comparing separate processes. scripts/bench runs the binary
// under each configuration (no preload, the front inert / active, proxychains-ng); under no
// preload the two sides of a pair agree, which shows the noise.
//
//   hook_micro [--benchmark_* flags]
//
// Environment:
//   AWF_BENCH_LOAD_ENGINE=1   look up "localhost" before benchmarking, so that an active front
//                             has loaded its engine and every fd hook goes through its slot check
//   AWF_BENCH_ROUTED_NAME     also benchmark getaddrinfo of this name (a routed name: the shim's
//                             fake DNS; proxychains-ng's proxy_dns). `:symbol` only: libc would
//                             ask the DNS.
//   AWF_BENCH_TUNNEL_PROXY    HOST:PORT (loopback) where this process itself runs a minimal
//                             CONNECT proxy; set AWF_SHIM_PROXY to the same address. Adds write
//                             and read on a tunnelled fd: a connection to the routed name, which
//                             the shim carries through that proxy (port 7000: the proxy discards
//                             what it gets; port 7001: it sends an endless stream).
//
// The JSON context says which shim objects are mapped ("awfshim_engine", "proxychains"), so
// the driver can check that a configuration is what it claims.
#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include <benchmark/benchmark.h>

namespace {

using WriteFn = ssize_t (*)(int, const void*, size_t);
using ReadFn = ssize_t (*)(int, void*, size_t);
using GetaddrinfoFn = int (*)(const char*, const char*, const addrinfo*, addrinfo**);
using ConnectFn = int (*)(int, const sockaddr*, socklen_t);

// The calls as the application makes them.
struct Symbol {
  static constexpr const char* kName = "symbol";
  static ssize_t Write(int fd, const void* buf, size_t n) { return write(fd, buf, n); }
  static ssize_t Read(int fd, void* buf, size_t n) { return read(fd, buf, n); }
  static int Getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
    return getaddrinfo(node, service, hints, res);
  }
  static int Connect(int fd, const sockaddr* addr, socklen_t len) { return connect(fd, addr, len); }
};

// libc's own definitions, past any interposition.
struct Libc {
  static constexpr const char* kName = "libc";
  static inline WriteFn write_fn;
  static inline ReadFn read_fn;
  static inline GetaddrinfoFn getaddrinfo_fn;
  static inline ConnectFn connect_fn;
  static bool Resolve() {
    void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (!libc) return false;
    write_fn = reinterpret_cast<WriteFn>(dlsym(libc, "write"));
    read_fn = reinterpret_cast<ReadFn>(dlsym(libc, "read"));
    getaddrinfo_fn = reinterpret_cast<GetaddrinfoFn>(dlsym(libc, "getaddrinfo"));
    connect_fn = reinterpret_cast<ConnectFn>(dlsym(libc, "connect"));
    return write_fn && read_fn && getaddrinfo_fn && connect_fn;
  }
  static ssize_t Write(int fd, const void* buf, size_t n) { return write_fn(fd, buf, n); }
  static ssize_t Read(int fd, void* buf, size_t n) { return read_fn(fd, buf, n); }
  static int Getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
    return getaddrinfo_fn(node, service, hints, res);
  }
  static int Connect(int fd, const sockaddr* addr, socklen_t len) { return connect_fn(fd, addr, len); }
};

template <class Via>
void FdWriteDevNull(benchmark::State& state) {
  int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  char byte = 'x';
  for (auto _ : state) benchmark::DoNotOptimize(Via::Write(fd, &byte, 1));
  close(fd);
}

template <class Via>
void FdReadDevZero(benchmark::State& state) {
  int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  char byte;
  for (auto _ : state) benchmark::DoNotOptimize(Via::Read(fd, &byte, 1));
  close(fd);
}

template <class Via>
void FdWriteReadSocketpair(benchmark::State& state) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    state.SkipWithError("socketpair failed");
    return;
  }
  char byte = 'x';
  for (auto _ : state) {
    if (Via::Write(sv[0], &byte, 1) != 1 || Via::Read(sv[1], &byte, 1) != 1) {
      state.SkipWithError("write/read failed");
      break;
    }
  }
  close(sv[0]);
  close(sv[1]);
}

template <class Via>
void Lookup(benchmark::State& state, const char* name, int flags) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = flags;
  for (auto _ : state) {
    addrinfo* res = nullptr;
    int rc = Via::Getaddrinfo(name, "443", &hints, &res);
    if (rc != 0) {
      state.SkipWithError((std::string("getaddrinfo: ") + gai_strerror(rc)).c_str());
      break;
    }
    freeaddrinfo(res);
  }
}

// socket + connect + accept + two closes to a listener on 127.0.0.1 (loopback: never routed).
// The client closes first with SO_LINGER 0, so no connection lingers in TIME_WAIT and the
// ephemeral ports never run out however many iterations run.
template <class Via>
void ConnectLoopback(benchmark::State& state) {
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(listener, 64) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    state.SkipWithError("cannot listen on 127.0.0.1");
    close(listener);
    return;
  }
  const linger reset{1, 0};
  for (auto _ : state) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (Via::Connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      state.SkipWithError((std::string("connect: ") + strerror(errno)).c_str());
      close(fd);
      break;
    }
    int peer = accept(listener, nullptr, nullptr);
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(fd);
    close(peer);
  }
  close(listener);
}

// A minimal CONNECT proxy on loopback, for the tunnelled-fd benchmarks: answers every CONNECT
// with 200, then discards what the client sends (target port 7000) or sends zeros until the
// client goes away (any other port).
void ServeTunnel(int fd) {
  std::string head;
  char buf[65536];
  while (head.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = Libc::read_fn(fd, buf, sizeof buf);
    if (n <= 0) {
      close(fd);
      return;
    }
    head.append(buf, static_cast<size_t>(n));
  }
  static const char kOk[] = "HTTP/1.1 200 Connection established\r\n\r\n";
  Libc::write_fn(fd, kOk, sizeof kOk - 1);
  bool sink = head.find(":7000 ") != std::string::npos;
  std::memset(buf, 0, sizeof buf);
  while (sink ? Libc::read_fn(fd, buf, sizeof buf) > 0 : send(fd, buf, sizeof buf, MSG_NOSIGNAL) > 0) {
  }
  close(fd);
}

bool StartTunnelProxy(const char* hostport) {
  std::string spec = hostport;
  size_t colon = spec.rfind(':');
  if (colon == std::string::npos) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(spec.c_str() + colon + 1)));
  if (inet_pton(AF_INET, spec.substr(0, colon).c_str(), &addr.sin_addr) != 1) return false;
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listener, 16) != 0) return false;
  std::thread([listener] {
    for (;;) {
      int fd = accept(listener, nullptr, nullptr);
      if (fd >= 0) std::thread(ServeTunnel, fd).detach();
    }
  }).detach();
  return true;
}

// A connection to the routed name through the shim: the shim connects the fd to the proxy and
// opens the tunnel inside connect (blocking socket).
int OpenTunnel(const char* name, const char* port) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(name, port, &hints, &res) != 0) return -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int rc = connect(fd, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (rc != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

std::string g_routed_name;

template <class Via>
void TunnelWrite(benchmark::State& state) {
  int fd = OpenTunnel(g_routed_name.c_str(), "7000");
  if (fd < 0) {
    state.SkipWithError((std::string("tunnel: ") + strerror(errno)).c_str());
    return;
  }
  char byte = 'x';
  for (auto _ : state) {
    if (Via::Write(fd, &byte, 1) != 1) {
      state.SkipWithError("write failed");
      break;
    }
  }
  close(fd);
}

// One byte per read, from a socket the proxy keeps full: every read returns at once, so the
// figure is the call's own cost, not the producer's pace.
template <class Via>
void TunnelRead(benchmark::State& state) {
  int fd = OpenTunnel(g_routed_name.c_str(), "7001");
  if (fd < 0) {
    state.SkipWithError((std::string("tunnel: ") + strerror(errno)).c_str());
    return;
  }
  char byte;
  for (auto _ : state) {
    if (Via::Read(fd, &byte, 1) != 1) {
      state.SkipWithError("read failed");
      break;
    }
  }
  close(fd);
}

template <class Via>
void RegisterPairHalf(const char* routed, bool tunnels) {
  auto name = [](const char* base) { return std::string(base) + ":" + Via::kName; };
  benchmark::RegisterBenchmark(name("fd/write_devnull").c_str(), FdWriteDevNull<Via>)->UseRealTime();
  benchmark::RegisterBenchmark(name("fd/read_devzero").c_str(), FdReadDevZero<Via>)->UseRealTime();
  benchmark::RegisterBenchmark(name("fd/write_read_socketpair").c_str(), FdWriteReadSocketpair<Via>)->UseRealTime();
  benchmark::RegisterBenchmark(name("dns/numeric").c_str(),
                               [](benchmark::State& s) { Lookup<Via>(s, "127.0.0.1", AI_NUMERICHOST); })
      ->UseRealTime();
  benchmark::RegisterBenchmark(name("dns/hosts_file").c_str(),
                               [](benchmark::State& s) { Lookup<Via>(s, "localhost", 0); })
      ->UseRealTime();
  if (routed && std::strcmp(Via::kName, "symbol") == 0) {
    static std::string routed_name = routed;
    benchmark::RegisterBenchmark(name("dns/routed").c_str(),
                                 [](benchmark::State& s) { Lookup<Via>(s, routed_name.c_str(), 0); })
        ->UseRealTime();
  }
  benchmark::RegisterBenchmark(name("connect/loopback").c_str(), ConnectLoopback<Via>)->UseRealTime();
  if (tunnels) {
    benchmark::RegisterBenchmark(name("tunnel/write_1byte").c_str(), TunnelWrite<Via>)->UseRealTime();
    benchmark::RegisterBenchmark(name("tunnel/read_1byte").c_str(), TunnelRead<Via>)->UseRealTime();
  }
}

bool Mapped(const char* fragment) {
  struct Search {
    const char* fragment;
    bool found;
  } search{fragment, false};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* arg) {
        auto* s = static_cast<Search*>(arg);
        if (info->dlpi_name && std::strstr(info->dlpi_name, s->fragment)) s->found = true;
        return s->found ? 1 : 0;
      },
      &search);
  return search.found;
}

}  // namespace

int main(int argc, char** argv) {
  if (!Libc::Resolve()) {
    std::fprintf(stderr, "hook_micro: cannot find libc's own write/read/getaddrinfo/connect\n");
    return 1;
  }
  const char* load = std::getenv("AWF_BENCH_LOAD_ENGINE");
  if (load && std::strcmp(load, "1") == 0) {
    addrinfo* res = nullptr;
    if (getaddrinfo("localhost", "443", nullptr, &res) == 0) freeaddrinfo(res);
  }
  const char* routed = std::getenv("AWF_BENCH_ROUTED_NAME");
  if (routed && !*routed) routed = nullptr;
  const char* proxy = std::getenv("AWF_BENCH_TUNNEL_PROXY");
  bool tunnels = routed && proxy && *proxy;
  if (tunnels) {
    g_routed_name = routed;
    if (!StartTunnelProxy(proxy)) {
      std::fprintf(stderr, "hook_micro: cannot listen on AWF_BENCH_TUNNEL_PROXY=%s\n", proxy);
      return 1;
    }
  }
  RegisterPairHalf<Symbol>(routed, tunnels);
  RegisterPairHalf<Libc>(routed, tunnels);

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  // Sampled after any lookup above and before the benchmarks make their own.
  benchmark::AddCustomContext("awfshim_engine", Mapped("libawfshim-core") ? "loaded" : "not loaded");
  benchmark::AddCustomContext("proxychains", Mapped("libproxychains") ? "preloaded" : "no");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
