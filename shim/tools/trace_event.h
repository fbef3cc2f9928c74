// One trace line, parsed: the common fields decoded, the rest left in the simdjson DOM (valid
// until the source it came from parses its next line). Helpers shared by the commands.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/strings/string_view.h"
#include "simdjson.h"

namespace awfshim {
class JsonWriter;
}

namespace awfshim::tracetool {

enum class Ev : uint8_t { kInit, kError, kDns, kConnect, kTunnel, kTls, kClose, kHttp, kTap, kTraceDropped, kUnknown };

// The schema version this tool reads; a line with another "schema" is counted and skipped.
inline constexpr int64_t kSchema = 1;

struct Event {
  Ev ev = Ev::kUnknown;
  std::string_view ev_name;
  std::string_view ts;  // as written
  int64_t ts_us = 0;    // microseconds since the epoch
  int64_t pid = 0;
  int64_t tid = 0;
  std::string_view exe;
  simdjson::dom::object obj;
  // The fields read for every event, picked up in the same pass as the common ones (looking
  // each up with Str/Int/… costs a scan of the object). Absent: null data / nullopt / false.
  struct Hot {
    std::string_view host, target, addr, decision, result, by, squid_error, err, method, path;
    std::optional<int64_t> fd, port, status, bytes_out, bytes_in;
    std::optional<double> ms;
    bool open_at_exit = false;
    bool has_error = false;
  } hot;
  int source = 0;     // index of the input it came from
  uint64_t line = 0;  // 1-based line number in that input
};

Ev EvFromName(std::string_view name);

// Field access; an absent field or one of another type gives nullopt / the default.
std::string_view Str(const Event& e, std::string_view key, std::string_view def = {});
std::optional<int64_t> Int(const Event& e, std::string_view key);
std::optional<double> Num(const Event& e, std::string_view key);  // integer or float
bool Bool(const Event& e, std::string_view key);
bool Has(const Event& e, std::string_view key);
// Durations past this (~32 years) are garbage, not measurements: taken as not known, which also
// keeps every rendering of a duration short and finite (HAR times, percentiles, FormatMs).
inline constexpr double kMaxDurationMs = 1e12;
// A duration in ms; nullopt when absent, negative (the shim writes -1 for "not known") or past
// kMaxDurationMs. Every command judges durations by this, so they agree on which are known.
std::optional<double> Duration(const Event& e, std::string_view key);
std::optional<double> Duration(std::optional<double> ms);
// An http event the shim could not parse (no method: e.g. {"protocol":"h2","problem":"HTTP/2 is
// not parsed"}): a limit of the tap, not a failed request.
bool UnparsedHttp(const Event& e);
// An http exchange the process exited in the middle of (`"incomplete": true`): interrupted, not
// a failure of the server, whatever its status so far.
bool InterruptedHttp(const Event& e);
// A parsed http exchange that failed: no response (status 0 or absent) or a status >= 400, and
// not interrupted.
bool FailedHttp(const Event& e);

// "2026-11-28T17:38:44.123456Z" (fraction of any length up to 9 digits, or none) → µs.
bool ParseTs(std::string_view ts, int64_t* us);
std::string TimeOfDay(int64_t us);      // "17:38:44.123456"
std::string Iso(int64_t us, int digits);  // digits 3: "2026-11-28T17:38:44.123Z", 6: µs

struct HostPort {
  std::string_view host;  // without brackets, as written
  int64_t port = 0;       // 0: none named
};
// "host:port", "[v6]:port", "[v6]" or a bare host (a bare IPv6 address has no port).
HostPort SplitHostPort(std::string_view s);
// The host an event is about and its port where it names one: `host`, else `target`, else
// `addr`; the port in that field, else `port` (close: an application's CONNECT puts host:port in
// `host`, `port` is then the proxy's), else the one of `addr` (connect: a routed name's). Every
// command keys hosts by this host (ASCII case aside) whatever the port, so a connection's events,
// which do not all name its port, meet in one row.
HostPort EventHost(const Event& e);
// "host:port", "[v6]:port"; without ":port" when port is 0.
std::string JoinHostPort(std::string_view host, int64_t port);
// "ERR_ACCESS_DENIED 0" → "ERR_ACCESS_DENIED".
std::string_view SquidErrorName(std::string_view squid_error);

// For human output: control characters and invalid bytes shown as \xNN, so a trace cannot
// drive the terminal.
std::string Clean(std::string_view s);
// Display width of UTF-8 text (code points).
size_t Width(std::string_view s);

std::string FormatMs(double ms);  // "1.093"

// JSON output of a value read from a trace (strings re-escaped and scrubbed by JsonWriter);
// numbers with the fewest decimals (at most 9) that give the value back, past 9e15 in exponent
// form; NaN/inf → null. Arrays and objects nested more than kMaxWriteDepth levels below the value
// come out as a string of their compact JSON: JsonWriter keeps track of 64 levels only, and the
// value itself sits inside the caller's objects.
inline constexpr int kMaxWriteDepth = 32;
void WriteValue(JsonWriter& w, simdjson::dom::element v);
void WriteObject(JsonWriter& w, simdjson::dom::object o);
void WriteNumber(JsonWriter& w, double v);

inline absl::string_view A(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// StrCat/StrAppend for std::string_view (Debian's Abseil has its own absl::string_view).
namespace internal {
inline void AppendOne(std::string* out, std::string_view s) { out->append(s); }
inline void AppendOne(std::string* out, const std::string& s) { out->append(s); }
inline void AppendOne(std::string* out, const char* s) { out->append(s); }
template <typename T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char>)
void AppendOne(std::string* out, T v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}
}  // namespace internal

template <typename... Args>
void Append(std::string* out, const Args&... args) {
  (internal::AppendOne(out, args), ...);
}
template <typename... Args>
std::string Cat(const Args&... args) {
  std::string s;
  Append(&s, args...);
  return s;
}

}  // namespace awfshim::tracetool
