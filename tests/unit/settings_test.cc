#include "awfshim/settings.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "gtest/gtest.h"

namespace awfshim {
namespace {

FileReader Files(absl::flat_hash_map<std::string, std::string> files) {
  return [files](const std::string& path) -> StatusOr<std::string> {
    auto it = files.find(path);
    if (it == files.end()) return NotFoundError("cannot open: No such file or directory");
    return it->second;
  };
}

Settings Build(Environment env, absl::flat_hash_map<std::string, std::string> files = {}) {
  return BuildSettings(env, Files(std::move(files)));
}

std::string Errors(const Settings& s) {
  std::string out;
  for (const auto& e : s.errors) out += e.ToString() + "\n";
  return out;
}

bool BypassesIp(const Settings& s, const char* ip) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, ip, &a.sin_addr);
  return s.rules.BypassesAddress(reinterpret_cast<sockaddr*>(&a));
}

TEST(ProxyUrl, ParsesTheFirewallsProxyAndCredentials) {
  auto p = ProxyUrl::Parse("http://172.30.0.10:3128");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->host, "172.30.0.10");
  EXPECT_EQ(p->port, 3128);
  EXPECT_FALSE(p->has_credentials());

  auto c = ProxyUrl::Parse("http://us%40er:p%3Ass@Squid.Local:8080/");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->user, "us@er");
  EXPECT_EQ(c->password, "p:ss");
  EXPECT_EQ(c->host, "squid.local");
  EXPECT_EQ(c->Redacted(), "http://us@er:***@squid.local:8080");
  EXPECT_EQ(ProxyUrl::Parse("http://ghp_tokenAsUser@squid.local:3128")->Redacted(), "http://***@squid.local:3128");

  auto v6 = ProxyUrl::Parse("[::1]:3128");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->Authority(), "[::1]:3128");
}

// A malformed proxy URL may hold its credentials anywhere; no error repeats them (they went to
// stderr of every process and into init.errors).
TEST(ProxyUrl, ErrorsNeverRepeatCredentials) {
  for (const char* bad : {"http://user:S3cretPw", "HTTPS://x:S3cretPw", "user:S3cretPw://ss@h:1",
                          "http://user:p%zzS3cretPw@h:1", "http://u:S3cretPw@[::1", "http://u:S3cretPw@h:S3cretPw",
                          "http://u:S3cretPw@h!x:1", "S3cretPw:x", "http://S3cretPw:x"}) {
    auto p = ProxyUrl::Parse(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.status().message().find("S3cretPw"), std::string::npos) << bad << " -> " << p.status().message();
  }
  // What is quoted still helps: a plain scheme, host or number.
  EXPECT_EQ(ProxyUrl::Parse("socks5://h:1").status().message(), "unsupported proxy scheme 'socks5' (only http)");
  EXPECT_EQ(ProxyUrl::Parse("http://h:70000").status().message(), "bad proxy port '70000' (1 to 65535)");
}

TEST(ProxyUrl, RejectsWhatItCannotUse) {
  for (const char* bad : {"socks5://h:1080", "https://h:3128", "http://:3128", "http://h:0", "http://h:70000",
                          "http://h:port", "http://h:3128/path", "http://[::1:3128", "http://u:%zz@h:1", "http://*:1",
                          "http://a:b:3128", "http:40x:p%3Aw@[@::1]:3128", "http://[10.0.0.1]:1", "http://*.x:1",
                          "http://u%40x:w@[[::1]:3128"}) {
    EXPECT_FALSE(ProxyUrl::Parse(bad).ok()) << bad;
  }
}

