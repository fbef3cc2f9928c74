#include "awfshim/proxy_protocol.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace awfshim {
namespace {

using Result = ProxyReply::Result;
using namespace std::string_literals;

// Replies of the Squid 5.7 in tests/integration/fixtures/squid.py (AWF's configuration), captured
// with a raw socket: CONNECT to an allowed name, then to evil.example:443 (head + body start).
constexpr absl::string_view kSquid200 = "HTTP/1.1 200 Connection established\r\n\r\n";
constexpr absl::string_view kSquid403Head =
    "HTTP/1.1 403 Forbidden\r\n"
    "Server: squid/5.7\r\n"
    "Mime-Version: 1.0\r\n"
    "Date: Sat, 28 Nov 2026 18:00:59 GMT\r\n"
    "Content-Type: text/html;charset=utf-8\r\n"
    "Content-Length: 3074\r\n"
    "X-Squid-Error: ERR_ACCESS_DENIED 0\r\n"
    "Vary: Accept-Language\r\n"
    "Content-Language: en\r\n"
    "X-Cache: MISS from awf-test-squid\r\n"
    "X-Cache-Lookup: NONE from awf-test-squid:3128\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";
constexpr absl::string_view kSquid403Body =
    "<!DOCTYPE html PUBLIC \"-//W3C//DTD HTML 4.01//EN\" \"http://www.w3.org/TR/html4/strict.dtd\">\n<html><head>\n";

// curl 7.88.1's own request through a proxy URL http://u%40x:p%3Aw@127.0.0.1:PORT.
constexpr absl::string_view kCurlConnect =
    "CONNECT api.contoso-aw.ghe.com:443 HTTP/1.1\r\n"
    "Host: api.contoso-aw.ghe.com:443\r\n"
    "Proxy-Authorization: Basic dUB4OnA6dw==\r\n"
    "User-Agent: curl/7.88.1\r\n"
    "Proxy-Connection: Keep-Alive\r\n"
    "\r\n";

TEST(ProxyReply, SquidConnectionEstablished) {
  ProxyReply r = ParseProxyReply(kSquid200);
  ASSERT_EQ(r.result, Result::kComplete);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.reason, "Connection established");
  EXPECT_EQ(r.head_length, kSquid200.size());
  EXPECT_EQ(r.squid_error, "");
  // The server's first bytes may arrive with the head: they are not part of it.
  std::string with_data = std::string(kSquid200) + "\x16\x03\x03\x00\x7a\x02\x00\x00\x76"s;
  EXPECT_EQ(ParseProxyReply(with_data).head_length, kSquid200.size());
}

TEST(ProxyReply, SquidDenialStopsAtTheBlankLine) {
  std::string bytes = std::string(kSquid403Head) + std::string(kSquid403Body);
  ProxyReply r = ParseProxyReply(bytes);
  ASSERT_EQ(r.result, Result::kComplete);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.reason, "Forbidden");
  EXPECT_EQ(r.squid_error, "ERR_ACCESS_DENIED 0");
  EXPECT_EQ(r.head_length, kSquid403Head.size());
}

TEST(ProxyReply, AuthRequiredAndBadGateway) {
  ProxyReply r = ParseProxyReply(
      "HTTP/1.1 407 Proxy Authentication Required\r\nServer: squid/5.7\r\n"
      "Proxy-Authenticate: Basic realm=\"AWF\"\r\nX-Squid-Error: ERR_CACHE_ACCESS_DENIED 0\r\n"
      "Content-Length: 0\r\n\r\n");
  ASSERT_EQ(r.result, Result::kComplete);
  EXPECT_EQ(r.status, 407);
  EXPECT_EQ(r.reason, "Proxy Authentication Required");
  EXPECT_EQ(r.squid_error, "ERR_CACHE_ACCESS_DENIED 0");

  std::string bad_gateway = "HTTP/1.1 502 Bad Gateway\r\nX-Squid-Error: ERR_CONNECT_FAIL 111\r\n\r\n<html>";
  r = ParseProxyReply(bad_gateway);
  ASSERT_EQ(r.result, Result::kComplete);
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(r.squid_error, "ERR_CONNECT_FAIL 111");
  EXPECT_EQ(r.head_length, bad_gateway.find("<html>"));
}

