// fake_tenant -- a TLS HTTP/1.1 stand-in for a GitHub Enterprise Cloud data-residency tenant
// (<slug>.ghe.com), for awf-shim's end-to-end tests with the real Copilot CLI. See README.md here.
//
//   fake_tenant --listen ADDR:PORT [--listen ...] --cert PEM --key PEM --slug SLUG --log FILE
//               [--model NAME] [--answer TEXT] [--endpoints chat|responses|both] [--port-file FILE]
//
// Loopback addresses only. A thread per connection; SIGTERM or SIGINT ends it with status 0.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>

#include "tenant_api.h"

namespace {

using namespace fake_tenant;
using namespace std::chrono_literals;

constexpr size_t kMaxHead = 64 * 1024;  // request line and header fields
constexpr size_t kMaxKept = 8 << 20;    // a body is parsed only up to this; the rest is counted
constexpr size_t kMaxConnections = 512;
constexpr int kHandshakeSeconds = 10, kIdleSeconds = 120;

struct Options {
  std::vector<std::string> listen;
  std::string cert, key, log, port_file;
  Settings tenant;
};

// The request log: one JSON object per line, each appended with a single write(2).
int g_log_fd = -1;
std::mutex g_log_mu;

// Live connections, so that a signal can end them all.
std::mutex g_mu;
std::condition_variable g_cv;
std::set<int> g_fds;  // the connection threads' sockets; closed only under g_mu

// ---- an HTTP/1.1 request head --------------------------------------------------------------------

struct Head {
  std::string method, target;
  bool http10 = false;
  std::vector<std::pair<std::string, std::string>> fields;  // names in lower case

  std::string_view get(std::string_view name) const {  // "" when absent
    for (const auto& [n, v] : fields)
      if (n == name) return v;
    return {};
  }
  bool has(std::string_view name) const {
    return std::any_of(fields.begin(), fields.end(), [&](const auto& f) { return f.first == name; });
  }
};

// "METHOD SP target SP HTTP/1.x" and "name: value" lines, CRLF-separated, without the blank line.
std::optional<Head> parse_head(std::string_view text) {
  Head h;
  size_t eol = text.find("\r\n");
  const std::string_view line = text.substr(0, eol);
  const size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == 0 || sp1 == std::string_view::npos || sp2 == sp1) return std::nullopt;
  h.method = line.substr(0, sp1);
  h.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  h.http10 = version == "HTTP/1.0";
  if ((!h.http10 && version != "HTTP/1.1") || h.target.empty() || h.target.find(' ') != std::string::npos ||
      !std::all_of(h.method.begin(), h.method.end(), [](unsigned char c) { return std::isupper(c); }))
    return std::nullopt;
  while (eol != std::string_view::npos) {
    text.remove_prefix(eol + 2);
    eol = text.find("\r\n");
    const std::string_view field = text.substr(0, eol);
    const size_t colon = field.find(':');
    if (colon == 0 || colon == std::string_view::npos || field[0] == ' ' || field[0] == '\t') return std::nullopt;
    h.fields.emplace_back(lower(field.substr(0, colon)), trim(field.substr(colon + 1)));
  }
  return h;
}

Request request_of(const Head& h) {
  Request q;
  q.method = h.method == "HEAD" ? "GET" : h.method;
  q.host = host_of(h.get("host"));
  q.path = h.target.substr(0, h.target.find('?'));  // a query may carry a secret: not even logged
  return q;
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 431: return "Request Header Fields Too Large";
    default: return "Unknown";
  }
}

// ---- one TLS connection: requests in a keep-alive loop ---------------------------------------------

class Connection {
 public:
  Connection(SSL* ssl, int fd, const Settings& tenant) : ssl_(ssl), fd_(fd), tenant_(tenant) {
    if (const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) sni_ = sni;
    const unsigned char* alpn = nullptr;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (alpn_len) alpn_ = std::string(reinterpret_cast<const char*>(alpn), alpn_len);
  }