TEST(Settings, FirewallEnvironmentGivesGitHubRoutesAndNoProxyBypass) {
  Settings s = Build({{"HTTPS_PROXY", "http://172.30.0.10:3128"},
                      {"NO_PROXY", "localhost,127.0.0.1,::1,0.0.0.0,172.30.0.10,172.30.0.20,api-proxy"}});
  EXPECT_EQ(Errors(s), "");
  EXPECT_FALSE(s.refuse_routed());
  ASSERT_TRUE(s.proxy);
  EXPECT_EQ(s.proxy_source, "HTTPS_PROXY");
  EXPECT_TRUE(s.rules.RoutesName("api.github.com"));
  EXPECT_TRUE(s.rules.RoutesName("api.githubcopilot.com"));
  EXPECT_TRUE(s.rules.RoutesName("github.com"));
  EXPECT_FALSE(s.rules.RoutesName("registry.npmjs.org"));
  EXPECT_FALSE(s.rules.RoutesName("api-proxy"));
  EXPECT_TRUE(BypassesIp(s, "172.30.0.20"));
  EXPECT_TRUE(BypassesIp(s, "127.0.0.5"));
  EXPECT_FALSE(BypassesIp(s, "140.82.112.3"));
  EXPECT_EQ(s.dns, DnsMode::kFake);
  EXPECT_EQ(s.timeout_ms, 30000);
}

TEST(Settings, TenantFromEachVariableAddsItsDomain) {
  for (const auto& [var, value] : std::vector<std::pair<std::string, std::string>>{
           {"COPILOT_GH_HOST", "contoso-aw.ghe.com"},
           {"GH_HOST", "CONTOSO-AW.ghe.com"},
           {"GITHUB_SERVER_URL", "https://contoso-aw.ghe.com/"}}) {
    Settings s = Build({{"AWF_SHIM_PROXY", "http://127.0.0.1:3128"}, {var, value}});
    EXPECT_EQ(Errors(s), "") << var;
    EXPECT_TRUE(s.rules.RoutesName("contoso-aw.ghe.com")) << var;
    EXPECT_TRUE(s.rules.RoutesName("api.contoso-aw.ghe.com")) << var;
    EXPECT_TRUE(s.rules.RoutesName("copilot-api.contoso-aw.ghe.com")) << var;
    EXPECT_TRUE(s.rules.RoutesName("api.github.com")) << var;
    EXPECT_FALSE(s.rules.RoutesName("other.ghe.com")) << var;
  }
}

TEST(Settings, TenantUrlCredentialsAreSkippedAndNeverRepeated) {
  const std::string token = "ghs_" + std::string(36, 'Q');
  Settings s = Build({{"AWF_SHIM_PROXY", "http://127.0.0.1:3128"},
                      {"GITHUB_SERVER_URL", "https://x-access-token:" + token + "@contoso-aw.ghe.com:443/"}});
  EXPECT_EQ(Errors(s), "");
  EXPECT_TRUE(s.rules.RoutesName("api.contoso-aw.ghe.com"));
  EXPECT_FALSE(s.rules.RoutesName("x-access-token"));
  Settings bad = Build({{"AWF_SHIM_PROXY", "http://127.0.0.1:3128"}, {"GITHUB_SERVER_URL", "https://" + token + "@/"}});
  EXPECT_NE(Errors(bad).find("does not name a host"), std::string::npos);
  EXPECT_EQ(Errors(bad).find(token), std::string::npos) << Errors(bad);
}

TEST(Settings, GithubDotComTenantAddsNothingExtra) {
  Settings s = Build({{"AWF_SHIM_PROXY", "http://127.0.0.1:3128"}, {"GITHUB_SERVER_URL", "https://github.com"}});
  EXPECT_EQ(Errors(s), "");
  EXPECT_EQ(s.rules.route().size(), std::size(kDefaultRoutes));
}

TEST(Settings, CopilotHostWinsOverGhHost) {
  Settings s = Build({{"AWF_SHIM_PROXY", "http://127.0.0.1:3128"},
                      {"COPILOT_GH_HOST", "first.ghe.com"},
                      {"GH_HOST", "second.ghe.com"}});
  EXPECT_TRUE(s.rules.RoutesName("api.first.ghe.com"));
  EXPECT_FALSE(s.rules.RoutesName("api.second.ghe.com"));
}

TEST(Settings, ExplicitRouteReplacesDefaultsAndProxyIsAlwaysBypassed) {
  Settings s = Build({{"AWF_SHIM_PROXY", "http://squid:3128"}, {"AWF_SHIM_ROUTE", "*"}});
  EXPECT_EQ(Errors(s), "");
  EXPECT_TRUE(s.rules.RoutesEverything());
  EXPECT_TRUE(s.rules.RoutesName("example.org"));
  EXPECT_FALSE(s.rules.RoutesName("squid"));
  EXPECT_FALSE(s.rules.RoutesName("localhost"));
}

