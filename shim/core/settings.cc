#include "awfshim/settings.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/types/span.h"

namespace awfshim {
namespace {

constexpr absl::string_view kOwnVariables[] = {
    "AWF_SHIM",       "AWF_SHIM_PROXY", "AWF_SHIM_ROUTE", "AWF_SHIM_BYPASS",     "AWF_SHIM_DNS",   "AWF_SHIM_TRACE",
    "AWF_SHIM_TAP",   "AWF_SHIM_ONLY",  "AWF_SHIM_CORE",  "AWF_SHIM_CONFIG",     "AWF_SHIM_TIMEOUT_MS"};
constexpr absl::string_view kProxyVariables[] = {"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"};
// Proxies the application may talk to itself besides those: never tunnelled either.
constexpr absl::string_view kOtherProxyVariables[] = {"ALL_PROXY", "all_proxy"};
// Names the hosts file adds to the bypass list, at most (each costs every lookup a comparison).
constexpr size_t kMaxHostsFileNames = 256;
constexpr absl::string_view kTenantVariables[] = {"COPILOT_GH_HOST", "GH_HOST", "GITHUB_SERVER_URL"};
constexpr absl::string_view kNoProxyVariables[] = {"NO_PROXY", "no_proxy"};

// The host of a URL or of a bare host[:port]: the scheme in any case; credentials end at the last
// '@' (they may hold '/', '?', '#' and '@' themselves), the host at the next '/', '?' or '#'. Its
// errors never repeat the value, which may hold credentials.
struct UrlHost {
  std::string scheme;  // lower case; "" for a bare host
  std::string host;    // without brackets
};

StatusOr<UrlHost> ParseUrlHost(absl::string_view value) {
  UrlHost u;
  absl::string_view rest = absl::StripAsciiWhitespace(value);
  if (size_t sep = rest.find("://"); sep != absl::string_view::npos) {
    u.scheme = absl::AsciiStrToLower(rest.substr(0, sep));
    rest.remove_prefix(sep + 3);
  }
  if (size_t at = rest.rfind('@'); at != absl::string_view::npos) rest.remove_prefix(at + 1);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  absl::string_view port;
  if (absl::ConsumePrefix(&rest, "[")) {
    size_t close = rest.find(']');
    if (close == absl::string_view::npos) return InvalidArgumentError("unclosed '[' in the host");
    port = rest.substr(close + 1);
    rest = rest.substr(0, close);
    if (!port.empty() && !absl::ConsumePrefix(&port, ":")) return InvalidArgumentError("junk after ']'");
  } else if (size_t colon = rest.find(':'); colon != absl::string_view::npos) {
    port = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  int n = 0;
  if (!port.empty() && (!absl::SimpleAtoi(port, &n) || n < 1 || n > 65535)) return InvalidArgumentError("bad port");
  if (rest.empty()) return InvalidArgumentError("no host name");
  u.host = NormalizeHost(rest);
  return u;
}

// The tenant named by a host name or an http(s) URL.
StatusOr<std::string> TenantHost(absl::string_view value) {
  StatusOr<UrlHost> url = ParseUrlHost(value);
  if (!url.ok()) return url.status();
  if (!url->scheme.empty() && url->scheme != "https" && url->scheme != "http") {
    return InvalidArgumentError("not http(s)");
  }
  if (absl::StrContains(url->host, "*")) return InvalidArgumentError("a wildcard");
  if (StatusOr<HostPattern> p = HostPattern::Parse(url->host); !p.ok()) return p.status();
  return url->host;
}

// An address in /etc/hosts.
std::optional<sockaddr_storage> ParseAddress(absl::string_view text) {
  std::string a(text);
  sockaddr_storage ss{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, a.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
  } else if (inet_pton(AF_INET6, a.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
  } else {
    return std::nullopt;
  }
  return ss;
}

// A value and where it came from, whichever of env and file gave it.
struct Raw {
  std::vector<LocatedValue> items;  // env: one item whose `where` is the variable name
  bool from_env = false;
  bool present() const { return !items.empty(); }
};

class Builder {
 public:
  Builder(const Environment& env, const FileReader& read_file) : env_(env), read_file_(read_file) {}

  Settings Build() {
    CheckUnknownVariables();
    LoadFile();
    BuildProxy();
    BuildRoutes();
    BuildBypass();
    BuildScalars();
    for (const ConfigError& e : file_.errors) s_.errors.push_back(e);
    return std::move(s_);
  }

 private:
  const std::string* Env(absl::string_view name) const {
    auto it = env_.find(name);
    return it == env_.end() ? nullptr : &it->second;
  }

  // Env wins over the file; an empty variable counts as unset.
  Raw Get(absl::string_view variable, absl::string_view key) const {
    Raw raw;
    if (const std::string* v = Env(variable); v && !v->empty()) {
      raw.items.push_back({*v, std::string(variable)});
      raw.from_env = true;
    } else if (auto it = file_.values.find(key); it != file_.values.end()) {
      raw.items = it->second;
    }
    return raw;
  }

  void Error(std::string where, std::string message) { s_.errors.push_back({std::move(where), std::move(message)}); }

  void CheckUnknownVariables() {
    for (const auto& [name, value] : env_) {
      if (!absl::StartsWith(name, "AWF_SHIM_") && name != "AWF_SHIM") continue;
      if (!IsSettingsVariable(name)) Error(name, "unknown variable; check its spelling");
    }
  }

  void LoadFile() {
    const std::string* path = Env("AWF_SHIM_CONFIG");
    if (!path || path->empty()) return;
    s_.config_path = *path;
    StatusOr<std::string> content = read_file_(*path);
    if (!content.ok()) {
      Error(absl::StrCat("AWF_SHIM_CONFIG (", *path, ")"), std::string(content.status().message()));
      return;
    }
    file_ = ParseConfigFile(*path, *content);
  }

  void BuildProxy() {
    Raw raw = Get("AWF_SHIM_PROXY", "proxy");
    if (!raw.present()) {
      for (absl::string_view var : kProxyVariables) {
        if (const std::string* v = Env(var); v && !v->empty()) {
          raw.items.push_back({*v, std::string(var)});
          break;
        }
      }
    }
    if (!raw.present()) {
      Error("AWF_SHIM_PROXY", "no proxy configured (AWF_SHIM_PROXY, HTTPS_PROXY and HTTP_PROXY are all unset)");
      return;
    }
    const LocatedValue& v = raw.items.front();
    s_.proxy_source = v.where;
    StatusOr<ProxyUrl> url = ProxyUrl::Parse(v.text);
    if (!url.ok()) {
      Error(v.where, absl::StrCat(url.status().message(), "; expected http://[user:pass@]host:port"));
      return;
    }
    s_.proxy = *std::move(url);
  }

  void AddList(const LocatedValue& v, bool bypass, bool cidrs) {
    for (const ListError& e : s_.rules.AddList(v.text, bypass, cidrs)) {
      // A file item's location already points at it; a variable's gets the column.
      std::string where = absl::StrContains(v.where, ":") ? v.where : absl::StrCat(v.where, ", column ", e.column);
      Error(std::move(where), e.message);
    }
  }

  void BuildRoutes() {
    Raw raw = Get("AWF_SHIM_ROUTE", "route");
    if (raw.present()) {
      for (const LocatedValue& v : raw.items) AddList(v, /*bypass=*/false, /*cidrs=*/false);
      return;
    }
    for (absl::string_view p : kDefaultRoutes) s_.rules.AddRoute(*HostPattern::Parse(p));
    for (absl::string_view var : kTenantVariables) {
      const std::string* v = Env(var);
      if (!v || v->empty()) continue;
      StatusOr<std::string> host = TenantHost(*v);
      if (!host.ok()) {
        // A URL may carry credentials (https://x-access-token:TOKEN@host): then none of it is repeated.
        std::string what = absl::StrContains(*v, "@") ? "the URL (not repeated: it holds credentials)"
                                                      : absl::StrCat("'", *v, "'");
        Error(std::string(var), absl::StrCat(what, " does not name a host (", host.status().message(),
                                             "); expected e.g. https://contoso.ghe.com or contoso.ghe.com"));
      } else if (*host != "github.com" && *host != "www.github.com") {
        s_.rules.AddRoute(*HostPattern::Parse(*host));
        s_.rules.AddRoute(*HostPattern::Parse(absl::StrCat("*.", *host)));
      }
      break;  // the first tenant variable set is the one the CLI uses
    }
  }

  // Loopback and every proxy the application may talk to are never tunnelled, whatever else is
  // configured: by address, and by name, including the names the hosts file gives them.
  void NeverTunnelLoopbackOrProxies() {
    for (absl::string_view c : {"127.0.0.0/8", "::1/128"}) s_.rules.AddBypass(*Cidr::Parse(c));
    for (absl::string_view p : {"localhost", "*.localhost"}) s_.rules.AddBypass(*HostPattern::Parse(p));
    std::vector<std::string> proxies;  // hosts, normalized
    auto add_proxy = [&](const std::string& host) {
      if (std::find(proxies.begin(), proxies.end(), host) != proxies.end()) return;
      proxies.push_back(host);
      if (StatusOr<Cidr> c = Cidr::Parse(host); c.ok()) {
        s_.rules.AddBypass(*std::move(c));
      } else if (StatusOr<HostPattern> p = HostPattern::Parse(host); p.ok() && !p->is_any()) {
        s_.rules.AddBypass(*std::move(p));
      }
    };
    if (s_.proxy) add_proxy(s_.proxy->host);
    // Other programs' variables: what cannot be read is not the shim's proxy, so no error.
    for (const auto& vars : {absl::MakeConstSpan(kProxyVariables), absl::MakeConstSpan(kOtherProxyVariables)}) {
      for (absl::string_view var : vars) {
        const std::string* v = Env(var);
        if (!v || v->empty()) continue;
        if (StatusOr<UrlHost> url = ParseUrlHost(*v); url.ok()) add_proxy(url->host);
      }
    }
    StatusOr<std::string> hosts = read_file_("/etc/hosts");
    if (!hosts.ok()) {  // no file: nothing more to learn; one that cannot be read is worth a word
      if (hosts.status().code() != StatusCode::kNotFound) {
        s_.warnings.push_back(absl::StrCat("/etc/hosts: ", hosts.status().message(),
                                           ": routed names it maps to loopback or a proxy may be tunnelled"));
      }
      return;
    }
    struct HostsLine {
      std::string addr_text;
      sockaddr_storage addr;
      std::vector<absl::string_view> names;
    };
    std::vector<HostsLine> lines;
    for (absl::string_view line : absl::StrSplit(*hosts, '\n')) {
      std::vector<absl::string_view> fields =
          absl::StrSplit(line.substr(0, line.find('#')), absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
      std::optional<sockaddr_storage> addr = fields.size() > 1 ? ParseAddress(fields[0]) : std::nullopt;
      if (addr) lines.push_back({std::string(fields[0]), *addr, {fields.begin() + 1, fields.end()}});
    }
    for (const HostsLine& line : lines) {  // the addresses the hosts file gives the proxies' names
      for (absl::string_view name : line.names) {
        if (std::find(proxies.begin(), proxies.end(), NormalizeHost(name)) != proxies.end()) add_proxy(line.addr_text);
      }
    }
    size_t added = 0;
    for (const HostsLine& line : lines) {
      if (!s_.rules.BypassesAddress(reinterpret_cast<const sockaddr*>(&line.addr))) continue;
      for (absl::string_view name : line.names) {
        // Only names a route would take: a blocklist's thousands cost nothing unless routed.
        StatusOr<HostPattern> p = HostPattern::Parse(name);
        if (!p.ok() || !s_.rules.RoutesName(name)) continue;
        if (++added > kMaxHostsFileNames) {
          s_.warnings.push_back(absl::StrCat("/etc/hosts: more than ", kMaxHostsFileNames,
                                             " routed names map to loopback or a proxy; the rest may be tunnelled"));
          return;
        }
        s_.rules.AddBypass(*std::move(p));
      }
    }
  }

  void BuildBypass() {
    NeverTunnelLoopbackOrProxies();
    Raw raw = Get("AWF_SHIM_BYPASS", "bypass");
    if (raw.present()) {
      for (const LocatedValue& v : raw.items) AddList(v, /*bypass=*/true, /*cidrs=*/true);
      return;
    }
    // NO_PROXY belongs to other programs: the shim takes what curl and reqwest read alike and
    // warns about the rest. curl reads no_proxy first, reqwest NO_PROXY: if they differ, both.
    const std::string* upper = Env("NO_PROXY");
    const std::string* lower = Env("no_proxy");
    if (upper && upper->empty()) upper = nullptr;
    if (lower && lower->empty()) lower = nullptr;
    if (!upper && !lower) return;
    absl::string_view var = upper ? "NO_PROXY" : "no_proxy";
    const std::string& value = upper ? *upper : *lower;
    std::optional<absl::string_view> also;
    if (upper && lower && *upper != *lower) {
      also = *lower;
      s_.warnings.push_back(
          "NO_PROXY and no_proxy differ (curl reads no_proxy, reqwest NO_PROXY): only entries both hold are used");
    } else if (value == "*") {
      s_.warnings.push_back(absl::StrCat(var, ": '*' bypasses everything"));
    }
    for (const ListError& e : s_.rules.AddNoProxy(value, also)) {
      s_.warnings.push_back(absl::StrCat(var, ", column ", e.column, ": ignored ", e.message));
    }
  }

  template <typename Enum>
  void Choice(absl::string_view var, absl::string_view key, std::initializer_list<std::pair<absl::string_view, Enum>> options,
              Enum* out) {
    Raw raw = Get(var, key);
    if (!raw.present()) return;
    const LocatedValue& v = raw.items.front();
    std::string lower = absl::AsciiStrToLower(v.text);
    std::string expected;
    for (const auto& [name, value] : options) {
      if (lower == name) {
        *out = value;
        return;
      }
      absl::StrAppend(&expected, expected.empty() ? "" : " or ", name);
    }
    Error(v.where, absl::StrCat("'", v.text, "': expected ", expected));
  }

  void BuildScalars() {
    Choice<DnsMode>("AWF_SHIM_DNS", "dns", {{"fake", DnsMode::kFake}, {"system", DnsMode::kSystem}}, &s_.dns);
    Choice<TapMode>("AWF_SHIM_TAP", "tap", {{"auto", TapMode::kAuto}, {"off", TapMode::kOff}}, &s_.tap);
    if (Raw raw = Get("AWF_SHIM_TRACE", "trace"); raw.present()) s_.trace = raw.items.front().text;
    if (Raw raw = Get("AWF_SHIM_TIMEOUT_MS", "timeout_ms"); raw.present()) {
      const LocatedValue& v = raw.items.front();
      int ms = 0;
      if (!absl::SimpleAtoi(v.text, &ms) || ms < 1 || ms > 600000) {
        Error(v.where, absl::StrCat("'", v.text, "': expected milliseconds from 1 to 600000"));
      } else {
        s_.timeout_ms = ms;
      }
    }
  }

  const Environment& env_;
  const FileReader& read_file_;
  ConfigFile file_;
  Settings s_;
};

}  // namespace

bool IsSettingsVariable(absl::string_view name) {
  auto in = [name](const auto& list) { return std::find(std::begin(list), std::end(list), name) != std::end(list); };
  return in(kOwnVariables) || in(kProxyVariables) || in(kOtherProxyVariables) || in(kTenantVariables) ||
         in(kNoProxyVariables);
}

Settings BuildSettings(const Environment& env, const FileReader& read_file) { return Builder(env, read_file).Build(); }

}  // namespace awfshim
