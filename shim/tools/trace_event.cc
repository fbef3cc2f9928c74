#include "trace_event.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "awfshim/json_writer.h"


namespace awfshim::tracetool {
namespace {

simdjson::simdjson_result<simdjson::dom::element> Field(const Event& e, std::string_view key) {
  return e.obj.at_key(key);
}

bool Digits(std::string_view s, size_t pos, size_t n, int64_t* out) {
  if (pos + n > s.size()) return false;
  int64_t v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, int64_t* m, int64_t* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp + (mp < 10 ? 3 : -9);
  *y = yoe + era * 400 + (*m <= 2);
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

Ev EvFromName(std::string_view n) {
  if (n == "connect") return Ev::kConnect;
  if (n == "tunnel") return Ev::kTunnel;
  if (n == "close") return Ev::kClose;
  if (n == "dns") return Ev::kDns;
  if (n == "tls") return Ev::kTls;
  if (n == "http") return Ev::kHttp;
  if (n == "init") return Ev::kInit;
  if (n == "error") return Ev::kError;
  if (n == "tap") return Ev::kTap;
  if (n == "trace_dropped") return Ev::kTraceDropped;
  return Ev::kUnknown;
}

std::string_view Str(const Event& e, std::string_view key, std::string_view def) {
  std::string_view v;
  return Field(e, key).get(v) == simdjson::SUCCESS ? v : def;
}

std::optional<int64_t> Int(const Event& e, std::string_view key) {
  int64_t v;
  if (Field(e, key).get(v) == simdjson::SUCCESS) return v;
  double d;
  if (Field(e, key).get(d) == simdjson::SUCCESS && d >= -9e18 && d <= 9e18) return static_cast<int64_t>(d);
  return std::nullopt;
}

std::optional<double> Num(const Event& e, std::string_view key) {
  double d;
  if (Field(e, key).get(d) == simdjson::SUCCESS) return d;  // simdjson converts integers too
  return std::nullopt;
}

bool Bool(const Event& e, std::string_view key) {
  bool b = false;
  return Field(e, key).get(b) == simdjson::SUCCESS && b;
}

bool Has(const Event& e, std::string_view key) { return Field(e, key).error() == simdjson::SUCCESS; }

std::optional<double> Duration(const Event& e, std::string_view key) { return Duration(Num(e, key)); }

std::optional<double> Duration(std::optional<double> ms) {
  return ms && *ms >= 0 && *ms <= kMaxDurationMs ? ms : std::nullopt;
}

bool UnparsedHttp(const Event& e) { return e.ev == Ev::kHttp && Str(e, "method").empty(); }

bool InterruptedHttp(const Event& e) { return e.ev == Ev::kHttp && !UnparsedHttp(e) && Bool(e, "incomplete"); }

bool FailedHttp(const Event& e) {
  if (e.ev != Ev::kHttp || UnparsedHttp(e) || Bool(e, "incomplete")) return false;
  std::optional<int64_t> status = Int(e, "status");
  return !(status && *status > 0 && *status < 400);
}

bool ParseTs(std::string_view s, int64_t* us) {
  // YYYY-MM-DDTHH:MM:SS[.f…]Z. Consecutive lines share the minute: it is parsed once.
  static thread_local char cached[16];
  static thread_local int64_t cached_us = INT64_MIN;
  int64_t base, se;
  if (s.size() < 20 || s[16] != ':' || !Digits(s, 17, 2, &se) || se > 60) return false;
  if (cached_us != INT64_MIN && memcmp(cached, s.data(), 16) == 0) {
    base = cached_us;
  } else {
    int64_t y, mo, d, h, mi;
    if (!Digits(s, 0, 4, &y) || s[4] != '-' || !Digits(s, 5, 2, &mo) || s[7] != '-' || !Digits(s, 8, 2, &d) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !Digits(s, 11, 2, &h) || s[13] != ':' ||
        !Digits(s, 14, 2, &mi)) {
      return false;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59) return false;
    base = (DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60) * 1000000;
    memcpy(cached, s.data(), 16);
    cached_us = base;
  }
  size_t i = 19;
  int64_t frac = 0;
  if (s[i] == '.') {
    ++i;
    int n = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (n < 6) frac = frac * 10 + (s[i] - '0');
      ++n;
      ++i;
    }
    if (n == 0 || n > 9) return false;
    for (; n < 6; ++n) frac *= 10;
  }
  if (i + 1 != s.size() || (s[i] != 'Z' && s[i] != 'z')) return false;
  *us = base + se * 1000000 + frac;
  return true;
}

std::string TimeOfDay(int64_t us) {
  const int64_t day_us = 86400LL * 1000000;
  int64_t t = us - FloorDiv(us, day_us) * day_us;
  char buf[32];
  snprintf(buf, sizeof buf, "%02d:%02d:%02d.%06d", static_cast<int>(t / 3600000000LL),
           static_cast<int>(t / 60000000 % 60), static_cast<int>(t / 1000000 % 60), static_cast<int>(t % 1000000));
  return buf;
}

std::string Iso(int64_t us, int digits) {
  const int64_t day_us = 86400LL * 1000000;
  const int64_t days = FloorDiv(us, day_us);
  const int64_t t = us - days * day_us;
  int64_t y, m, d;
  CivilFromDays(days, &y, &m, &d);
  char buf[48];
  const bool ms = digits <= 3;
  snprintf(buf, sizeof buf, ms ? "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" : "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
           static_cast<int>(y), static_cast<int>(m), static_cast<int>(d), static_cast<int>(t / 3600000000LL),
           static_cast<int>(t / 60000000 % 60), static_cast<int>(t / 1000000 % 60),
           static_cast<int>(ms ? t % 1000000 / 1000 : t % 1000000));
  return buf;
}

HostPort SplitHostPort(std::string_view s) {
  // A port is 1 to 5 digits after the last colon: of "[v6]" or of a name with no other colon.
  auto port_of = [](std::string_view digits, int64_t* port) {
    return !digits.empty() && digits.size() <= 5 && Digits(digits, 0, digits.size(), port);
  };
  int64_t port = 0;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == s.size() - 1) return {s.substr(1, close - 1)};
    if (close != std::string_view::npos && s[close + 1] == ':' && port_of(s.substr(close + 2), &port)) {
      return {s.substr(1, close - 1), port};
    }
    return {s};
  }
  size_t colon = s.rfind(':');
  if (colon != std::string_view::npos && s.find(':') == colon && port_of(s.substr(colon + 1), &port)) {
    return {s.substr(0, colon), port};
  }
  return {s};
}

