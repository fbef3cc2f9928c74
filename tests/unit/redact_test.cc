#include "awfshim/redact.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "awfshim/http1.h"
#include "gtest/gtest.h"

namespace awfshim {
namespace {

// Shapes of real credentials (values are fake but have the real formats' prefixes and lengths).
constexpr const char* kPat = "github_pat_11ABCDEFG0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ01";
constexpr const char* kClassic = "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789";
constexpr const char* kOauth = "gho_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789";
constexpr const char* kUser = "ghu_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789";
constexpr const char* kServer = "ghs_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789";
constexpr const char* kJwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl";
constexpr const char* kBot = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";  // Telegram's shape

// Every byte of `s` percent-encoded, with upper- or lower-case hex digits.
std::string Pct(absl::string_view s, bool lower = false) {
  std::string out;
  for (char c : s) {
    absl::StrAppend(&out, "%", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
  }
  return lower ? out : absl::AsciiStrToUpper(out);
}

// The request head's target as the trace shows it, through the HTTP/1.1 tracker.
HttpExchange Traced(absl::string_view request_head) {
  Http1Stream s;
  s.OnClientBytes(request_head, 1);
  s.OnServerBytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 2);
  s.OnClose(3);
  std::vector<HttpExchange> done = s.TakeCompleted();
  EXPECT_EQ(done.size(), 1u) << request_head;
  return done.empty() ? HttpExchange{} : done[0];
}

struct Case {
  const char* what;
  std::string target, want;
};

// Each case is checked by RedactTarget and through the tracker (`GET target HTTP/1.1`).
void ExpectRedacted(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    EXPECT_EQ(RedactTarget(c.target), c.want) << c.what << "\n  target: " << c.target;
    EXPECT_EQ(Traced(absl::StrCat("GET ", c.target, " HTTP/1.1\r\nHost: h\r\n\r\n")).path, c.want)
        << "traced: " << c.what;
  }
}

TEST(Redact, KeepsSchemeAndTokenKindNeverTheSecret) {
  EXPECT_EQ(RedactCredential(std::string("Bearer ") + kPat), "Bearer github_pat_***");
  EXPECT_EQ(RedactCredential(std::string("token ") + kOauth), "token gho_***");
  EXPECT_EQ(RedactCredential(std::string("Bearer ") + kUser), "Bearer ghu_***");
  EXPECT_EQ(RedactCredential(std::string("Bearer ") + kServer), "Bearer ghs_***");
  EXPECT_EQ(RedactCredential(std::string("Bearer ") + kJwt), "Bearer jwt:***");
  EXPECT_EQ(RedactCredential("Basic dXNlcjpwYXNzd29yZA=="), "Basic ***");
  EXPECT_EQ(RedactCredential(kClassic), "ghp_***");
  EXPECT_EQ(RedactCredential("opaque-secret-value"), "***");
}

TEST(Redact, SecretHeadersAreRecognisedWhateverTheirCase) {
  for (const char* h : {"Authorization", "proxy-authorization", "COOKIE", "Set-Cookie", "X-GitHub-Token",
                        "X-Api-Key", "x-amz-security-token", "X-Client-Secret"}) {
    EXPECT_TRUE(IsSecretHeader(h)) << h;
  }
  for (const char* h : {"Content-Type", "User-Agent", "X-GitHub-Request-Id", "Host"}) {
    EXPECT_FALSE(IsSecretHeader(h)) << h;
  }
  EXPECT_EQ(RedactHeader("Cookie", "session=abc; other=def"), "***");
  EXPECT_EQ(RedactHeader("Authorization", std::string("Bearer ") + kPat), "Bearer github_pat_***");
  EXPECT_EQ(RedactHeader("User-Agent", "copilot/1.0.102"), "copilot/1.0.102");
}

TEST(Redact, QueryValuesThatLookSecretAreMasked) {
  ExpectRedacted({
      {"oauth code and state", "/login/oauth?code=abc123&state=xyz&page=2", "/login/oauth?code=***&state=***&page=2"},
      {"; separates too", "/x?access_token=s3cr3t;per_page=100", "/x?access_token=***;per_page=100"},
      {"nothing secret", "/repos/github/copilot-cli/releases?per_page=100",
       "/repos/github/copilot-cli/releases?per_page=100"},
      {"no query", "/plain/path", "/plain/path"},
      {"a token under any name", std::string("/x?q=") + kClassic, "/x?q=ghp_***"},
  });
}

TEST(Redact, ScrubTokensFindsEveryGitHubTokenInFreeText) {
  std::string text = std::string("a ") + kPat + " b " + kClassic + "," + kOauth + "(" + kUser + ")" + kServer;
  std::string out = ScrubTokens(text);
  EXPECT_EQ(out, "a github_pat_*** b ghp_***,gho_***(ghu_***)ghs_***");
  EXPECT_EQ(ScrubTokens("ghp_ alone and xghp_notatoken"), "ghp_ alone and xghp_notatoken");
  EXPECT_EQ(ScrubTokens("nothing here"), "nothing here");
}

// Issue #16: a token behind a percent-escape, or percent-encoded itself, in part or whole, once
// or twice, with upper- or lower-case hex digits.
TEST(Redact, TokensArePercentDecodedBeforeTheyAreJudged) {
  const std::string body = std::string(kClassic).substr(4);
  ExpectRedacted({
      {"after %3A", absl::StrCat("/search?q=token%3A", kClassic), "/search?q=token%3Aghp_***"},
      {"after %3a", absl::StrCat("/search?q=token%3a", kClassic), "/search?q=token%3aghp_***"},
      {"after %2F in a path", absl::StrCat("/raw%2F", kClassic, "/x"), "/raw%2Fghp_***/x"},
      {"after %20", absl::StrCat("/x?q=a%20", kClassic), "/x?q=a%20ghp_***"},
      {"after a double-encoded =", absl::StrCat("/x?q=id%253D", kClassic), "/x?q=id%253Dghp_***"},
      {"first letter encoded", absl::StrCat("/x?q=%67hp_", body), "/x?q=ghp_***"},
      {"underscore encoded", absl::StrCat("/x?q=ghp%5f", body), "/x?q=ghp_***"},
      {"body partly encoded", absl::StrCat("/x?q=ghp_", body.substr(0, 5), Pct(body.substr(5, 3)), body.substr(8)),
       "/x?q=ghp_***"},
      {"every byte, upper-case hex", "/x?q=" + Pct(kClassic), "/x?q=ghp_***"},
      {"every byte, lower-case hex", "/x?q=" + Pct(kClassic, true), "/x?q=ghp_***"},
      {"every byte, twice", "/x?q=" + absl::StrReplaceAll(Pct(kClassic), {{"%", "%25"}}), "/x?q=ghp_***"},
      {"fine-grained PAT, encoded prefix", absl::StrCat("/x/", Pct("github_pat_"), std::string(kPat).substr(11)),
       "/x/github_pat_***"},
      {"a token in a path segment", absl::StrCat("/files/", kOauth, "/raw"), "/files/gho_***/raw"},
  });
  // The same scrub guards every string the trace writes.
  EXPECT_EQ(ScrubTokens(absl::StrCat("see token%3A", kClassic, " and ", Pct(kUser))),
            "see token%3Aghp_*** and ghu_***");
}

// Issue #16: names are judged percent-decoded, case-folded, '-' and '_' alike; values wherever a
// decoded '=' follows such a name, up to a separator encoded no more than the '='.
TEST(Redact, SecretNamesAreJudgedDecodedAndCaseFolded) {
  std::vector<Case> cases;
  for (const char* name : {"api-key", "x-api-key", "subscription-key", "authorization", "bearer", "pass", "pwd",
                           "passphrase", "private_key", "sid", "ticket", "otp", "assertion", "code_verifier",
                           "access_token", "client_secret", "password", "jsessionid", "PHPSESSID"}) {
    std::string upper = absl::AsciiStrToUpper(name);
    std::string swapped = absl::StrReplaceAll(name, {{"-", "_"}, {"_", "-"}});
    for (const std::string& v : {std::string(name), upper, swapped, Pct(absl::string_view(name).substr(0, 1)) +
                                 (name + 1), Pct(name, true)}) {
      cases.push_back({name, absl::StrCat("/x?page=2&", v, "=s3cr3tValue&per_page=9"),
                       absl::StrCat("/x?page=2&", v, "=***&per_page=9")});
    }
    cases.push_back(
        {name, absl::StrCat("/x?", name, "%3Ds3cr3tValue&page=2"), absl::StrCat("/x?", name, "%3D***&page=2")});
  }
  ExpectRedacted(cases);
  ExpectRedacted({
      {"access%5Ftoken", "/x?access%5Ftoken=s3cr3t&page=2", "/x?access%5Ftoken=***&page=2"},
      {"access%5ftoken", "/x?access%5ftoken=s3cr3t", "/x?access%5ftoken=***"},
      {"%61ccess_token", "/x?%61ccess_token=s3cr3t", "/x?%61ccess_token=***"},
      {"a value runs to a separator", "/x?token=a/b?c=d&page=2", "/x?token=***&page=2"},
      {"an encoded & is inside the value", "/x?password=p%26ss&page=2", "/x?password=***&page=2"},
      {"in a fragment", "/cb#access_token=s3cr3t&state=x", "/cb#access_token=***&state=***"},
      // A URL inside a value: its own query is judged too.
      {"a redirect with a token", absl::StrCat("/login?next=%2Fcb%3Faccess_token%3D", kClassic, "&page=2"),
       "/login?next=%2Fcb%3Faccess_token%3D***&page=2"},
      {"a redirect with a code", "/login?next=%2Fcb%3Fcode%3Dc0de%26page%3D2",
       "/login?next=%2Fcb%3Fcode%3D***%26page%3D2"},
      {"a redirect, lower-case hex", "/login?next=%2fcb%3fcode%3dc0de%26page%3d2",
       "/login?next=%2fcb%3fcode%3d***%26page%3d2"},
      {"a redirect in a redirect", "/a?next=%2Fb%3Fnext%3D%252Fc%253Fcode%253Dc0de%2526x%253D1%26y%3D2",
       "/a?next=%2Fb%3Fnext%3D%252Fc%253Fcode%253D***%2526x%253D1%26y%3D2"},
      // Doubly encoded '&' inside a once-encoded value belongs to the value.
      {"deeper separators stay inside", "/a?next=%3Fpassword%3Dp%2526ss%26y%3D2", "/a?next=%3Fpassword%3D***%26y%3D2"},
  });
}

TEST(Redact, JwtsAnywhereInATarget) {
  std::string jwt(kJwt);
  std::string unsigned_jwt = jwt.substr(0, jwt.rfind('.') + 1);
  ExpectRedacted({
      {"assertion=", "/oauth/token?grant_type=jwt-bearer&assertion=" + jwt,
       "/oauth/token?grant_type=jwt-bearer&assertion=***"},
      {"under any name", "/x?data=" + jwt + "&page=2", "/x?data=jwt:***&page=2"},
      {"in a path segment", "/v1/" + jwt + "/status", "/v1/jwt:***/status"},
      {"dots encoded", "/x?data=" + absl::StrReplaceAll(jwt, {{".", "%2E"}}), "/x?data=jwt:***"},
      {"dots encoded, lower case", "/x?data=" + absl::StrReplaceAll(jwt, {{".", "%2e"}}), "/x?data=jwt:***"},
      {"inside an encoded redirect", "/x?next=%2Fcb%3Fid%3D" + jwt, "/x?next=%2Fcb%3Fid%3Djwt:***"},
      {"without a signature", "/x?data=" + unsigned_jwt, "/x?data=jwt:***."},
      {"every byte encoded", "/x?data=" + Pct(jwt), "/x?data=jwt:***"},
  });
  EXPECT_EQ(ScrubTokens("Bearer " + jwt), "Bearer jwt:***");
}

TEST(Redact, BotTokensAndPathParameters) {
  std::string bot(kBot);
  ExpectRedacted({
      {"/bot<token>/", "/bot" + bot + "/getUpdates?offset=1", "/bot***/getUpdates?offset=1"},
      {"/file/bot<token>/", "/file/bot" + bot + "/photos/a.jpg", "/file/bot***/photos/a.jpg"},
      {"':' encoded", "/bot" + absl::StrReplaceAll(bot, {{":", "%3A"}}) + "/getMe", "/bot***/getMe"},
      {"':' encoded, lower case", "/bot" + absl::StrReplaceAll(bot, {{":", "%3a"}}) + "/getMe", "/bot***/getMe"},
      {"inside an encoded redirect", "/x?next=%2Fbot" + absl::StrReplaceAll(bot, {{":", "%3A"}}), "/x?next=%2Fbot***"},
      {";jsessionid=", "/app;jsessionid=0123ABCDEF?x=1", "/app;jsessionid=***?x=1"},
      {";JSESSIONID=, then a segment", "/app;JSESSIONID=0123ABCDEF/next", "/app;JSESSIONID=***/next"},
      {";sid=", "/a;sid=0123ABCDEF;v=2/b", "/a;sid=***;v=2/b"},
      {";token=", "/a/b;token=0123ABCDEF", "/a/b;token=***"},
      {";Token%3D", "/a;Token%3D0123ABCDEF/b", "/a;Token%3D***/b"},
  });
  // Each rule reads the target as sent, not what another rule left of it (found by fuzz_redact:
  // the bot token's mask ended at the JWT's first '.', which then no longer started with "eyJ").
  ExpectRedacted({
      {"a JWT as a bot token", "/bot87:" + std::string(kJwt) + "/x", "/bot***/x"},
      {"a token inside a secret name", "/x?x-ghp_abc_token=s3cr3t&page=2", "/x?x-ghp_***=***&page=2"},
  });
}

// Issue #16: userinfo goes whatever the scheme and its case, at the start of a target (the
// tracker's absolute form) or inside a value.
TEST(Redact, UserinfoIsDroppedWhateverTheScheme) {
  ExpectRedacted({
      {"inside a value", "/x?next=https://u:hunter22@evil.example/p", "/x?next=https://***@evil.example/p"},
      {"inside an encoded value", "/x?next=https%3A%2F%2Fu%3Ahunter22%40evil.example%2Fp",
       "/x?next=https%3A%2F%2F***%40evil.example%2Fp"},
      {"encoded twice", "/x?next=https%253A%252F%252Fu%253Ahunter22%2540evil.example%252Fp",
       "/x?next=https%253A%252F%252F***%2540evil.example%252Fp"},
      {"an encoded '/' in the password", "/x?next=https://u:hunter%2F22@evil.example/p",
       "/x?next=https://***@evil.example/p"},
      {"scheme-relative", "/x?next=//u:hunter22@evil.example/p", "/x?next=//***@evil.example/p"},
      {"a scheme-relative target", "//u:hunter22@evil.example/p", "//***@evil.example/p"},
      // Found by fuzz_redact: a masked value ends at the raw '/', with the scheme or even the
      // first '/' of "//" in it.
      {"after a masked path value", "/a;signature=ws://u:hunter22@evil.example/p",
       "/a;signature=***//***@evil.example/p"},
      {"'//' split by a masked value", "/a;signature=ws:%2F/u:hunter22@evil.example/p",
       "/a;signature=***/***@evil.example/p"},
  });
  for (const char* scheme : {"http", "https", "Https", "hTTP", "HTTPS", "ws", "ftp"}) {
    std::string target = absl::StrCat(scheme, "://user:hunter22@host.example/x?page=2");
    EXPECT_EQ(RedactTarget(target), absl::StrCat(scheme, "://***@host.example/x?page=2")) << scheme;
    HttpExchange e = Traced(absl::StrCat("GET ", target, " HTTP/1.1\r\n\r\n"));
    EXPECT_EQ(e.host, "host.example") << scheme;
    EXPECT_EQ(e.path, "/x?page=2") << scheme;
    // A head the tracker gives up on shows the whole target.
    Http1Stream s;
    s.OnClientBytes(absl::StrCat("GET ", target, " HTTP/1.1\r\nno colon here\r\n\r\n"), 1);
    std::vector<HttpExchange> done = s.TakeCompleted();
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].path, absl::StrCat(scheme, "://***@host.example/x?page=2")) << scheme;
  }
}

