// gen_trace OUT MEGABYTES [SEED]: writes a synthetic awf-shim trace of about MEGABYTES MiB for
// benchmarking awf-shim-trace. The mix follows the real traces (tests/trace_tool/data): per
// process an init, then connections (dns, connect, tunnel, tls, a few http exchanges, close);
// about 4 % of tunnels refused by the proxy (403 ERR_ACCESS_DENIED), some direct connections,
// occasional failed lookups and HTTP errors. Deterministic for a given seed.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

namespace {

uint64_t g_rng = 0x2545f4914f6cdd1dULL;
uint64_t Rand() {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return g_rng;
}
uint64_t Below(uint64_t n) { return Rand() % n; }

const char* const kHosts[] = {
    "api.contoso-aw.ghe.com",         "copilot-api.contoso-aw.ghe.com", "contoso-aw.ghe.com",
    "copilot-telemetry-service.contoso-aw.ghe.com", "api.github.com", "api.githubcopilot.com",
    "api.business.githubcopilot.com", "uploads.github.com", "codeload.github.com", "raw.githubusercontent.com",
    "objects.githubusercontent.com",  "api.enterprise.githubcopilot.com",
};
const char* const kExes[] = {"copilot", "node", "curl", "python3", "git-remote-https", "gh"};
const char* const kPaths[] = {
    "/copilot_internal/user", "/copilot_internal/v2/token", "/models", "/chat/completions", "/responses",
    "/repos/contoso/app", "/repos/contoso/app/issues?state=open&per_page=50", "/user", "/graphql",
    "/repos/contoso/app/pulls/17/files?page=2", "/telemetry", "/agents", "/search/code?q=retry+policy",
};
const char* const kMethods[] = {"GET", "GET", "GET", "POST", "POST", "PATCH"};
const char* const kTypes[] = {"application/json", "application/json; charset=utf-8", "text/event-stream"};

struct Out {
  FILE* f;
  std::string buf;
  uint64_t written = 0;
  void Flush() {
    fwrite(buf.data(), 1, buf.size(), f);
    written += buf.size();
    buf.clear();
  }
};

struct Clock {
  int64_t us;
  char ts[96];
  const char* Now() {
    us += static_cast<int64_t>(Below(4000)) + 20;
    time_t s = static_cast<time_t>(us / 1000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(us % 1000000));
    return ts;
  }
};

char line[4096];

void Emit(Out& o, int n) {
  o.buf.append(line, static_cast<size_t>(n));
  if (o.buf.size() >= (1 << 20)) o.Flush();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: gen_trace OUT MEGABYTES [SEED]\n");
    return 2;
  }
  const uint64_t target = strtoull(argv[2], nullptr, 10) << 20;
  if (argc > 3) g_rng ^= strtoull(argv[3], nullptr, 10) * 0x9e3779b97f4a7c15ULL;
  Out o{fopen(argv[1], "w"), {}};
  if (o.f == nullptr) {
    perror(argv[1]);
    return 1;
  }
  o.buf.reserve(2 << 20);
  Clock clock{1795892400LL * 1000000, {}};  // 2026-11-28T19:00:00Z
  int pid = 20000;
  while (o.written + o.buf.size() < target) {
    ++pid;
    const char* exe = kExes[Below(6)];
    const int main_tid = pid;
    int n = snprintf(line, sizeof line,
        "{\"ts\":\"%s\",\"pid\":%d,\"tid\":%d,\"exe\":\"%s\",\"ev\":\"init\",\"version\":\"0.1.0\",\"settings\":"
        "{\"proxy\":\"http://172.30.0.10:3128\",\"proxy_source\":\"HTTPS_PROXY\",\"route\":[\"github.com\","
        "\"*.github.com\",\"githubcopilot.com\",\"*.githubcopilot.com\",\"contoso-aw.ghe.com\","
        "\"*.contoso-aw.ghe.com\"],\"bypass\":[\"localhost\",\"127.0.0.0/8\",\"::1/128\",\"172.30.0.10/32\"],"
        "\"dns\":\"fake\",\"tap\":\"auto\",\"timeout_ms\":30000,\"config\":\"\"},\"refuse_routed\":false,"
        "\"errors\":[],\"warnings\":[]}\n",
        clock.Now(), pid, main_tid + 1, exe);
    Emit(o, n);
    const int conns = 1 + static_cast<int>(Below(12));
    for (int c = 0; c < conns; ++c) {
      const char* host = kHosts[Below(sizeof kHosts / sizeof kHosts[0])];
      const int fd = 20 + c;
      const int tid = main_tid + static_cast<int>(Below(6));
      const unsigned a = static_cast<unsigned>(Rand());
      if (Below(50) == 0) {
        n = snprintf(line, sizeof line,
            "{\"ts\":\"%s\",\"pid\":%d,\"tid\":%d,\"exe\":\"%s\",\"ev\":\"dns\",\"host\":\"%s\",\"family\":\"any\","
            "\"mode\":\"system\",\"error\":\"Name or service not known\"}\n",
            clock.Now(), pid, tid, exe, host);
        Emit(o, n);
        continue;
      }
      n = snprintf(line, sizeof line,
          "{\"ts\":\"%s\",\"pid\":%d,\"tid\":%d,\"exe\":\"%s\",\"ev\":\"dns\",\"host\":\"%s\",\"family\":\"any\","
          "\"mode\":\"fake\",\"addrs\":[\"198.%u.%u.%u\",\"[fd77:6166:7368:696d:%04x:%04x:%04x:%04x]\"]}\n",
          clock.Now(), pid, tid, exe, host, 18 + (a & 1), (a >> 8) & 255, (a >> 16) & 255, a & 0xffff,
          (a >> 16) & 0xffff, static_cast<unsigned>(Below(65536)), static_cast<unsigned>(Below(65536)));
      Emit(o, n);
      const bool direct = Below(10) == 0;
      n = snprintf(line, sizeof line,
          "{\"ts\":\"%s\",\"pid\":%d,\"tid\":%d,\"exe\":\"%s\",\"ev\":\"connect\",\"fd\":%d,\"addr\":\"198.%u.%u.%u:443\","
          "\"host\":\"%s\",\"decision\":\"%s\",\"reason\":\"%s\",\"nonblocking\":true}\n",
          clock.Now(), pid, main_tid, exe, fd, 18 + (a & 1), (a >> 8) & 255, (a >> 16) & 255, host,
          direct ? "direct" : "tunnel", direct ? "not a routed destination" : "routed name");
      Emit(o, n);
      const bool refused = !direct && Below(25) == 0;
      const double hs = 0.3 + static_cast<double>(Below(5000)) / 1000.0;
      if (!direct) {
        if (refused) {
          n = snprintf(line, sizeof line,
              "{\"ts\":\"%s\",\"pid\":%d,\"tid\":%d,\"exe\":\"%s\",\"ev\":\"tunnel\",\"fd\":%d,\"target\":\"%s:443\","
              "\"proxy\":\"172.30.0.10:3128\",\"result\":\"failed\",\"status\":403,\"status_line\":\"403 Forbidden\","
              "\"squid_error\":\"ERR_ACCESS_DENIED 0\",\"errno\":\"ECONNREFUSED\",\"reason\":\"the proxy refused "
              "CONNECT: 403 Forbidden\",\"ms\":%.3f}\n",
              clock.Now(), pid, main_tid + 1, exe, fd, host, hs);
        } else {
          n = snprintf(line, sizeof line,
              "{\"ts\":\"%s\",\"pid\":%d,\"tid\":%d,\"exe\":\"%s\",\"ev\":\"tunnel\",\"fd\":%d,\"target\":\"%s:443\","
              "\"proxy\":\"172.30.0.10:3128\",\"result\":\"open\",\"status\":200,\"status_line\":\"200 Connection "
              "established\",\"ms\":%.3f}\n",
              clock.Now(), pid, main_tid + 1, exe, fd, host, hs);
        }
        Emit(o, n);
      }
      uint64_t out_bytes = 0, in_bytes = 0;
      if (!refused) {
        n = snprintf(line, sizeof line,
            "{\"ts\":\"%s\",\"pid\":%d,\"tid\":%d,\"exe\":\"%s\",\"ev\":\"tls\",\"fd\":%d,\"host\":\"%s\",\"sni\":\"%s\","
            "\"alpn\":[\"h2\",\"http/1.1\"]}\n",
            clock.Now(), pid, main_tid, exe, fd, host, host);
        Emit(o, n);
        const int requests = static_cast<int>(Below(7));
        for (int r = 0; r < requests; ++r) {
          const char* path = kPaths[Below(sizeof kPaths / sizeof kPaths[0])];
          const uint64_t roll = Below(100);
          const int status = roll < 90 ? 200 : roll < 94 ? 404 : roll < 97 ? 401 : roll < 99 ? 429 : 502;
          const uint64_t req = Below(8000), resp = 50 + Below(40000);
          const double ttfb = 5 + static_cast<double>(Below(900000)) / 1000.0;
          const double ms = ttfb + static_cast<double>(Below(400000)) / 1000.0;
          out_bytes += req + 300;
          in_bytes += resp + 200;
          n = snprintf(line, sizeof line,
              "{\"ts\":\"%s\",\"pid\":%d,\"tid\":%d,\"exe\":\"%s\",\"ev\":\"http\",\"fd\":%d,\"method\":\"%s\","
              "\"host\":\"%s\",\"path\":\"%s\",\"status\":%d,\"content_type\":\"%s\",\"req_bytes\":%" PRIu64
              ",\"resp_bytes\":%" PRIu64 ",\"ttfb_ms\":%.3f,\"ms\":%.3f}\n",
              clock.Now(), pid, main_tid, exe, fd, kMethods[Below(6)], host, path, status, kTypes[Below(3)], req, resp,
              ttfb, ms);
          Emit(o, n);
        }
      }
      n = snprintf(line, sizeof line,
          "{\"ts\":\"%s\",\"pid\":%d,\"tid\":%d,\"exe\":\"%s\",\"ev\":\"close\",\"fd\":%d,\"host\":\"%s\",\"port\":443,"
          "\"kind\":\"%s\",\"bytes_out\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",%s\"ms\":%.3f}\n",
          clock.Now(), pid, main_tid, exe, fd, host, direct ? "direct" : "tunnel", out_bytes, in_bytes,
          Below(5) == 0 ? "\"open_at_exit\":true," : "", hs + static_cast<double>(Below(90000000)) / 1000.0);
      Emit(o, n);
    }
  }
  o.Flush();
  if (fclose(o.f) != 0) {
    perror(argv[1]);
    return 1;
  }
  return 0;
}
