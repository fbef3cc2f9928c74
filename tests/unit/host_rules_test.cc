#include "awfshim/host_rules.h"

#include <arpa/inet.h>
#include <netinet/in.h>

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

}  // namespace
}  // namespace awfshim