TEST(Settings, AwfShimProxyWinsOverHttpsProxy) {
  Settings s = Build({{"AWF_SHIM_PROXY", "http://10.0.0.1:1"}, {"HTTPS_PROXY", "http://10.0.0.2:2"}});
  ASSERT_TRUE(s.proxy);
  EXPECT_EQ(s.proxy->host, "10.0.0.1");
  Settings lower = Build({{"http_proxy", "http://10.0.0.3:3"}, {"HTTP_PROXY", "http://10.0.0.4:4"}});
  ASSERT_TRUE(lower.proxy);
  EXPECT_EQ(lower.proxy->host, "10.0.0.4");
}

TEST(Settings, NoProxyConfiguredRefusesRoutedConnections) {
  Settings s = Build({});
  EXPECT_TRUE(s.refuse_routed());
  EXPECT_NE(Errors(s).find("no proxy configured"), std::string::npos);
}

TEST(Settings, BadValuesNameTheVariableColumnAndExpectation) {
  Settings s = Build({{"AWF_SHIM_PROXY", "socks5://h:1"},
                      {"AWF_SHIM_ROUTE", "github.com,bad host"},
                      {"AWF_SHIM_BYPASS", "10.0.0.0/99"},
                      {"AWF_SHIM_DNS", "magic"},
                      {"AWF_SHIM_TIMEOUT_MS", "0"},
                      {"AWF_SHIM_ROUT", "typo"}});
  std::string e = Errors(s);
  EXPECT_TRUE(s.refuse_routed());
  EXPECT_NE(e.find("AWF_SHIM_PROXY: unsupported proxy scheme 'socks5'"), std::string::npos) << e;
  EXPECT_NE(e.find("AWF_SHIM_ROUTE, column 12: 'bad host'"), std::string::npos) << e;
  EXPECT_NE(e.find("AWF_SHIM_BYPASS, column 1: '10.0.0.0/99': prefix length above 32"), std::string::npos) << e;
  EXPECT_NE(e.find("AWF_SHIM_DNS: 'magic': expected fake or system"), std::string::npos) << e;
  EXPECT_NE(e.find("AWF_SHIM_TIMEOUT_MS: '0': expected milliseconds"), std::string::npos) << e;
  EXPECT_NE(e.find("AWF_SHIM_ROUT: unknown variable"), std::string::npos) << e;
  EXPECT_EQ(s.errors.size(), 6u) << e;
}

// Found by fuzz_settings: wildcard entries in NO_PROXY and a wildcard tenant used to abort.
TEST(Settings, WildcardsInOtherProgramsVariablesNeverAbort) {
  Settings s = Build({{"HTTPS_PROXY", "http://127.0.0.1:3128"}, {"NO_PROXY", "localhost,*.example.com,*.,*"}});
  EXPECT_EQ(Errors(s), "");
  EXPECT_EQ(s.warnings.size(), 3u);  // curl and reqwest read none of the three alike
  EXPECT_FALSE(s.rules.BypassesName("api.example.com"));
  EXPECT_FALSE(s.rules.BypassesName("example.com"));
  Settings tenant = Build({{"HTTPS_PROXY", "http://127.0.0.1:3128"}, {"GH_HOST", "*.contoso.ghe.com"}});
  EXPECT_NE(Errors(tenant).find("GH_HOST: '*.contoso.ghe.com' does not name a host"), std::string::npos);
}

TEST(Settings, BadNoProxyEntriesAreWarningsNotErrors) {
  Settings s = Build({{"HTTPS_PROXY", "http://127.0.0.1:3128"}, {"NO_PROXY", "good.example,bad entry!,.corp.example:8080"}});
  EXPECT_EQ(Errors(s), "");
  ASSERT_EQ(s.warnings.size(), 2u);
  EXPECT_EQ(s.warnings[0], "NO_PROXY, column 14: ignored 'bad entry!': curl reads blanks as separators, reqwest as part "
                           "of the name");
  EXPECT_EQ(s.warnings[1], "NO_PROXY, column 25: ignored '.corp.example:8080': curl and reqwest ignore an entry with a "
                           "port");
  EXPECT_TRUE(s.rules.BypassesName("good.example"));
  EXPECT_TRUE(s.rules.BypassesName("x.good.example"));
  EXPECT_FALSE(s.rules.BypassesName("corp.example")) << "not on every port: on none, like curl and reqwest";
}

