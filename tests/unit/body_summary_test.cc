#include "awfshim/body_summary.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace awfshim {
namespace {

constexpr absl::string_view kUnparsed = R"({"unparsed":true})";

// A tool definition shaped like the Copilot CLI's (name, description, JSON-schema parameters).
std::string Tool(int i) {
  return absl::StrCat(R"({"type":"function","function":{"name":"tool_)", i,
                      R"(","description":"Runs step )", i,
                      R"( of the plan. Use it when the user asks for \"usage\" numbers.",)",
                      R"("parameters":{"type":"object","properties":{"path":{"type":"string","description":"file"},)",
                      R"("usage":{"type":"object"},"max_tokens":{"type":"integer"}},"required":["path"]}}})");
}

// The body the Copilot CLI (1.0.x) posts to /chat/completions, with its 19 tools; the contents
// are stand-ins, including a secret the summary must never repeat.
std::string CopilotChatBody() {
  std::vector<std::string> tools;
  for (int i = 0; i < 19; i++) tools.push_back(Tool(i));
  return absl::StrCat(
      R"({"messages":[{"role":"system","content":"You are the GitHub Copilot CLI, a terminal assistant.\nmodel: \"gpt-4o\""},)",
      R"({"role":"user","content":"say hi; my token is ghp_0123456789abcdefABCDEF0123456789abcd"}],)",
      R"("model":"gpt-5-mini","temperature":0,"top_p":1,"max_tokens":16384,"n":1,"stream":true,)",
      R"("stream_options":{"include_usage":true},"tools":[)", absl::StrJoin(tools, ","),
      R"(],"tool_choice":"auto","parallel_tool_calls":true})");
}

TEST(BodySummary, CopilotCliChatRequest) {
  std::string body = CopilotChatBody();
  EXPECT_EQ(SummarizeChatRequest(body),
            R"({"model":"gpt-5-mini","stream":true,"messages":2,"tools":19,"max_tokens":16384,"tool_choice":"auto"})");
}

TEST(BodySummary, ResponsesApiRequest) {
  std::string body = absl::StrCat(
      R"({"model":"gpt-5","input":[{"role":"user","content":[{"type":"input_text","text":"hi"}]},)",
      R"({"type":"function_call_output","call_id":"c1","output":"secret output"},{"role":"user","content":"x"}],)",
      R"("stream":false,"max_output_tokens":2048,"tools":[)", Tool(1), ",", Tool(2),
      R"(],"tool_choice":{"type":"function","name":"tool_1"},"store":false})");
  // An object tool_choice names a function: left out.
  EXPECT_EQ(SummarizeChatRequest(body),
            R"({"model":"gpt-5","stream":false,"input_items":3,"tools":2,"max_tokens":2048})");
  EXPECT_EQ(SummarizeChatRequest(R"({"model":"o3","input":"Tell me a joke"})"), R"({"model":"o3","input_items":1})");
}

TEST(BodySummary, MaxTokensNames) {
  EXPECT_EQ(SummarizeChatRequest(R"({"max_completion_tokens":100})"), R"({"max_tokens":100})");
  EXPECT_EQ(SummarizeChatRequest(R"({"max_output_tokens":7})"), R"({"max_tokens":7})");
  // max_tokens first, then max_completion_tokens; a non-integer is skipped.
  EXPECT_EQ(SummarizeChatRequest(R"({"max_completion_tokens":5,"max_tokens":9})"), R"({"max_tokens":9})");
  EXPECT_EQ(SummarizeChatRequest(R"({"max_tokens":"9","max_output_tokens":3})"), R"({"max_tokens":3})");
  EXPECT_EQ(SummarizeChatRequest(R"({"max_tokens":1.5})"), "{}");
}

TEST(BodySummary, WrongTypesAreLeftOut) {
  EXPECT_EQ(SummarizeChatRequest(
                R"({"model":5,"stream":"yes","messages":{},"input":7,"tools":null,"tool_choice":["a"]})"),
            "{}");
  EXPECT_EQ(SummarizeChatRequest("{}"), "{}");
  EXPECT_EQ(SummarizeChatRequest(R"({"messages":[]})"), R"({"messages":0})");
}

TEST(BodySummary, NeverCopiesContents) {
  std::string s = SummarizeChatRequest(CopilotChatBody());
  for (absl::string_view secret : {"ghp_", "say hi", "Copilot CLI", "tool_0", "Runs step", "include_usage", "system"}) {
    EXPECT_FALSE(absl::StrContains(s, secret)) << secret;
  }
}

TEST(BodySummary, LongModelAndToolChoiceAreCapped) {
  std::string model(500, 'm');
  std::string s = SummarizeChatRequest(absl::StrCat(R"({"model":")", model, R"(","tool_choice":")", model, R"("})"));
  EXPECT_EQ(s, absl::StrCat(R"({"model":")", std::string(128, 'm'), R"(","tool_choice":")", std::string(32, 'm'),
                            R"("})"));
}

