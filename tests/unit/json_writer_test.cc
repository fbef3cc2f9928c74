#include "awfshim/json_writer.h"

#include "gtest/gtest.h"
#include "simdjson.h"

namespace awfshim {
namespace {

simdjson::dom::element ParseOrFail(simdjson::dom::parser& parser, const std::string& json) {
  simdjson::dom::element doc;
  auto err = parser.parse(json).get(doc);
  EXPECT_FALSE(err) << simdjson::error_message(err) << " in " << json;
  return doc;
}

TEST(JsonWriter, NestedObjectsAndArrays) {
  JsonWriter w;
  w.BeginObject().Field("a", 1).Key("b").BeginArray().String("x").Int(-2).Bool(true).Null().EndArray();
  w.Key("c").BeginObject().Field("d", "e").EndObject().Field("f", false).EndObject();
  EXPECT_EQ(w.str(), R"({"a":1,"b":["x",-2,true,null],"c":{"d":"e"},"f":false})");
}

TEST(JsonWriter, EscapesControlCharactersAndReplacesInvalidUtf8) {
  JsonWriter w;
  std::string nasty = "q\"b\\n\n\t\x01\x7f caf\xc3\xa9 \xff\xfe \xe2\x82 \xed\xa0\x80 \xf0\x9f\x98\x80";
  w.BeginObject().Field("s", nasty).EndObject();
  simdjson::dom::parser parser;
  simdjson::dom::element doc = ParseOrFail(parser, w.str());
  std::string_view back;
  ASSERT_FALSE(doc["s"].get(back));
  EXPECT_EQ(back, "q\"b\\n\n\t\x01\x7f caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd "
                  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xf0\x9f\x98\x80");
}

TEST(JsonWriter, StringsNeverCarryATokenThrough) {
  JsonWriter w;
  w.BeginObject().Field("msg", "failed with ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 in it").EndObject();
  EXPECT_EQ(w.str(), R"({"msg":"failed with ghp_*** in it"})");
}

}  // namespace
}  // namespace awfshim