bool Bypasses(const Settings& s, int family, const char* ip) {
  sockaddr_storage ss{};
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &a->sin_addr);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    inet_pton(AF_INET6, ip, &a->sin6_addr);
  }
  return s.rules.BypassesAddress(reinterpret_cast<sockaddr*>(&ss));
}

std::string Warnings(const Settings& s) {
  std::string out;
  for (const auto& w : s.warnings) out += w + "\n";
  return out;
}

// Forms curl and reqwest read alike: the shim reads them the same way.
TEST(Settings, NoProxyFormsCurlAndReqwestAgreeOnBypass) {
  for (const char* no_proxy : {"githubcopilot.com", ".githubcopilot.com", "GitHubCopilot.COM", " , githubcopilot.com ,", "*"}) {
    Settings s = Build({{"HTTPS_PROXY", "http://127.0.0.1:3128"}, {"NO_PROXY", no_proxy}});
    EXPECT_EQ(Errors(s), "") << no_proxy;
    EXPECT_FALSE(s.rules.RoutesName("api.githubcopilot.com")) << no_proxy;
    EXPECT_FALSE(s.rules.RoutesName("githubcopilot.com")) << no_proxy;
    EXPECT_TRUE(s.rules.RoutesName("api.github.com") == (std::string(no_proxy) != "*")) << no_proxy;
  }
  Settings ip = Build({{"HTTPS_PROXY", "http://127.0.0.1:3128"}, {"NO_PROXY", "192.0.2.7,198.51.100.0/24,2001:db8::7"}});
  EXPECT_EQ(Warnings(ip), "");
  EXPECT_TRUE(Bypasses(ip, AF_INET, "192.0.2.7"));
  EXPECT_TRUE(Bypasses(ip, AF_INET, "198.51.100.9"));
  EXPECT_TRUE(Bypasses(ip, AF_INET6, "2001:db8::7"));
  EXPECT_FALSE(Bypasses(ip, AF_INET, "192.0.2.8"));
}

// Forms curl and reqwest read differently (or both ignore): a routed host is never bypassed on a
// guess, and the entry is a warning that names it.
TEST(Settings, NoProxyFormsTheyReadDifferentlyNeverBypassARoutedHost) {
  for (const char* no_proxy : {"*.githubcopilot.com", "localhost,*", "*,localhost", " * ", "api.githubcopilot.com:8443",
                               "githubcopilot.com.", "x.example githubcopilot.com", "*githubcopilot.com"}) {
    Settings s = Build({{"HTTPS_PROXY", "http://127.0.0.1:3128"}, {"NO_PROXY", no_proxy}});
    EXPECT_EQ(Errors(s), "") << no_proxy;
    EXPECT_TRUE(s.rules.RoutesName("api.githubcopilot.com")) << no_proxy;
    EXPECT_NE(Warnings(s).find("NO_PROXY"), std::string::npos) << no_proxy;
  }
}

TEST(Settings, NoProxyAddressWithPortAndIpv6RangesAreIgnoredWithAWarning) {
  Settings s = Build({{"HTTPS_PROXY", "http://127.0.0.1:3128"},
                      {"NO_PROXY", "192.0.2.7:8443,[2001:db8::7],2001:db8::/32,198.51.100.0/33"}});
  EXPECT_FALSE(Bypasses(s, AF_INET, "192.0.2.7"));
  EXPECT_FALSE(Bypasses(s, AF_INET6, "2001:db8::7"));
  EXPECT_FALSE(Bypasses(s, AF_INET6, "2001:db8::8"));
  EXPECT_FALSE(Bypasses(s, AF_INET, "198.51.100.1"));
  EXPECT_EQ(s.warnings.size(), 4u) << Warnings(s);
  EXPECT_NE(Warnings(s).find("NO_PROXY, column 1: ignored '192.0.2.7:8443'"), std::string::npos) << Warnings(s);
}

