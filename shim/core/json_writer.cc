#include "awfshim/json_writer.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "awfshim/redact.h"

namespace awfshim {
namespace {

// Length of the valid UTF-8 sequence starting at s[0], or 0.
size_t Utf8Length(absl::string_view s) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char c = byte(0);
  size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  for (size_t i = 1; i < n; i++) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i) & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

void JsonWriter::Separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  uint64_t bit = uint64_t{1} << (depth_ & 63);
  if (need_comma_ & bit) out_.push_back(',');
  need_comma_ |= bit;
}

JsonWriter& JsonWriter::BeginObject() {
  Separate();
  out_.push_back('{');
  depth_++;
  need_comma_ &= ~(uint64_t{1} << (depth_ & 63));
  return *this;
}

JsonWriter& JsonWriter::EndObject() {
  depth_--;
  out_.push_back('}');
  return *this;
}

JsonWriter& JsonWriter::BeginArray() {
  Separate();
  out_.push_back('[');
  depth_++;
  need_comma_ &= ~(uint64_t{1} << (depth_ & 63));
  return *this;
}

JsonWriter& JsonWriter::EndArray() {
  depth_--;
  out_.push_back(']');
  return *this;
}

JsonWriter& JsonWriter::Key(absl::string_view key) {
  Separate();
  Escaped(key);
  out_.push_back(':');
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::String(absl::string_view value) {
  Separate();
  if (MayContainToken(value)) {
    Escaped(ScrubTokens(value));
  } else {
    Escaped(value);
  }
  return *this;
}

JsonWriter& JsonWriter::Int(int64_t value) {
  Separate();
  absl::StrAppend(&out_, value);
  return *this;
}

// Both number forms write null for NaN and infinity, which JSON has no form for.
void JsonWriter::AppendExponent(double value) {
  if (!std::isfinite(value)) {
    out_.append("null");
    return;
  }
  char buf[32];  // the longest: -2.2250738585072014e-308
  auto r = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  out_.append(buf, static_cast<size_t>(r.ptr - buf));
}

JsonWriter& JsonWriter::Double(double value, int decimals) {
  Separate();
  char buf[64];
  int n = std::isfinite(value) ? std::snprintf(buf, sizeof buf, "%.*f", decimals, value) : -1;
  if (n < 0 || static_cast<size_t>(n) >= sizeof buf) {
    // Not finite, or too many digits for fixed notation (|value| past ~1e50).
    AppendExponent(value);
  } else {
    out_.append(buf, static_cast<size_t>(n));
  }
  return *this;
}

JsonWriter& JsonWriter::Millis(int64_t micros) {
  Separate();
  const uint64_t magnitude = micros < 0 ? 0 - static_cast<uint64_t>(micros) : static_cast<uint64_t>(micros);
  const char thousandths[3] = {static_cast<char>('0' + magnitude / 100 % 10), static_cast<char>('0' + magnitude / 10 % 10),
                               static_cast<char>('0' + magnitude % 10)};
  absl::StrAppend(&out_, micros < 0 ? "-" : "", magnitude / 1000, ".", absl::string_view(thousandths, 3));
  return *this;
}

JsonWriter& JsonWriter::Exponent(double value) {
  Separate();
  AppendExponent(value);
  return *this;
}

JsonWriter& JsonWriter::Bool(bool value) {
  Separate();
  out_.append(value ? "true" : "false");
  return *this;
}

JsonWriter& JsonWriter::Raw(absl::string_view json) {
  Separate();
  out_.append(json.data(), json.size());
  return *this;
}

JsonWriter& JsonWriter::Null() {
  Separate();
  out_.append("null");
  return *this;
}

void JsonWriter::Escaped(absl::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out_.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    // Printable ASCII other than the two that need a backslash goes over in runs.
    size_t plain = i;
    while (plain < s.size() && s[plain] >= 0x20 && s[plain] < 0x7f && s[plain] != '"' && s[plain] != '\\') plain++;
    out_.append(s.data() + i, plain - i);
    i = plain;
    if (i == s.size()) break;
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t n = Utf8Length(s.substr(i));
      if (n == 0) {
        out_.append("\\ufffd");
        i++;
      } else {
        out_.append(s.data() + i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out_.append("\\\"");
        break;
      case '\\':
        out_.append("\\\\");
        break;
      case '\n':
        out_.append("\\n");
        break;
      case '\r':
        out_.append("\\r");
        break;
      case '\t':
        out_.append("\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out_.append("\\u00");
          out_.push_back(kHex[c >> 4]);
          out_.push_back(kHex[c & 15]);
        }
    }
    i++;
  }
  out_.push_back('"');
}

}  // namespace awfshim
