// A small JSON writer for trace lines: always valid JSON (invalid UTF-8 is replaced, control
// characters escaped), and every string passes through ScrubTokens.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include <string_view>

namespace awfshim {

class JsonWriter {
 public:
  JsonWriter() { out_.reserve(256); }

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(absl::string_view key);
  JsonWriter& String(absl::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Double(double value, int decimals);
  // Milliseconds with three decimals from whole microseconds (1234 -> 1.234): exact, and no
  // floating-point formatting in the engine.
  JsonWriter& Millis(int64_t micros);
  // The shortest form that reads back exactly, always with an exponent (1e+300).
  JsonWriter& Exponent(double value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();
  // Already-serialized JSON from this writer (e.g. another JsonWriter's str()), inserted as is.
  JsonWriter& Raw(absl::string_view json);

  // key + value in one call.
  JsonWriter& Field(absl::string_view key, absl::string_view value) { return Key(key).String(value); }
  JsonWriter& Field(absl::string_view key, const char* value) { return Key(key).String(value); }
  JsonWriter& Field(absl::string_view key, int64_t value) { return Key(key).Int(value); }
  JsonWriter& Field(absl::string_view key, int value) { return Key(key).Int(value); }
  JsonWriter& Field(absl::string_view key, unsigned value) { return Key(key).Int(value); }
  JsonWriter& Field(absl::string_view key, uint64_t value) { return Key(key).Int(static_cast<int64_t>(value)); }
  JsonWriter& Field(absl::string_view key, bool value) { return Key(key).Bool(value); }

  const std::string& str() const { return out_; }
  std::string& mutable_str() { return out_; }

 private:
  void Separate();
  void AppendExponent(double value);
  void Escaped(absl::string_view s);

  std::string out_;
  uint64_t need_comma_ = 0;  // one bit per nesting level
  int depth_ = 0;
  bool after_key_ = false;
};

}  // namespace awfshim