// curl reads no_proxy first, reqwest NO_PROXY: when both are set and differ, only what both hold.
TEST(Settings, NoProxySpellingsThatDifferBypassOnlyWhatBothHold) {
  Settings s = Build({{"HTTPS_PROXY", "http://127.0.0.1:3128"},
                      {"NO_PROXY", "githubcopilot.com,api.github.com"},
                      {"no_proxy", "api.github.com, other.example"}});
  EXPECT_TRUE(s.rules.RoutesName("api.githubcopilot.com"));
  EXPECT_FALSE(s.rules.RoutesName("api.github.com"));
  EXPECT_NE(Warnings(s).find("'githubcopilot.com'"), std::string::npos) << Warnings(s);
  Settings same = Build({{"HTTPS_PROXY", "http://127.0.0.1:3128"}, {"NO_PROXY", "githubcopilot.com"}, {"no_proxy", "githubcopilot.com"}});
  EXPECT_FALSE(same.rules.RoutesName("api.githubcopilot.com"));
  EXPECT_EQ(Warnings(same), "");
}

// Loopback and every proxy the application may talk to are never tunnelled, by name too.
TEST(Settings, LoopbackAndProxyNamesAreNeverTunnelledEvenWithRouteStar) {
  Settings s = Build({{"AWF_SHIM_PROXY", "http://172.30.0.10:3128"},
                      {"AWF_SHIM_ROUTE", "*"},
                      {"HTTPS_PROXY", "http://Squid-Proxy.:3128"},
                      {"ALL_PROXY", "socks5://user:pw@socks.corp:1080"}},
                     {{"/etc/hosts", "# comment\n127.0.0.1 localhost\n127.0.1.1 buildbox buildbox.lan # self\n"
                                     "::1 ip6-localhost\n172.30.0.10\tsquid\n192.0.2.1 elsewhere.example\n"}});
  EXPECT_EQ(Errors(s), "");
  for (const char* name : {"localhost", "LOCALHOST.", "api.localhost", "a.b.localhost", "squid-proxy", "socks.corp",
                           "buildbox", "buildbox.lan", "ip6-localhost", "squid"}) {
    EXPECT_FALSE(s.rules.RoutesName(name)) << name;
  }
  EXPECT_TRUE(s.rules.RoutesName("elsewhere.example"));
  EXPECT_TRUE(s.rules.RoutesName("notlocalhost"));
  EXPECT_TRUE(Bypasses(s, AF_INET, "172.30.0.10"));
}

// A hosts file that cannot be read (the engine reads at most 1 MiB: a blocklist can be larger)
// teaches nothing, and the init event says so; one that is not there is no news.
TEST(Settings, AnUnreadableHostsFileIsAWarning) {
  const Environment env = {{"AWF_SHIM_PROXY", "http://127.0.0.1:3128"}, {"GH_HOST", "contoso.ghe.com"}};
  Settings big = BuildSettings(env, [](const std::string& path) -> StatusOr<std::string> {
    if (path == "/etc/hosts") return ResourceExhaustedError("larger than 1 MiB");
    return NotFoundError("cannot open: No such file or directory");
  });
  EXPECT_EQ(Errors(big), "");
  EXPECT_EQ(Warnings(big), "/etc/hosts: larger than 1 MiB: routed names it maps to loopback or a proxy may be tunnelled\n");
  EXPECT_TRUE(big.rules.RoutesName("api.contoso.ghe.com"));
  EXPECT_EQ(Warnings(Build(env)), "");  // no /etc/hosts at all
}

TEST(Settings, TenantUrlSchemeIsCaseInsensitive) {
  Settings s = Build({{"AWF_SHIM_PROXY", "http://127.0.0.1:3128"}, {"GITHUB_SERVER_URL", "HTTPS://Contoso.GHE.com/"}});
  EXPECT_EQ(Errors(s), "");
  EXPECT_TRUE(s.rules.RoutesName("api.contoso.ghe.com"));
  EXPECT_FALSE(s.rules.RoutesName("https"));
  EXPECT_FALSE(s.rules.RoutesName("x.https"));
}