  void serve() {
    for (;;) {
      while (buf_.starts_with("\r\n")) buf_.erase(0, 2);  // stray CRLF between requests
      size_t end;
      while ((end = buf_.find("\r\n\r\n")) == std::string::npos && buf_.size() <= kMaxHead)
        if (!fill()) return;  // the client went away, between requests or inside one
      if (end == std::string::npos || end > kMaxHead) return refuse(nullptr, 431, "Request header fields too large");
      const std::optional<Head> head = parse_head(std::string_view(buf_).substr(0, end));
      buf_.erase(0, end + 4);
      if (!head) return refuse(nullptr, 400, "Malformed request");
      if (iequals(head->get("expect"), "100-continue") && !send("HTTP/1.1 100 Continue\r\n\r\n")) return;
      Body body;
      if (const int got = read_body(*head, body)) return got < 0 ? void() : refuse(&*head, 400, "Malformed body");
      const std::string_view conn = head->get("connection");
      const bool keep = head->http10 ? iequals(conn, "keep-alive") : !iequals(conn, "close");
      if (!answer(*head, body, keep) || !keep) return finish();
    }
  }

 private:
  struct Body {
    std::string kept;  // the first kMaxKept bytes
    size_t bytes = 0;
    void add(std::string_view data) {
      bytes += data.size();
      kept.append(data.substr(0, kMaxKept - std::min(kMaxKept, kept.size())));
    }
  };