TEST(ProxyReply, LfOnlyHttp10LowercaseNamesNoReason) {
  std::string lf = "HTTP/1.0 200 OK\nx-squid-error:   ERR_NONE 0  \n\nbody";
  ProxyReply r = ParseProxyReply(lf);
  ASSERT_EQ(r.result, Result::kComplete);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.squid_error, "ERR_NONE 0");
  EXPECT_EQ(r.head_length, lf.find("body"));
  r = ParseProxyReply("HTTP/1.1 200\r\n\r\n");
  ASSERT_EQ(r.result, Result::kComplete);
  EXPECT_EQ(r.reason, "");
}

TEST(ProxyReply, HeadArrivingByteByByte) {
  std::string bytes = std::string(kSquid403Head) + std::string(kSquid403Body);
  for (size_t n = 0; n < kSquid403Head.size(); n++) {
    ASSERT_EQ(ParseProxyReply(absl::string_view(bytes.data(), n)).result, Result::kIncomplete) << n;
  }
  for (size_t n = kSquid403Head.size(); n <= bytes.size(); n++) {
    ProxyReply r = ParseProxyReply(absl::string_view(bytes.data(), n));
    ASSERT_EQ(r.result, Result::kComplete) << n;
    ASSERT_EQ(r.head_length, kSquid403Head.size());
  }
  for (size_t n = 0; n < kSquid200.size(); n++) {
    ASSERT_EQ(ParseProxyReply(kSquid200.substr(0, n)).result, Result::kIncomplete) << n;
  }
}

TEST(ProxyReply, GarbageIsMalformedAtOnce) {
  for (std::string s : {"SSH-2.0-OpenSSH_9.2p1\r\n"s, "\x16\x03\x03\x00\x02"s, "<html>"s, "HTTP/2 200\r\n\r\n"s,
                        "http/1.1 200 OK\r\n\r\n"s, "HTTP/1.1  200 OK\r\n"s, "\r\nHTTP/1.1 200 OK\r\n\r\n"s,
                        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"s, "HTTP/1.1 200 OK\r\n folded\r\n\r\n"s,
                        "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"s, "HTTP/1.1 200 OK\r\n: x\r\n\r\n"s,
                        "HTTP/1.1 200 OK\r\nA: x\0y\r\n\r\n"s, "HTTP/1.1 200 OK\rX\r\n\r\n"s}) {
    ProxyReply r = ParseProxyReply(s);
    EXPECT_EQ(r.result, Result::kMalformed) << s;
    EXPECT_FALSE(r.problem.empty());
  }
}

TEST(ProxyReply, StatusCodeIsExactlyThreeDigits) {
  for (const char* s : {"HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 099 X\r\n\r\n",
                        "HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 \r\n\r\n", "HTTP/1.1 20\r\n\r\n", "HTTP/1.1\r\n\r\n"}) {
    EXPECT_EQ(ParseProxyReply(s).result, Result::kMalformed) << s;
  }
  EXPECT_EQ(ParseProxyReply("HTTP/1.1 999 Odd\r\n\r\n").status, 999);
}

TEST(ProxyReply, OversizedHead) {
  std::string head = "HTTP/1.1 200 OK\r\n";
  while (head.size() < 64 * 1024) head += "X-Filler: " + std::string(50, 'f') + "\r\n";
  ProxyReply r = ParseProxyReply(head);
  EXPECT_EQ(r.result, Result::kOversized);
  EXPECT_FALSE(r.problem.empty());
  // The limit is on the head, blank line included.
  std::string exact = "HTTP/1.1 200 OK\r\nX: ";
  exact += std::string(kMaxProxyHead - exact.size() - 4, 'v') + "\r\n\r\n";
  ASSERT_EQ(exact.size(), kMaxProxyHead);
  EXPECT_EQ(ParseProxyReply(exact).result, Result::kComplete);
  exact.insert(20, "v");
  EXPECT_EQ(ParseProxyReply(exact).result, Result::kOversized);
  EXPECT_EQ(ParseProxyReply(exact.substr(0, kMaxProxyHead - 1)).result, Result::kIncomplete);
}

