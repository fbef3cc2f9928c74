#include "awfshim/json_writer.h"

#include <cmath>

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

// Fixed notation of 1e300 needs 300+ digits: the writer's buffer once let snprintf's length
// through and appended bytes past it. NaN and infinity have no JSON form.
TEST(JsonWriter, DoublesOfAnySizeAreValidJson) {
  JsonWriter w;
  w.BeginArray().Double(1.5, 3).Double(1e300, 3).Double(-2.5e200, 1).Double(NAN, 3).Double(INFINITY, 3).EndArray();
  EXPECT_EQ(w.str(), "[1.500,1e+300,-2.5e+200,null,null]");
  simdjson::dom::parser parser;
  simdjson::dom::element doc = ParseOrFail(parser, w.str());
  double big = 0;
  ASSERT_FALSE(doc.at(1).get(big));
  EXPECT_EQ(big, 1e300);
}

// The engine's durations: whole microseconds, written exactly (no binary rounding of 0.001).
TEST(JsonWriter, MillisAreExactThousandths) {
  JsonWriter w;
  w.BeginArray().Millis(0).Millis(7).Millis(1234).Millis(12345).Millis(-1000).Millis(-7).Millis(INT64_MIN).EndArray();
  EXPECT_EQ(w.str(), "[0.000,0.007,1.234,12.345,-1.000,-0.007,-9223372036854775.808]");
  simdjson::dom::parser parser;
  simdjson::dom::element doc = ParseOrFail(parser, w.str());
  double ms = 0;
  ASSERT_FALSE(doc.at(3).get(ms));
  EXPECT_EQ(ms, 12.345);
}

TEST(JsonWriter, ExponentIsTheShortestExactForm) {
  JsonWriter w;
  w.BeginArray().Exponent(1e300).Exponent(9007199254740993.0).Exponent(-0.1).Exponent(NAN).EndArray();
  EXPECT_EQ(w.str(), "[1e+300,9.007199254740992e+15,-1e-01,null]");
}

TEST(JsonWriter, StringsNeverCarryATokenThrough) {
  JsonWriter w;
  w.BeginObject().Field("msg", "failed with ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 in it").EndObject();
  EXPECT_EQ(w.str(), R"({"msg":"failed with ghp_*** in it"})");
}

}  // namespace
}  // namespace awfshim