  bool fill() {
    char chunk[16384];
    const int n = SSL_read(ssl_, chunk, sizeof chunk);
    if (n <= 0) {
      const int err = SSL_get_error(ssl_, n);
      broken_ = err == SSL_ERROR_SYSCALL || err == SSL_ERROR_SSL;
      return false;
    }
    buf_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  bool send(std::string_view data) {
    while (!data.empty()) {
      const int n = SSL_write(ssl_, data.data(), static_cast<int>(std::min<size_t>(data.size(), 1 << 20)));
      if (n <= 0) return !(broken_ = true);
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  bool take(size_t n, Body& body) {  // n bytes from the connection into body
    while (n > 0) {
      if (buf_.empty() && !fill()) return false;
      const size_t k = std::min(n, buf_.size());
      body.add(std::string_view(buf_).substr(0, k));
      buf_.erase(0, k);
      n -= k;
    }
    return true;
  }

  int read_line(std::string& line) {  // a line of at most 4 KiB, CRLF dropped; returns as read_body
    size_t eol;
    while ((eol = buf_.find("\r\n")) == std::string::npos)
      if (buf_.size() > 4096 || !fill()) return buf_.size() > 4096 ? 400 : -1;
    line = buf_.substr(0, eol);
    buf_.erase(0, eol + 2);
    return 0;
  }

  int read_body(const Head& h, Body& body) {  // 0: read; -1: the client went away; 400: bad framing
    if (!h.has("transfer-encoding")) {
      const std::string_view cl = h.get("content-length");
      if (!h.has("content-length")) return 0;
      if (cl.empty() || cl.size() > 15 || cl.find_first_not_of("0123456789") != std::string::npos) return 400;
      return take(std::stoull(std::string(cl)), body) ? 0 : -1;
    }
    if (!lower(h.get("transfer-encoding")).ends_with("chunked")) return 400;
    std::string line;
    for (;;) {  // size[;extensions] CRLF data CRLF ... 0 CRLF
      if (const int got = read_line(line)) return got;
      char* end = nullptr;
      const unsigned long long size = std::strtoull(line.c_str(), &end, 16);
      if (!std::isxdigit(static_cast<unsigned char>(line[0])) || size > (1ull << 40) || (*end && *end != ';'))
        return 400;
      if (size == 0) break;
      Body crlf;
      if (!take(size, body) || !take(2, crlf)) return -1;
      if (crlf.kept != "\r\n") return 400;
    }
    do {  // trailer fields, discarded
      if (const int got = read_line(line)) return got;
    } while (!line.empty());
    return 0;
  }

  // Of the request headers only Host, the authorization scheme and the token's kind are logged.
  void log(const Head* h, const Request& q, int status, const std::string& id, size_t body_bytes) {
    auto opt = [](const std::optional<std::string>& s) { return s ? json_str(*s) : "null"; };
    timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char ts[32];
    std::snprintf(ts, sizeof ts, "%lld.%03ld", static_cast<long long>(now.tv_sec), now.tv_nsec / 1000000);
    const Auth auth = auth_of(h ? h->get("authorization") : "");
    const std::string line =
        std::string("{\"ts\":") + ts + ",\"host\":" + (h && h->has("host") ? json_str(q.host) : "null") +
        ",\"method\":" + (h ? json_str(h->method) : "null") + ",\"path\":" + (h ? json_str(q.path) : "null") +
        ",\"status\":" + std::to_string(status) + ",\"auth_scheme\":" + opt(auth.scheme) +
        ",\"token_kind\":" + opt(auth.token_kind) + ",\"model\":" + opt(q.model) +
        ",\"stream\":" + (q.stream ? (*q.stream ? "true" : "false") : "null") + ",\"sni\":" + opt(sni_) +
        ",\"alpn\":" + opt(alpn_) + ",\"request_id\":" + json_str(id) +
        ",\"body_bytes\":" + std::to_string(body_bytes) + "}\n";
    std::lock_guard lock(g_log_mu);
    if (write(g_log_fd, line.data(), line.size())) {}
  }

  std::string status_head(int status, const std::string& id, const std::string& type, bool keep) {
    return "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\nX-GitHub-Request-Id: " + id +
           "\r\nContent-Type: " + type + "\r\nConnection: " + (keep ? "keep-alive" : "close") + "\r\n";
  }

  bool answer(const Head& h, const Body& body, bool keep) {
    Request q = request_of(h);
    const std::string_view encoding = h.get("content-encoding");  // gzip: only counted
    if (body.bytes == body.kept.size() && (encoding.empty() || iequals(encoding, "identity")))
      scan_json_body(body.kept, q);
    const Reply r = route(tenant_, q);
    const std::string id = request_id();
    log(&h, q, r.status, id, body.bytes);  // first, so a client that has the answer finds the line
    std::string out = status_head(r.status, id, r.content_type, keep);
    if (r.events.empty()) {
      out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n\r\n";
      return send(h.method == "HEAD" ? out : out + r.body);
    }
    if (!send(out + "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n")) return false;
    for (size_t i = 0; i < r.events.size(); ++i) {
      if (i) std::this_thread::sleep_for(20ms);  // so that the events arrive one by one
      char size[24];
      std::snprintf(size, sizeof size, "%zx\r\n", r.events[i].size());
      if (!send(size + r.events[i] + "\r\n")) return false;
    }
    return send("0\r\n\r\n");
  }

  // An error that ends the connection. What the client still sends is drained, briefly, so
  // that closing with unread data (a TCP reset) does not destroy the answer before it is read.
  void refuse(const Head* h, int status, const char* message) {
    const std::string id = request_id(), body = "{\"message\":" + json_str(message) + "}";
    log(h, h ? request_of(*h) : Request{}, status, id, 0);
    if (!send(status_head(status, id, "application/json", false) +
              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body))
      return;
    finish();
    const timeval second{1, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &second, sizeof second);
    char sink[16384];
    const auto until = std::chrono::steady_clock::now() + 1s;
    for (size_t total = 0; total < kMaxKept && std::chrono::steady_clock::now() < until;) {
      const ssize_t n = recv(fd_, sink, sizeof sink, 0);
      if (n <= 0) break;
      total += static_cast<size_t>(n);
    }
  }

  void finish() {  // close_notify and FIN; the connection thread closes the socket
    if (!broken_) SSL_shutdown(ssl_);
    shutdown(fd_, SHUT_WR);
  }

  static std::string request_id() {  // GitHub's shape: hex groups joined by colons
    const std::string h = random_hex(14);
    return h.substr(0, 4) + ":" + h.substr(4, 5) + ":" + h.substr(9, 6) + ":" + h.substr(15, 6) + ":" + h.substr(21);
  }

  SSL* ssl_;
  int fd_;
  const Settings& tenant_;
  std::string buf_;  // received and not yet consumed
  std::optional<std::string> sni_, alpn_;
  bool broken_ = false;  // after a TLS or socket error: no close_notify
};

void connection_thread(SSL_CTX* ctx, int fd, const Settings& tenant) {
  auto timeouts = [fd](int seconds) {
    const timeval tv{seconds, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  };
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeouts(kHandshakeSeconds);
  if (SSL* ssl = SSL_new(ctx)) {
    if (SSL_set_fd(ssl, fd) == 1 && SSL_accept(ssl) == 1) {
      timeouts(kIdleSeconds);
      Connection(ssl, fd, tenant).serve();
    }
    SSL_free(ssl);
  }
  ERR_clear_error();
  std::lock_guard lock(g_mu);
  g_fds.erase(fd);
  close(fd);
  g_cv.notify_all();
}

// ---- setup ---------------------------------------------------------------------------------------

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen,
                void*) {
  static const unsigned char ours[] = "\x08http/1.1";
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, ours, sizeof ours - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;  // e.g. h2 alone: go on without ALPN
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

SSL_CTX* make_tls(const Options& opt) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx && SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 &&
      SSL_CTX_use_certificate_chain_file(ctx, opt.cert.c_str()) == 1 &&
      SSL_CTX_use_PrivateKey_file(ctx, opt.key.c_str(), SSL_FILETYPE_PEM) == 1 && SSL_CTX_check_private_key(ctx) == 1) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
    return ctx;
  }
  ERR_print_errors_fp(stderr);
  SSL_CTX_free(ctx);
  return nullptr;
}

// "127.0.0.3:443" or "[::1]:443" (port 0: any free one) → a listening socket and its actual "ADDR:PORT".
int bind_listener(const std::string& spec, std::string& bound) {
  const bool v6 = spec.starts_with('[');
  const size_t colon = v6 ? spec.find("]:") + 1 : spec.rfind(':');
  const std::string host = v6 ? spec.substr(1, colon - 2) : spec.substr(0, colon), port = spec.substr(colon + 1);
  sockaddr_storage ss{};
  auto* in4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (colon == 0 || colon == std::string::npos || port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535)
    return -1;
  if (!v6 && inet_pton(AF_INET, host.c_str(), &in4->sin_addr) == 1 && (ntohl(in4->sin_addr.s_addr) >> 24) == 127) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(static_cast<uint16_t>(std::stoul(port)));
  } else if (v6 && inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1 && IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(std::stoul(port)));
  } else {
    return -1;  // not a loopback address: this fake must never be reachable from elsewhere
  }
  const int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
  socklen_t len = sizeof ss;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
      (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one)) ||
      bind(fd, reinterpret_cast<sockaddr*>(&ss), v6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in)) ||
      listen(fd, 128) || getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len)) {
    std::fprintf(stderr, "fake_tenant: %s: %s\n", spec.c_str(), std::strerror(errno));
    if (fd >= 0) close(fd);
    return -2;
  }
  bound = (v6 ? "[" + host + "]" : host) + ":" + std::to_string(ntohs(v6 ? in6->sin6_port : in4->sin_port));
  return fd;
}