// Credentials end at the last '@' before the path, whatever they hold.
TEST(Settings, TenantUrlCredentialsWithSlashesAreNeitherRoutedNorRepeated) {
  for (const char* url : {"https://user:ab/cd@contoso.ghe.com", "https://user:a@b/c?d#e@contoso.ghe.com:443/x"}) {
    Settings s = Build({{"AWF_SHIM_PROXY", "http://127.0.0.1:3128"}, {"GITHUB_SERVER_URL", url}});
    EXPECT_EQ(Errors(s), "") << url;
    EXPECT_TRUE(s.rules.RoutesName("api.contoso.ghe.com")) << url;
    EXPECT_FALSE(s.rules.RoutesName("user")) << url;
    EXPECT_FALSE(s.rules.RoutesName("x.user")) << url;
  }
  for (const char* url : {"https://user:ab/cd@", "https://user:ab/cd@/x", "ftp://user:ab/cd@contoso.ghe.com",
                          "https://user:ab/cd@contoso.ghe.com:44x3/", "https://user:ab/cd@[::1]/"}) {
    Settings s = Build({{"AWF_SHIM_PROXY", "http://127.0.0.1:3128"}, {"GITHUB_SERVER_URL", url}});
    std::string e = Errors(s);
    EXPECT_EQ(e.rfind("GITHUB_SERVER_URL: ", 0), 0u) << url << ": " << e;
    EXPECT_EQ(e.find("ab/cd"), std::string::npos) << e;
    EXPECT_EQ(e.find("user"), std::string::npos) << e;
  }
}

TEST(Settings, ConfigFileSuppliesValuesAndEnvWins) {
  Settings s = Build({{"AWF_SHIM_CONFIG", "/cfg.json"}, {"AWF_SHIM_DNS", "system"}},
                     {{"/cfg.json", R"({"proxy": "http://u:secret@10.1.1.1:3128",
  "route": ["*.example.com", "example.com"],
  "bypass": "10.9.0.0/16",
  "dns": "fake",
  "timeout_ms": 1500})"}});
  EXPECT_EQ(Errors(s), "");
  ASSERT_TRUE(s.proxy);
  EXPECT_EQ(s.proxy->password, "secret");
  EXPECT_EQ(s.proxy_source, "/cfg.json:1:11");
  EXPECT_TRUE(s.rules.RoutesName("api.example.com"));
  EXPECT_FALSE(s.rules.RoutesName("api.github.com"));
  EXPECT_TRUE(BypassesIp(s, "10.9.3.4"));
  EXPECT_EQ(s.dns, DnsMode::kSystem);
  EXPECT_EQ(s.timeout_ms, 1500);
}

TEST(Settings, ConfigFileErrorsCarryLineAndColumn) {
  Settings s = Build({{"AWF_SHIM_CONFIG", "/c.json"}, {"HTTPS_PROXY", "http://127.0.0.1:1"}},
                     {{"/c.json", "{\n  \"route\": [\"ok.com\", \"bad host\"],\n  \"proxx\": 1\n}"}});
  std::string e = Errors(s);
  EXPECT_TRUE(s.refuse_routed());
  EXPECT_NE(e.find("/c.json:2:23: 'bad host'"), std::string::npos) << e;
  EXPECT_NE(e.find("/c.json:3:3: unknown key \"proxx\""), std::string::npos) << e;
}

TEST(Settings, UnreadableOrBrokenConfigFileIsAnError) {
  Settings missing = Build({{"AWF_SHIM_CONFIG", "/nope.json"}, {"HTTPS_PROXY", "http://127.0.0.1:1"}});
  EXPECT_TRUE(missing.refuse_routed());
  EXPECT_NE(Errors(missing).find("AWF_SHIM_CONFIG (/nope.json): cannot open"), std::string::npos);

  Settings broken = Build({{"AWF_SHIM_CONFIG", "/b.json"}, {"HTTPS_PROXY", "http://127.0.0.1:1"}},
                          {{"/b.json", "{\"dns\": \"fake\",\n \"route\": [\"x\" "}});
  EXPECT_TRUE(broken.refuse_routed());
  EXPECT_NE(Errors(broken).find("/b.json:"), std::string::npos) << Errors(broken);
  EXPECT_NE(Errors(broken).find("invalid JSON"), std::string::npos) << Errors(broken);
}

}  // namespace
}  // namespace awfshim
