#include "awfshim/host_rules.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace awfshim {
namespace {

sockaddr_storage V4(const char* ip) {
  sockaddr_storage ss{};
  auto* a = reinterpret_cast<sockaddr_in*>(&ss);
  a->sin_family = AF_INET;
  inet_pton(AF_INET, ip, &a->sin_addr);
  return ss;
}

sockaddr_storage V6(const char* ip) {
  sockaddr_storage ss{};
  auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
  a->sin6_family = AF_INET6;
  inet_pton(AF_INET6, ip, &a->sin6_addr);
  return ss;
}

const sockaddr* Sa(const sockaddr_storage& ss) { return reinterpret_cast<const sockaddr*>(&ss); }

TEST(HostPattern, ExactIsCaseInsensitiveAndToleratesTrailingDot) {
  auto p = HostPattern::Parse("API.GitHub.com.");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->Matches("api.github.com"));
  EXPECT_FALSE(p->Matches("x.api.github.com"));
  EXPECT_FALSE(p->Matches("github.com"));
  EXPECT_EQ(p->ToString(), "api.github.com");
}

TEST(HostPattern, WildcardMatchesSubdomainsOnly) {
  auto p = HostPattern::Parse("*.contoso-aw.ghe.com");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->Matches("api.contoso-aw.ghe.com"));
  EXPECT_TRUE(p->Matches("a.b.contoso-aw.ghe.com"));
  EXPECT_FALSE(p->Matches("contoso-aw.ghe.com"));
  EXPECT_FALSE(p->Matches("evilcontoso-aw.ghe.com"));
}

TEST(HostPattern, StarMatchesEverything) {
  auto p = HostPattern::Parse("*");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->is_any());
  EXPECT_TRUE(p->Matches("anything.example"));
}

TEST(HostPattern, RejectsMalformedPatterns) {
  for (const char* bad : {"", "a..b", "*.*", "a.*.b", "**.x", "exa mple.com", "x/y", ".", "*x.com",
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com"}) {
    EXPECT_FALSE(HostPattern::Parse(bad).ok()) << bad;
  }
}

TEST(Cidr, MatchesIpv4RangesAndMappedAddresses) {
  auto c = Cidr::Parse("172.30.0.0/24");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->Contains(Sa(V4("172.30.0.10"))));
  EXPECT_FALSE(c->Contains(Sa(V4("172.30.1.10"))));
  EXPECT_TRUE(c->Contains(Sa(V6("::ffff:172.30.0.99"))));
  EXPECT_FALSE(c->Contains(Sa(V6("2001:db8::1"))));
}

TEST(Cidr, MatchesIpv6AndOddPrefixes) {
  auto c = Cidr::Parse("fd00::/7");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->Contains(Sa(V6("fdab::1"))));
  EXPECT_TRUE(c->Contains(Sa(V6("fc00::1"))));
  EXPECT_FALSE(c->Contains(Sa(V6("fe80::1"))));
  auto one = Cidr::Parse("[::1]");
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(one->Contains(Sa(V6("::1"))));
  EXPECT_FALSE(one->Contains(Sa(V6("::2"))));
}

TEST(Cidr, RejectsBadInput) {
  for (const char* bad : {"10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.0/x", "1.2.3.4/-1", "host"}) {
    EXPECT_FALSE(Cidr::Parse(bad).ok()) << bad;
  }
}

TEST(HostRules, BypassWinsOverRoute) {
  HostRules r;
  EXPECT_TRUE(r.AddList("*.github.com, github.com", false, false).empty());
  EXPECT_TRUE(r.AddList("uploads.github.com,10.0.0.0/8", true, true).empty());
  EXPECT_TRUE(r.RoutesName("API.github.com."));
  EXPECT_TRUE(r.RoutesName("github.com"));
  EXPECT_FALSE(r.RoutesName("uploads.github.com"));
  EXPECT_FALSE(r.RoutesName("example.com"));
  EXPECT_TRUE(r.BypassesAddress(Sa(V4("10.1.2.3"))));
  EXPECT_FALSE(r.RoutesEverything());
}

TEST(HostRules, ListErrorsCarryColumns) {
  HostRules r;
  auto errors = r.AddList("github.com, bad host,  *.ok.com,10.0.0.0/8", false, false);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].column, 13);
  EXPECT_NE(errors[0].message.find("bad host"), std::string::npos);
  EXPECT_EQ(errors[1].column, 33);
  EXPECT_NE(errors[1].message.find("not allowed"), std::string::npos);
  EXPECT_EQ(r.route().size(), 2u);
}