// What is not secret stays readable, percent-escapes and all.
TEST(Redact, WhatIsNotSecretStaysReadable) {
  ExpectRedacted({
      {"search", "/search/issues?q=is%3Aopen+label%3Abug&per_page=50",
       "/search/issues?q=is%3Aopen+label%3Abug&per_page=50"},
      {"names that only contain a short secret name",
       "/x?keyword=a&passenger=2&bypass=1&sidebar=0&ticket_id=5&author=me&codec=h264",
       "/x?keyword=a&passenger=2&bypass=1&sidebar=0&ticket_id=5&author=me&codec=h264"},
      {"a redirect without secrets", "/login?next=%2Frepos%3Fpage%3D2", "/login?next=%2Frepos%3Fpage%3D2"},
      {"a base64 JSON cursor is no JWT", "/x?cursor=eyJwYWdlIjoyfQ&page=2", "/x?cursor=eyJwYWdlIjoyfQ&page=2"},
      {"dotted names", "/v1/files/report.final.pdf", "/v1/files/report.final.pdf"},
      {"bots and robots", "/bots/list/robot/1/bot/x/bot12", "/bots/list/robot/1/bot/x/bot12"},
      {"path parameters", "/a;v=2/b;type=json", "/a;v=2/b;type=json"},
      {"a URL without userinfo", "/x?next=https://host.example/p", "/x?next=https://host.example/p"},
      {"a stray percent", "/x?q=100%&r=%zz&s=%4", "/x?q=100%&r=%zz&s=%4"},
  });
}

// The scrub is stable (the trace may scrub what was scrubbed) and its work is linear.
TEST(Redact, StableAndLinear) {
  for (const std::string& s : {std::string("ghp_***"), std::string("jwt:***"), std::string("github_pat_***%41"),
                               absl::StrCat("x%2", kClassic, "%2e", kJwt)}) {
    std::string once = ScrubTokens(s);
    EXPECT_EQ(ScrubTokens(once), once) << s;
    EXPECT_EQ(ScrubTokens(RedactTarget(s)), RedactTarget(s)) << s;
  }
  // Pathological inputs: long runs of what every rule starts with.
  for (absl::string_view unit : {"eyJ", "%25", "%2525", "://", "//a", "/%252F", "%2F/", "/bot1", "/bot1:", "a=",
                                  "password=", "%3D", "eyJa..", "ghp_"}) {
    std::string s;
    while (s.size() < 1000000) absl::StrAppend(&s, unit);
    std::string out = RedactTarget(s);
    EXPECT_LE(out.size(), 2 * s.size()) << unit;
  }
}

}  // namespace
}  // namespace awfshim
