// libFuzzer target: Http1Stream on a scripted connection. The input is a list of records, each
// a control byte then bytes: 0x00 closes the connection; otherwise bit 7 says who (0: the client
// wrote, 1: the client read) and the low 7 bits the length (0x7f: a 2-byte big-endian length
// follows; 0x7e: a repeat count byte R and a length byte L follow, then L bytes sent (R+1)*1024
// times, so that the 64 KiB and 256 KiB limits are within reach of short inputs). Record i
// happens at time 10*i.
//
// The script is played twice, each record whole and then in small pieces (1 to 8 bytes, long
// records 1 to 256, sizes drawn from a generator seeded by the input, so every boundary is cut
// somewhere across runs): the exchanges must be the same (chunk boundaries must not matter).
// Expanded records add up to at most 320 KiB per script, past every limit and still quick.
// Checked throughout: the memory bound, and that every exchange is within its caps, shows no
// control character or token, and is consistent.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "awfshim/http1.h"
#include "awfshim/redact.h"
#include "fuzz_support.h"

namespace {

using awfshim::HttpExchange;
using awfshim::Http1Stream;

constexpr size_t kMaxExpanded = 320 * 1024;

struct Record {
  bool close = false;
  bool server = false;
  std::string bytes;
  int64_t t = 0;
};

std::vector<Record> ParseScript(absl::string_view in) {
  std::vector<Record> out;
  size_t expanded = 0;
  while (!in.empty()) {
    Record r;
    r.t = 10 * static_cast<int64_t>(out.size() + 1);
    uint8_t c = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    if (c == 0) {
      r.close = true;
      out.push_back(r);
      continue;
    }
    r.server = (c & 0x80) != 0;
    size_t len = c & 0x7f;
    if (len == 0x7e && in.size() >= 2) {
      size_t times = (static_cast<size_t>(static_cast<uint8_t>(in[0])) + 1) * 1024;
      len = std::min<size_t>(static_cast<uint8_t>(in[1]), in.size() - 2);
      absl::string_view unit = in.substr(2, len);
      in.remove_prefix(2 + len);
      for (size_t i = 0; i < times && !unit.empty() && expanded + r.bytes.size() < kMaxExpanded; i++) {
        r.bytes.append(unit.data(), unit.size());
      }
      expanded += r.bytes.size();
      out.push_back(std::move(r));
      continue;
    }
    if (len == 0x7f && in.size() >= 2) {
      len = (static_cast<size_t>(static_cast<uint8_t>(in[0])) << 8) | static_cast<uint8_t>(in[1]);
      in.remove_prefix(2);
    }
    len = std::min(len, in.size());
    r.bytes = std::string(in.substr(0, len));
    in.remove_prefix(len);
    out.push_back(std::move(r));
  }
  return out;
}

void CheckShown(const std::string& s, size_t cap) {
  FUZZ_CHECK(s.size() <= cap);
  for (char c : s) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
  FUZZ_CHECK(awfshim::ScrubTokens(s) == s);
}

void CheckExchange(const HttpExchange& e) {
  CheckShown(e.method, 32);
  CheckShown(e.host, 256);
  CheckShown(e.path, 2048);
  CheckShown(e.content_type, 128);
  CheckShown(e.request_content_type, 128);
  for (char c : e.host) FUZZ_CHECK(c != ' ');
  FUZZ_CHECK(e.status == 0 || (e.status >= 100 && e.status <= 999));
  // Without a problem, the exchange had a final response.
  if (e.problem.empty()) FUZZ_CHECK(e.status >= 200 || e.status == 101);
  if (e.status == 204 || e.status == 304 || (e.method == "HEAD" && e.problem.empty())) {
    FUZZ_CHECK(e.response_body_bytes == 0);
  }
  FUZZ_CHECK(e.request_start_us > 0 && e.end_us >= e.request_start_us);
  FUZZ_CHECK(e.request_end_us == 0 || (e.request_end_us >= e.request_start_us && e.request_end_us <= e.end_us));
  FUZZ_CHECK(e.first_response_byte_us == 0 ||
             (e.first_response_byte_us >= e.request_start_us && e.first_response_byte_us <= e.end_us));
  FUZZ_CHECK((e.status == 0) == (e.first_response_byte_us == 0));
  if (!e.body_summary_json.empty()) {
    FUZZ_CHECK(e.body_summary_json.front() == '{' && e.body_summary_json.back() == '}');
  }
  if (e.usage) {
    const awfshim::SseUsage& u = *e.usage;
    FUZZ_CHECK(u.input_tokens >= -1 && u.output_tokens >= -1 && u.total_tokens >= -1 && u.cached_tokens >= -1 &&
               u.reasoning_tokens >= -1);
    FUZZ_CHECK(u.input_tokens >= 0 || u.output_tokens >= 0 || u.total_tokens >= 0 || u.cached_tokens >= 0 ||
               u.reasoning_tokens >= 0);
    FUZZ_CHECK(e.response_body_bytes > 0);
  }
}

std::string Key(const HttpExchange& e) {
  std::string usage = "-";
  if (e.usage) {
    usage = absl::StrCat(e.usage->input_tokens, ",", e.usage->output_tokens, ",", e.usage->total_tokens, ",",
                         e.usage->cached_tokens, ",", e.usage->reasoning_tokens);
  }
  return absl::StrCat(e.method, "|", e.host, "|", e.path, "|", e.content_type, "|", e.request_content_type, "|",
                      e.status, "|", e.request_body_bytes, "|", e.response_body_bytes, "|", e.request_start_us, "|",
                      e.request_end_us, "|", e.first_response_byte_us, "|", e.end_us, "|", e.sse, "|",
                      e.body_summary_json, "|", usage, "|", e.problem, "\n");
}

struct Outcome {
  std::string exchanges;
  bool http2 = false;
  bool stopped = false;
  std::string problem;
  uint64_t dropped = 0;
};

// `seed` set: each record in pieces; 0: whole.
Outcome Play(const std::vector<Record>& script, uint64_t seed) {
  Http1Stream s;
  Outcome o;
  int http2_reports = 0;
  auto after = [&] {
    FUZZ_CHECK(s.buffered_bytes() <= awfshim::kMaxHttp1Buffered);
    if (s.stopped()) FUZZ_CHECK(s.buffered_bytes() == 0);
    if (s.TakeHttp2Detected()) http2_reports++;
  };
  for (const Record& r : script) {
    if (r.close) {
      s.OnClose(r.t);
      FUZZ_CHECK(s.stopped());
      after();
    } else if (seed == 0) {
      (s.*(r.server ? &Http1Stream::OnServerBytes : &Http1Stream::OnClientBytes))(r.bytes, r.t);
      after();
    } else {
      const size_t max_step = r.bytes.size() > 4096 ? 256 : 8;
      absl::string_view bytes = r.bytes;
      for (size_t i = 0, step; i < bytes.size(); i += step) {
        step = 1 + Xorshift(&seed) % max_step;
        (s.*(r.server ? &Http1Stream::OnServerBytes : &Http1Stream::OnClientBytes))(bytes.substr(i, step), r.t);
        after();
      }
    }
    for (const HttpExchange& e : s.TakeCompleted()) {
      CheckExchange(e);
      o.exchanges += Key(e);
    }
  }
  FUZZ_CHECK(http2_reports == (s.is_http2() ? 1 : 0));
  if (s.is_http2()) FUZZ_CHECK(s.stopped());
  if (!s.problem().empty()) FUZZ_CHECK(s.stopped());
  o.http2 = s.is_http2();
  o.stopped = s.stopped();
  o.problem = s.problem();
  o.dropped = s.dropped();
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<Record> script = ParseScript(absl::string_view(reinterpret_cast<const char*>(data), size));
  uint64_t seed = 0x9e3779b97f4a7c15ULL;
  for (size_t i = 0; i < size; i++) seed = (seed ^ data[i]) * 0x100000001b3ULL;
  Outcome whole = Play(script, 0);
  Outcome pieces = Play(script, seed | 1);
  FUZZ_CHECK(whole.exchanges == pieces.exchanges);
  FUZZ_CHECK(whole.http2 == pieces.http2 && whole.stopped == pieces.stopped && whole.problem == pieces.problem &&
             whole.dropped == pieces.dropped);
  return 0;
}