// NO_PROXY, form by form: what curl 7.88 and reqwest both bypass is bypassed; an entry they read
// differently is an error (the settings make it a warning) and bypasses nothing.
TEST(HostRules, NoProxyFormsCurlAndReqwestReadAlike) {
  struct Case {
    const char* list;
    const char* host;  // a name, or an address in brackets-free text
    bool bypassed;
    size_t ignored;
  };
  for (const Case& c : std::vector<Case>{
           {"githubcopilot.com", "githubcopilot.com", true, 0},
           {"githubcopilot.com", "api.githubcopilot.com", true, 0},
           {"githubcopilot.com", "notgithubcopilot.com", false, 0},
           {".githubcopilot.com", "githubcopilot.com", true, 0},
           {".githubcopilot.com", "a.b.githubcopilot.com", true, 0},
           {"GitHubCopilot.COM", "api.githubcopilot.com", true, 0},
           {"*", "api.githubcopilot.com", true, 0},
           {"*.githubcopilot.com", "api.githubcopilot.com", false, 1},
           {"localhost,*", "api.githubcopilot.com", false, 1},
           {" * ", "api.githubcopilot.com", false, 1},
           {"api.githubcopilot.com:443", "api.githubcopilot.com", false, 1},
           {"githubcopilot.com.", "api.githubcopilot.com", false, 1},
           {"x.example githubcopilot.com", "api.githubcopilot.com", false, 1},
           {"https://githubcopilot.com", "api.githubcopilot.com", false, 1},
           {"192.0.2.7", "192.0.2.7", true, 0},
           {"192.0.2.0/24", "192.0.2.200", true, 0},
           {"192.0.2.7/0", "198.51.100.1", false, 1},
           {"192.0.2.7:8443", "192.0.2.7", false, 1},
           {"2001:db8::7", "2001:db8::7", true, 0},
           {"[2001:db8::7]", "2001:db8::7", false, 1},
           {"2001:db8::/32", "2001:db8::7", false, 1},
           {"192.0.2.0/33", "192.0.2.7", false, 1},
       }) {
    HostRules r;
    std::vector<ListError> ignored = r.AddNoProxy(c.list);
    EXPECT_EQ(ignored.size(), c.ignored) << c.list;
    bool is_v6 = std::string(c.host).find(':') != std::string::npos;
    unsigned char buf[16];
    bool is_addr = inet_pton(is_v6 ? AF_INET6 : AF_INET, c.host, buf) == 1;
    bool bypassed = is_addr ? r.BypassesAddress(Sa(is_v6 ? V6(c.host) : V4(c.host))) : r.BypassesName(c.host);
    EXPECT_EQ(bypassed, c.bypassed) << c.list << " / " << c.host;
  }
}

TEST(HostRules, NoProxyIgnoredEntriesCarryColumnsAndWhy) {
  HostRules r;
  auto ignored = r.AddNoProxy("ok.example, *.x.example,api.github.com:8443");
  ASSERT_EQ(ignored.size(), 2u);
  EXPECT_EQ(ignored[0].column, 13);
  EXPECT_EQ(ignored[0].message, "'*.x.example': curl and reqwest read '*' only as the whole value");
  EXPECT_EQ(ignored[1].column, 25);
  EXPECT_EQ(ignored[1].message, "'api.github.com:8443': curl and reqwest ignore an entry with a port");
}

// curl reads no_proxy, reqwest NO_PROXY: when both are set and differ, an entry must be in both.
TEST(HostRules, NoProxyWithTheOtherSpellingKeepsOnlyWhatBothHold) {
  HostRules r;
  auto ignored = r.AddNoProxy("a.example,B.example,*", "b.example, c.example");
  ASSERT_EQ(ignored.size(), 2u);
  EXPECT_NE(ignored[0].message.find("other spelling"), std::string::npos);
  EXPECT_FALSE(r.BypassesName("a.example"));
  EXPECT_TRUE(r.BypassesName("x.b.example"));
  EXPECT_FALSE(r.BypassesName("c.example"));
  HostRules star;
  EXPECT_EQ(star.AddNoProxy("*", "localhost").size(), 1u);
  EXPECT_FALSE(star.BypassesName("api.github.com")) << "'*' for one client only";
}

// Like curl's and reqwest's, a NO_PROXY address covers connections to the address, not a routed
// name that resolved there; loopback and AWF_SHIM_BYPASS addresses cover both.
TEST(HostRules, NoProxyAddressesDoNotCoverRoutedNames) {
  HostRules r;
  EXPECT_TRUE(r.AddList("*.github.com", false, false).empty());
  EXPECT_TRUE(r.AddNoProxy("140.82.112.0/20,api.example").empty());
  EXPECT_TRUE(r.AddList("10.0.0.0/8", true, true).empty());
  sockaddr_storage github = V4("140.82.112.3"), ten = V4("10.1.2.3");
  EXPECT_TRUE(r.BypassesAddress(Sa(github)));
  EXPECT_TRUE(r.BypassesAddress(Sa(github), "unrouted.example"));
  EXPECT_FALSE(r.BypassesAddress(Sa(github), "api.github.com"));
  EXPECT_TRUE(r.BypassesAddress(Sa(ten), "api.github.com"));
}

}  // namespace
}  // namespace awfshim