TEST(ProxyReply, ReasonAndSquidErrorAreCleanedAndBounded) {
  ProxyReply r = ParseProxyReply("HTTP/1.1 403 No\x01\x1b[31m way\tout\r\nX-Squid-Error: " + std::string(500, 'E') +
                                 "\r\n\r\n");
  ASSERT_EQ(r.result, Result::kComplete);
  EXPECT_EQ(r.reason, "No[31m wayout");
  EXPECT_EQ(r.squid_error, std::string(128, 'E'));
  r = ParseProxyReply("HTTP/1.1 403 " + std::string(300, 'r') + "\r\n\r\n");
  EXPECT_EQ(r.reason.size(), 128u);
}

TEST(ConnectRequest, BuildWithoutAndWithCredentials) {
  EXPECT_EQ(BuildConnectRequest("api.contoso-aw.ghe.com:443", "", ""),
            "CONNECT api.contoso-aw.ghe.com:443 HTTP/1.1\r\nHost: api.contoso-aw.ghe.com:443\r\n\r\n");
  // Same credentials as curl's request above: the same header.
  std::string req = BuildConnectRequest("api.contoso-aw.ghe.com:443", "u@x", "p:w");
  EXPECT_NE(req.find("\r\nProxy-Authorization: Basic dUB4OnA6dw==\r\n"), std::string::npos) << req;
  EXPECT_TRUE(absl::EndsWith(req, "\r\n\r\n"));
  EXPECT_NE(BuildConnectRequest("h:1", "user", "").find("Basic dXNlcjo=\r\n"), std::string::npos);
  EXPECT_EQ(BuildConnectRequest("[2001:db8::1]:443", "", ""),
            "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n");
}

TEST(ConnectRequest, BuildNeverLetsANameSplitTheRequest) {
  std::string req = BuildConnectRequest("evil\r\nX-Injected: 1\r\n\r\nGET / HTTP/1.1:443", "", "");
  EXPECT_EQ(req.find("\r\nX-Injected"), std::string::npos) << req;
  EXPECT_EQ(req.find("\r\n\r\n"), req.size() - 4);
}

TEST(ConnectRequest, RecognisesAnApplicationsOwnConnect) {
  ConnectRequest c = ParseConnectRequest(kCurlConnect);
  EXPECT_TRUE(c.is_connect);
  EXPECT_EQ(c.authority, "api.contoso-aw.ghe.com:443");
  c = ParseConnectRequest(BuildConnectRequest("[::1]:8443", "a", "b") + "\x16\x03\x01"s);
  EXPECT_TRUE(c.is_connect);
  EXPECT_EQ(c.authority, "[::1]:8443");
  EXPECT_TRUE(ParseConnectRequest("CONNECT h:443 HTTP/1.0\n\n").is_connect);
}

TEST(ConnectRequest, AnythingElseIsNotConnect) {
  for (std::string s :
       {std::string(kCurlConnect.substr(0, kCurlConnect.size() - 2)), "GET / HTTP/1.1\r\nHost: a\r\n\r\n"s,
        "connect h:443 HTTP/1.1\r\n\r\n"s, "CONNECT h HTTP/1.1\r\n\r\n"s, "CONNECT h:0 HTTP/1.1\r\n\r\n"s,
        "CONNECT h:65536 HTTP/1.1\r\n\r\n"s, "CONNECT :443 HTTP/1.1\r\n\r\n"s, "CONNECT h:443 HTTP/2.0\r\n\r\n"s,
        "CONNECT h:443  HTTP/1.1\r\n\r\n"s, "CONNECT h:+443 HTTP/1.1\r\n\r\n"s,
        "CONNECT h:443 HTTP/1.1\r\nbad\r\n\r\n"s,
        "CONNECT " + std::string(300, 'a') + ":443 HTTP/1.1\r\n\r\n", "\x16\x03\x01\x02\x00\x01"s, ""s}) {
    EXPECT_FALSE(ParseConnectRequest(s).is_connect) << s;
  }
}

}  // namespace
}  // namespace awfshim
