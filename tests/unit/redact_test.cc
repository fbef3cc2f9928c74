#include "awfshim/redact.h"

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
  EXPECT_EQ(RedactQuery("/login/oauth?code=abc123&state=xyz&page=2"), "/login/oauth?code=***&state=***&page=2");
  EXPECT_EQ(RedactQuery("/x?access_token=s3cr3t;per_page=100"), "/x?access_token=***;per_page=100");
  EXPECT_EQ(RedactQuery("/repos/github/copilot-cli/releases?per_page=100"),
            "/repos/github/copilot-cli/releases?per_page=100");
  EXPECT_EQ(RedactQuery("/plain/path"), "/plain/path");
  EXPECT_EQ(RedactQuery(std::string("/x?q=") + kClassic), "/x?q=ghp_***");
}

TEST(Redact, ScrubTokensFindsEveryGitHubTokenInFreeText) {
  std::string text = std::string("a ") + kPat + " b " + kClassic + "," + kOauth + "(" + kUser + ")" + kServer;
  std::string out = ScrubTokens(text);
  EXPECT_EQ(out, "a github_pat_*** b ghp_***,gho_***(ghu_***)ghs_***");
  EXPECT_EQ(ScrubTokens("ghp_ alone and xghp_notatoken"), "ghp_ alone and xghp_notatoken");
  EXPECT_EQ(ScrubTokens("nothing here"), "nothing here");
}

}  // namespace
}  // namespace awfshim