TEST(BodySummary, CapsCutBetweenCharacters) {
  // 127 ASCII bytes then a 3-byte character: the character does not fit and is left out whole.
  std::string model = std::string(127, 'm') + "\xe2\x82\xac" + "tail";
  EXPECT_EQ(SummarizeChatRequest(absl::StrCat(R"({"model":")", model, R"("})")),
            absl::StrCat(R"({"model":")", std::string(127, 'm'), R"("})"));
}

TEST(BodySummary, ModelIsEscapedAndScrubbed) {
  EXPECT_EQ(SummarizeChatRequest(R"({"model":"a\"b\nc"})"), R"({"model":"a\"b\nc"})");
  EXPECT_EQ(SummarizeChatRequest(R"({"model":"ghp_0123456789abcdefABCDEF0123456789abcd"})"),
            R"({"model":"ghp_***"})");
  // Scrubbing can lengthen the text ("ghu_d" -> "ghu_***"): the cap holds after it (found by fuzzing).
  std::string model = "ghu_d%`````ghr_`" + std::string(150, 'A');
  std::string s = SummarizeChatRequest(absl::StrCat(R"({"model":")", model, R"("})"));
  EXPECT_EQ(s, absl::StrCat(R"({"model":"ghu_***%`````ghr_`)", std::string(128 - 18, 'A'), R"("})"));
  // Scrubbing shortens a long token: the cut made before it must not split a character either.
  // Only the first 4 * 32 bytes are looked at: "ghp_" N... "ab" (all one token), é, "cd", 18 x.
  std::string choice = "ghp_" + std::string(100, 'N') + "ab\u00e9cd" + std::string(40, 'x');
  EXPECT_EQ(SummarizeChatRequest(absl::StrCat(R"({"tool_choice":")", choice, R"("})")),
            absl::StrCat(R"({"tool_choice":"ghp_***)", "\u00e9cd", std::string(18, 'x'), R"("})"));
  choice = "ghp_" + std::string(123, 'N') + "\u00e9" + std::string(40, 'x');  // é straddles byte 128
  EXPECT_EQ(SummarizeChatRequest(absl::StrCat(R"({"tool_choice":")", choice, R"("})")), R"({"tool_choice":"ghp_***"})");
}

TEST(BodySummary, NotAJsonObject) {
  std::string body = CopilotChatBody();
  EXPECT_EQ(SummarizeChatRequest(""), kUnparsed);
  EXPECT_EQ(SummarizeChatRequest("   "), kUnparsed);
  EXPECT_EQ(SummarizeChatRequest("[1,2]"), kUnparsed);
  EXPECT_EQ(SummarizeChatRequest("\"model\""), kUnparsed);
  EXPECT_EQ(SummarizeChatRequest("model=gpt-5&stream=true"), kUnparsed);
  EXPECT_EQ(SummarizeChatRequest(R"({"model":"x"} {"model":"y"})"), kUnparsed);
  EXPECT_EQ(SummarizeChatRequest(std::string("{\"model\":\"x\"}\0", 14)), kUnparsed);
  // Truncated anywhere (as when the tap keeps only the first 256 KiB): never a partial summary.
  for (size_t n : {size_t{1}, size_t{10}, body.size() / 2, body.size() - 1}) {
    EXPECT_EQ(SummarizeChatRequest(absl::string_view(body).substr(0, n)), kUnparsed) << n;
  }
  // Invalid UTF-8 in a string is invalid JSON for simdjson.
  EXPECT_EQ(SummarizeChatRequest("{\"model\":\"\xff\"}"), kUnparsed);
}

TEST(BodySummary, DeepNestingIsRejectedNotOverflowed) {
  std::string deep = absl::StrCat(R"({"model":"m","x":)", std::string(5000, '['), std::string(5000, ']'), "}");
  EXPECT_EQ(SummarizeChatRequest(deep), kUnparsed);
  std::string ok = absl::StrCat(R"({"model":"m","x":)", std::string(100, '['), std::string(100, ']'), "}");
  EXPECT_EQ(SummarizeChatRequest(ok), R"({"model":"m"})");
}

TEST(BodySummary, ChatPaths) {
  for (absl::string_view p : {"/chat/completions", "/v1/chat/completions", "/responses", "/v1/responses",
                              "/openai/deployments/gpt/chat/completions?api-version=2024-10-21",
                              "/v1/chat/completions/", "/chat/completions#x"}) {
    EXPECT_TRUE(IsChatRequestPath(p)) << p;
  }
  for (absl::string_view p : {"/", "", "/models", "/v1/embeddings", "/chat/completions/abc", "/responsesx",
                              "/x?next=/chat/completions", "/v1/completions", "/_ping"}) {
    EXPECT_FALSE(IsChatRequestPath(p)) << p;
  }
}

}  // namespace
}  // namespace awfshim
