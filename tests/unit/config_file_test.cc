#include "awfshim/config_file.h"

#include "gtest/gtest.h"

namespace awfshim {
namespace {

TEST(ConfigFile, ReadsStringsArraysAndNumbersWithPositions) {
  ConfigFile f = ParseConfigFile("c.json", "{\"proxy\":\"http://p:1\",\n\"route\":[\"a.com\",\"*.b.com\"],\"timeout_ms\":250}");
  ASSERT_TRUE(f.errors.empty()) << f.errors[0].ToString();
  ASSERT_EQ(f.values["proxy"].size(), 1u);
  EXPECT_EQ(f.values["proxy"][0].text, "http://p:1");
  EXPECT_EQ(f.values["proxy"][0].where, "c.json:1:10");
  ASSERT_EQ(f.values["route"].size(), 2u);
  EXPECT_EQ(f.values["route"][1].text, "*.b.com");
  EXPECT_EQ(f.values["route"][1].where, "c.json:2:18");
  EXPECT_EQ(f.values["timeout_ms"][0].text, "250");
}

TEST(ConfigFile, WrongTypesUnknownAndDuplicateKeysAreErrors) {
  ConfigFile f = ParseConfigFile("c.json", R"({"proxy": 5, "dns": ["fake"], "route": [1, "ok.com"], "only": "x", "dns": "fake", "timeout_ms": "10"})");
  std::vector<std::string> msgs;
  for (const auto& e : f.errors) msgs.push_back(e.ToString());
  ASSERT_EQ(msgs.size(), 6u);
  EXPECT_EQ(msgs[0], "c.json:1:11: \"proxy\" must be a string");
  EXPECT_EQ(msgs[1], "c.json:1:21: \"dns\" must be a string");
  EXPECT_EQ(msgs[2], "c.json:1:41: elements of \"route\" must be strings");
  EXPECT_NE(msgs[3].find("c.json:1:55: unknown key \"only\""), std::string::npos) << msgs[3];
  EXPECT_EQ(msgs[4], "c.json:1:68: key \"dns\" given twice");
  EXPECT_EQ(msgs[5], "c.json:1:97: \"timeout_ms\" must be a whole number");
  EXPECT_EQ(f.values["route"].size(), 1u);
}

TEST(ConfigFile, BrokenJsonIsOneErrorWithAPosition) {
  for (const char* bad : {"", "[1,2]", "{\"dns\": \"fake\"", "{\"dns\" \"fake\"}", "{\"dns\": \"fake\"} trailing",
                          "{\"route\": [\"a\", }", "\xff\xfe{}",
                          // stray brackets read as elements of the wrong type before the syntax error
                          "{\"route\": [\"\",],} ,] ,],],} ,  },,\"\",,],} ,] ,  m,],} ,],}  ,U , ],} ,],}},}}"}) {
    ConfigFile f = ParseConfigFile("c.json", bad);
    ASSERT_EQ(f.errors.size(), 1u) << bad;
    EXPECT_NE(f.errors[0].message.find("invalid JSON"), std::string::npos) << f.errors[0].ToString();
    EXPECT_TRUE(f.values.empty()) << bad;
    EXPECT_EQ(f.errors[0].where.rfind("c.json:", 0), 0u) << bad;
  }
}

// At the engine's 1 MiB limit: half a million bad elements. Positions stay exact, stderr gets
// kMaxConfigErrors lines and a count, and parsing is linear (quadratic took minutes: the test's
// timeout is the hang guard).
TEST(ConfigFile, AHugeFileOfErrorsIsCappedAndLinear) {
  constexpr size_t kBad = 500000;
  std::string content = "{\"route\":[";
  for (size_t i = 0; i < kBad; i++) content += "1,";
  content += "\"ok.com\"]}";
  ConfigFile f = ParseConfigFile("c.json", content);
  ASSERT_EQ(f.errors.size(), kMaxConfigErrors + 1);
  EXPECT_EQ(f.errors[0].ToString(), "c.json:1:11: elements of \"route\" must be strings");
  EXPECT_EQ(f.errors[kMaxConfigErrors - 1].where, "c.json:1:" + std::to_string(11 + 2 * (kMaxConfigErrors - 1)));
  EXPECT_EQ(f.errors.back().ToString(), "c.json: and " + std::to_string(kBad - kMaxConfigErrors) + " more errors");
  ASSERT_EQ(f.values["route"].size(), 1u);
  EXPECT_EQ(f.values["route"][0].where, "c.json:1:" + std::to_string(11 + 2 * kBad));
}

}  // namespace
}  // namespace awfshim