HostPort EventHost(const Event& e) {
  const Event::Hot& f = e.hot;
  HostPort hp = SplitHostPort(!f.host.empty() ? f.host : !f.target.empty() ? f.target : f.addr);
  if (hp.port == 0 && f.port && *f.port > 0 && *f.port <= 65535) hp.port = *f.port;
  if (hp.port == 0 && !f.addr.empty()) hp.port = SplitHostPort(f.addr).port;
  return hp;
}

std::string JoinHostPort(std::string_view host, int64_t port) {
  std::string s = host.find(':') == std::string_view::npos ? std::string(host) : Cat("[", host, "]");
  if (port != 0) Append(&s, ":", port);
  return s;
}

std::string_view SquidErrorName(std::string_view s) {
  size_t sp = s.find(' ');
  return sp == std::string_view::npos ? s : s.substr(0, sp);
}

std::string Clean(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    bool c1 = c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) < 0xa0 &&
              static_cast<unsigned char>(s[i + 1]) >= 0x80;
    if (c < 0x20 || c == 0x7f || c1) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\x%02x", c1 ? static_cast<unsigned char>(s[++i]) : c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

size_t Width(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return n;
}

std::string FormatMs(double ms) {
  char buf[48];
  snprintf(buf, sizeof buf, "%.3f", ms);
  return buf;
}

void WriteNumber(JsonWriter& w, double v) {
  if (!std::isfinite(v)) {
    w.Null();
    return;
  }
  if (std::fabs(v) >= 9e15) {
    // Past 2^53 the digits are noise, and an integer past 64 bits is JSON but parsers such as
    // simdjson refuse it.
    w.Exponent(v);
    return;
  }
  if (v == std::floor(v)) {
    w.Int(static_cast<int64_t>(v));
    return;
  }
  int decimals = 1;
  for (; decimals < 9; ++decimals) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.*f", decimals, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  w.Double(v, decimals);
}

namespace {

void WriteAt(JsonWriter& w, simdjson::dom::element v, int depth);

void WriteObjectAt(JsonWriter& w, simdjson::dom::object o, int depth) {
  w.BeginObject();
  for (auto field : o) {
    w.Key(A(field.key));
    WriteAt(w, field.value, depth + 1);
  }
  w.EndObject();
}

// depth: how many arrays and objects of the value written enclose v.
void WriteAt(JsonWriter& w, simdjson::dom::element v, int depth) {
  simdjson::dom::object o;
  simdjson::dom::array a;
  std::string_view s;
  int64_t i;
  uint64_t u;
  double d;
  bool b;
  if ((v.is_object() || v.is_array()) && depth >= kMaxWriteDepth) {
    w.String(simdjson::minify(v));
  } else if (v.get(o) == simdjson::SUCCESS) {
    WriteObjectAt(w, o, depth);
  } else if (v.get(a) == simdjson::SUCCESS) {
    w.BeginArray();
    for (auto x : a) WriteAt(w, x, depth + 1);
    w.EndArray();
  } else if (v.get(s) == simdjson::SUCCESS) {
    w.String(A(s));
  } else if (v.get(i) == simdjson::SUCCESS) {
    w.Int(i);
  } else if (v.get(u) == simdjson::SUCCESS) {
    WriteNumber(w, static_cast<double>(u));
  } else if (v.get(d) == simdjson::SUCCESS) {
    WriteNumber(w, d);
  } else if (v.get(b) == simdjson::SUCCESS) {
    w.Bool(b);
  } else {
    w.Null();
  }
}

}  // namespace

void WriteObject(JsonWriter& w, simdjson::dom::object o) { WriteObjectAt(w, o, 0); }

void WriteValue(JsonWriter& w, simdjson::dom::element v) { WriteAt(w, v, 0); }

}  // namespace awfshim::tracetool