bool write_port_file(const std::string& path, const std::string& text) {  // atomically: tmp + rename
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return false;
  const bool ok = std::fputs(text.c_str(), f) >= 0 && std::fclose(f) == 0;
  return (ok && std::rename(tmp.c_str(), path.c_str()) == 0) || (std::remove(tmp.c_str()), false);
}

bool parse_args(int argc, char** argv, Options& opt) {
  for (int i = 1; i < argc; ++i) {
    std::string name = argv[i], value;
    if (const size_t eq = name.find('='); name.starts_with("--") && eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    }
    if (name == "--listen") opt.listen.push_back(value);
    else if (name == "--cert") opt.cert = value;
    else if (name == "--key") opt.key = value;
    else if (name == "--slug") opt.tenant.slug = lower(value);
    else if (name == "--log") opt.log = value;
    else if (name == "--model") opt.tenant.model = value;
    else if (name == "--answer") opt.tenant.answer = value;
    else if (name == "--port-file") opt.port_file = value;
    else if (name == "--endpoints" && value == "chat") opt.tenant.endpoints = R"("/chat/completions")";
    else if (name == "--endpoints" && value == "responses") opt.tenant.endpoints = R"("/responses")";
    else if (name == "--endpoints" && value == "both") opt.tenant.endpoints = R"("/chat/completions","/responses")";
    else return false;
  }
  const std::string& slug = opt.tenant.slug;
  return !opt.listen.empty() && !opt.cert.empty() && !opt.key.empty() && !opt.log.empty() && !opt.tenant.model.empty() &&
         !slug.empty() && slug.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (!parse_args(argc, argv, opt)) {
    std::fprintf(stderr, "usage: fake_tenant --listen ADDR:PORT [--listen ...] --cert PEM --key PEM --slug SLUG\n"
                         "                   --log FILE [--model NAME] [--answer TEXT] [--endpoints chat|responses|both] [--port-file FILE]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // inherited by every thread; read from signal_fd
  const int signal_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);

  SSL_CTX* ctx = make_tls(opt);
  if (!ctx) return 1;
  g_log_fd = open(opt.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (signal_fd < 0 || g_log_fd < 0) {
    std::fprintf(stderr, "fake_tenant: %s: %s\n", opt.log.c_str(), std::strerror(errno));
    return 1;
  }
  std::vector<pollfd> polls{{signal_fd, POLLIN, 0}};
  std::string bound_list;
  for (const auto& spec : opt.listen) {
    std::string bound;
    const int fd = bind_listener(spec, bound);
    if (fd == -1) std::fprintf(stderr, "fake_tenant: --listen %s: want a loopback ADDR:PORT\n", spec.c_str());
    if (fd < 0) return 1;
    polls.push_back({fd, POLLIN, 0});
    bound_list += bound + "\n";
  }
  if (!opt.port_file.empty() && !write_port_file(opt.port_file, bound_list)) {
    std::fprintf(stderr, "fake_tenant: %s: %s\n", opt.port_file.c_str(), std::strerror(errno));
    return 1;
  }
  std::fprintf(stderr, "fake_tenant: %s.ghe.com on %s", opt.tenant.slug.c_str(), bound_list.c_str());

  while (!(polls[0].revents & POLLIN)) {
    if (poll(polls.data(), polls.size(), -1) < 0 && errno != EINTR) break;
    for (size_t i = 1; i < polls.size(); ++i) {
      if (!(polls[i].revents & POLLIN)) continue;
      int fd;
      while ((fd = accept4(polls[i].fd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0) {
        std::lock_guard lock(g_mu);
        try {
          if (g_fds.size() < kMaxConnections) {
            std::thread(connection_thread, ctx, fd, std::cref(opt.tenant)).detach();
            g_fds.insert(fd);  // before the thread can take g_mu to unregister it
            continue;
          }
        } catch (const std::system_error&) {  // no thread to be had
        }
        close(fd);
      }
      if (errno == EMFILE || errno == ENFILE) std::this_thread::sleep_for(10ms);
    }
  }

  for (size_t i = 1; i < polls.size(); ++i) close(polls[i].fd);
  std::unique_lock lock(g_mu);
  for (const int fd : g_fds) shutdown(fd, SHUT_RDWR);  // wakes every blocked read and write
  g_cv.wait_for(lock, 800ms, [] { return g_fds.empty(); });
  // Log lines are written before each answer. Skip atexit handlers: OpenSSL's cleanup would race
  // connection threads still unwinding.
  std::_Exit(0);
}
