// libFuzzer target: awf-shim-trace's reader (Source) and everything it feeds (Summary,
// ErrorsReport, TimelineLine, HarWriter) on arbitrary trace files. The file is a memfd opened
// through /proc/self/fd/N by Source::Open, exactly as the tool opens a path.
//
// The reader runs with small limits (Source::Limits): 4 KiB lines in a buffer that starts at
// 1 KiB and doubles up to its 8 KiB cap, so that the buffer growth, the line limit and the cap are
// within reach of short inputs. The tool runs the same code with 1 MiB, 256 KiB and 2 MiB.
//
// Input: a control byte, then the file. Control bits: 0x1f, the number of pieces (+1) the file is
// appended in when it is read again as a growing (--follow) file; 0x20, also split it at a line
// boundary into two files read through a Merger; 0x40, limits that are not powers of two (3000-byte
// lines, a 700-byte first buffer: its last growth stops short of doubling, at the 6000-byte cap);
// 0x80, expand `\xff R L <L bytes>` in the file to the L bytes repeated (R+1)*32 times (the file
// at most 16 KiB), so that lines past the cap take a few input bytes.
//
// Checked: every non-blank line is counted exactly once as an event, unreadable, of another schema
// or unknown; lines as the file has them; events well formed (known ev, ts that parses and
// round-trips through Iso, line numbers); reports on stderr at most kMaxReports, one line each;
// the same events, counts and reports whether the file is read whole or grows piece by piece
// (for lines within the line limit); the reader's memory bounded by its buffer cap and the
// longest line, never by the file; HAR, summary --json and errors --json output valid JSON whose
// counts agree with the input; human output (timeline, errors, summary, reports) valid UTF-8 with
// no control character but the newline; summary --format markdown the same, with every table row
// as many cells as its header.
#include <sanitizer/allocator_interface.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "simdjson.h"
#include "trace_errors.h"
#include "trace_event.h"
#include "trace_har.h"
#include "trace_merger.h"
#include "trace_reader.h"
#include "trace_summary.h"
#include "trace_timeline.h"
#include "fuzz_support.h"

namespace {

namespace tt = awfshim::tracetool;
namespace dom = simdjson::dom;
using tt::Source;

constexpr Source::Limits kLimits = {4 << 10, 1 << 10};
constexpr Source::Limits kOddLimits = {3000, 700};
constexpr size_t kMaxExpanded = 16 << 10;  // twice the cap: lines past it, and more after
constexpr size_t kRepeat = 32;  // per unit of R in `\xff R L`

// trace_reader.cc's buffer cap.
constexpr size_t MaxCap(Source::Limits limits) { return 2 * limits.max_line; }

// ---- the file ----------------------------------------------------------------------------------

HARNESS std::string Expand(std::string_view in) {
  std::string out;
  while (!in.empty()) {
    size_t ff = in.find('\xff');
    size_t plain = std::min(ff, in.size());
    out.append(in.substr(0, std::min(plain, kMaxExpanded - out.size())));
    in.remove_prefix(plain);
    if (in.size() < 3) {
      in = {};
      break;
    }
    size_t times = (static_cast<size_t>(static_cast<uint8_t>(in[1])) + 1) * kRepeat;
    size_t len = std::min<size_t>(static_cast<uint8_t>(in[2]), in.size() - 3);
    std::string_view unit = in.substr(3, len);
    in.remove_prefix(3 + len);
    // The unit, then what is there so far again, until it is there `times` times (or the file full).
    const size_t start = out.size(), total = std::min(times * unit.size(), kMaxExpanded - start);
    out.append(unit.substr(0, total));
    for (size_t have = out.size() - start; have < total; have = out.size() - start) {
      out.append(out, start, std::min(have, total - have));
    }
  }
  return out;
}

struct Shape {
  uint64_t lines = 0;            // as the reader counts them: each '\n', plus a non-empty tail
  uint64_t nonblank_short = 0;   // not only [ \t\r], at most the line limit
  uint64_t nonblank_long = 0;    // longer: skipped or parsed, depending on how reads fall
  uint64_t blank_long = 0;       // blank and longer: skipped (counted) or parsed (not counted)
  size_t longest = 0;
  bool ends_with_newline = true;
};

HARNESS Shape ShapeOf(std::string_view f, size_t max_line) {
  Shape s;
  s.ends_with_newline = f.empty() || f.back() == '\n';
  while (!f.empty()) {
    size_t nl = f.find('\n');
    std::string_view line = f.substr(0, nl);
    f.remove_prefix(nl == std::string_view::npos ? f.size() : nl + 1);
    s.lines++;
    s.longest = std::max(s.longest, line.size());
    bool blank = line.find_first_not_of(" \t\r") == std::string_view::npos;
    if (line.size() > max_line) {
      (blank ? s.blank_long : s.nonblank_long)++;
    } else if (!blank) {
      s.nonblank_short++;
    }
  }
  return s;
}

// One memfd per file, reused; Source::Open gets /proc/self/fd/N (its own offset).
struct MemFile {
  int fd = -1;
  std::string path;
  explicit MemFile(const char* name) {
    fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) abort();
    path = "/proc/self/fd/" + std::to_string(fd);
  }
  void Reset() {
    if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0) abort();
  }
  HARNESS void Append(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = write(fd, bytes.data(), bytes.size());
      if (n <= 0) abort();
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }
};

// ---- output checks -----------------------------------------------------------------------------

// What a terminal gets: valid UTF-8, no C0 control but '\n', no DEL, no C1 control (U+0080–U+009F).
HARNESS void CheckHuman(std::string_view s) {
  FUZZ_CHECK(simdjson::validate_utf8(s.data(), s.size()));
  for (size_t i = 0; i < s.size(); i++) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    FUZZ_CHECK((c >= 0x20 && c != 0x7f) || c == '\n');
    if (c == 0xc2 && i + 1 < s.size()) FUZZ_CHECK(static_cast<unsigned char>(s[i + 1]) >= 0xa0);
  }
}

// Markdown (for $GITHUB_STEP_SUMMARY): what a terminal gets too, and tables a trace cannot break:
// every row of a table has its header's number of cell separators ('|' not escaped as "\|", the
// way GitHub splits rows, code spans included).
HARNESS void CheckMarkdown(std::string_view s) {
  CheckHuman(s);
  int header_pipes = -1;
  while (!s.empty()) {
    size_t nl = s.find('\n');
    std::string_view line = s.substr(0, nl);
    s.remove_prefix(nl == std::string_view::npos ? s.size() : nl + 1);
    if (line.empty() || line[0] != '|') {
      header_pipes = -1;
      continue;
    }
    int pipes = 0;
    for (size_t i = 0; i < line.size(); i++) pipes += line[i] == '|' && (i == 0 || line[i - 1] != '\\');
    if (header_pipes < 0) header_pipes = pipes;
    FUZZ_CHECK(pipes == header_pipes);
  }
}

HARNESS dom::element ParseJson(dom::parser& parser, std::string_view json) {
  dom::element root;
  FUZZ_CHECK(!parser.parse(json.data(), json.size()).get(root));
  return root;
}

HARNESS int64_t IntAt(dom::element e, std::string_view pointer) {
  int64_t v = -1;
  FUZZ_CHECK(!e.at_pointer(pointer).get(v));
  return v;
}

// Captures what the reader reports on stderr (the sanitizers and libFuzzer write to fd 2 and
// their own FILE*, not through `stderr`).
class StderrCapture {
 public:
  StderrCapture() : saved_(stderr), file_(open_memstream(&buf_, &len_)) {
    if (file_ == nullptr) abort();
    stderr = file_;
  }
  std::string Take() {
    stderr = saved_;
    fclose(file_);
    std::string s(buf_, len_);
    free(buf_);
    return s;
  }

 private:
  FILE* saved_;
  char* buf_ = nullptr;
  size_t len_ = 0;
  FILE* file_;
};

HARNESS void CheckReports(std::string_view reports, const std::string& name) {
  CheckHuman(reports);
  FUZZ_CHECK(reports.empty() || reports.back() == '\n');
  size_t n = 0;
  while (!reports.empty()) {
    std::string_view line = reports.substr(0, reports.find('\n'));
    reports.remove_prefix(line.size() + 1);
    FUZZ_CHECK(line.substr(0, name.size() + 1) == name + ":");
    n++;
  }
  FUZZ_CHECK(n <= static_cast<size_t>(Source::kMaxReports) + 1);  // + ReportTotals' line
}

HARNESS void CheckStats(const tt::InputStats& st, const Shape& shape) {
  FUZZ_CHECK(st.lines == shape.lines);
  const uint64_t counted = st.events + st.unreadable + st.other_schema + st.unknown;
  const uint64_t nonblank = shape.nonblank_short + shape.nonblank_long;
  FUZZ_CHECK(counted >= nonblank && counted <= nonblank + shape.blank_long);
  FUZZ_CHECK(counted <= st.lines);
  uint64_t named = 0;
  for (const auto& [name, n] : st.unknown_names) {
    FUZZ_CHECK(n > 0);
    named += n;
  }
  FUZZ_CHECK(named == st.unknown);
  FUZZ_CHECK(st.unknown_names.size() <= Source::kMaxUnknownNames + 1);
  if (st.truncated_last) FUZZ_CHECK(!shape.ends_with_newline && st.unreadable > 0);
}

int64_t g_ts_limit;  // 10000-01-01T00:00:00Z: Iso writes 5-digit years past it

HARNESS void CheckEvent(const tt::Event& e, const Source& src, uint64_t* last_line) {
  FUZZ_CHECK(!e.ev_name.empty() && e.ev != tt::Ev::kUnknown && tt::EvFromName(e.ev_name) == e.ev);
  FUZZ_CHECK(e.line > *last_line && e.line == src.stats().lines);
  *last_line = e.line;
  int64_t us = 0;
  FUZZ_CHECK(tt::ParseTs(e.ts, &us) && us == e.ts_us);
  if (e.ts_us < g_ts_limit) {
    std::string iso = tt::Iso(e.ts_us, 6);
    FUZZ_CHECK(tt::ParseTs(iso, &us) && us == e.ts_us);
    FUZZ_CHECK(tt::TimeOfDay(e.ts_us) == iso.substr(11, 15));
  }
}

// Key fields, each followed by a space; numbers exact (to_chars), absent ones "-".
HARNESS void Field(std::string* out, std::string_view s) {
  out->append(s);
  out->push_back(' ');
}
template <typename T>
HARNESS void Field(std::string* out, const T& v) {
  char buf[32];
  out->append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
  out->push_back(' ');
}
template <typename T>
HARNESS void Field(std::string* out, const std::optional<T>& v) {
  v ? Field(out, *v) : Field(out, std::string_view("-"));
}

// Appends the event as the reader decoded it (the line number stands for the rest of the line).
HARNESS void AppendKey(std::string* out, const tt::Event& e) {
  const tt::Event::Hot& h = e.hot;
  Field(out, e.line);
  for (std::string_view s : {e.ev_name, e.exe, h.host, h.target, h.result, h.method, h.path}) Field(out, s);
  for (int64_t v : {e.ts_us, e.pid, e.tid}) Field(out, v);
  for (const std::optional<int64_t>& v : {h.fd, h.status, h.bytes_out, h.bytes_in}) Field(out, v);
  Field(out, h.ms);
  Field(out, e.obj.size());
  out->push_back('\n');
}

struct Read {
  std::string keys;
  std::string reports;
  tt::InputStats stats;
};

template <typename Each>
HARNESS std::string Drain(Source& src, Each each) {
  std::string keys;
  tt::Event e;
  uint64_t last_line = 0;
  while (src.Next(&e) == Source::Result::kEvent) {
    CheckEvent(e, src, &last_line);
    AppendKey(&keys, e);
    each(e);
  }
  return keys;
}

// ---- the plays ---------------------------------------------------------------------------------

// The whole file, then final: what `awf-shim-trace COMMAND FILE` does, with every consumer.
HARNESS Read PlayWhole(MemFile& mf, std::string_view file, const Shape& shape, Source::Limits limits) {
  mf.Reset();
  mf.Append(file);
  Read r;
  StderrCapture cap;
  std::string error;
  std::vector<std::unique_ptr<Source>> sources;
  sources.push_back(Source::Open(mf.path, 0, &error, limits));
  FUZZ_CHECK(sources[0] != nullptr);
  Source& src = *sources[0];
  src.set_final();

  tt::Summary summary;
  tt::ErrorsReport errors_human(false, {src.name()}), errors_json(true, {src.name()});
  std::string errors_human_out, errors_json_out, timeline;
  char* har_buf = nullptr;
  size_t har_len = 0;
  FILE* har_file = open_memstream(&har_buf, &har_len);
  FUZZ_CHECK(har_file != nullptr);
  auto har = std::make_unique<tt::HarWriter>(har_file);
  uint64_t events = 0, http = 0;

  r.keys = Drain(src, [&](const tt::Event& e) {
    ++events;
    http += e.ev == tt::Ev::kHttp;
    summary.Add(e);
    har->Add(e);
    errors_human.Add(e, &errors_human_out);
    errors_json.Add(e, &errors_json_out);
    std::string line = tt::TimelineLine(e);
    FUZZ_CHECK(!line.empty() && line.back() == '\n' && line.find('\n') == line.size() - 1);
    timeline += line;
  });
  FUZZ_CHECK(src.done());
  r.stats = src.stats();
  FUZZ_CHECK(r.stats.events == events);
  CheckStats(r.stats, shape);

  // Outputs, rendered as the tool does at the end.
  har->Finish();
  fclose(har_file);
  std::string har_json(har_buf, har_len);
  free(har_buf);
  std::string human = summary.Human(sources);
  std::string json = summary.Json(sources);
  std::string markdown = summary.Markdown(sources);
  errors_human_out += errors_human.Footer();
  src.ReportTotals();
  r.reports = cap.Take();

  // Human output: what reaches a terminal.
  CheckHuman(timeline);
  CheckHuman(errors_human_out);
  CheckHuman(human);
  CheckMarkdown(markdown);
  FUZZ_CHECK(summary.empty() == (events == 0));
  FUZZ_CHECK(!summary.Verdict().empty());

  dom::parser parser;
  // HAR: one entry per parsed http event.
  dom::element har_root = ParseJson(parser, har_json);
  dom::array entries;
  FUZZ_CHECK(!har_root.at_pointer("/log/entries").get(entries));
  FUZZ_CHECK(entries.size() == har->entries() && har->entries() + har->skipped() == http);
  for (dom::element entry : entries) {
    double t = -1;
    FUZZ_CHECK(!entry["time"].get(t) && t >= 0);
    for (const char* k : {"/timings/wait", "/timings/receive"}) {
      FUZZ_CHECK(!entry.at_pointer(k).get(t) && t >= 0);
    }
    std::string_view s;
    FUZZ_CHECK(!entry.at_pointer("/request/method").get(s) && !s.empty());
    FUZZ_CHECK(!entry.at_pointer("/request/url").get(s));
  }

  // summary --json: the input counts as read, every event in some process.
  dom::element sj = ParseJson(parser, json);
  FUZZ_CHECK(IntAt(sj, "/input/0/lines") == static_cast<int64_t>(r.stats.lines));
  FUZZ_CHECK(IntAt(sj, "/input/0/events") == static_cast<int64_t>(r.stats.events));
  FUZZ_CHECK(IntAt(sj, "/input/0/unreadable") == static_cast<int64_t>(r.stats.unreadable));
  FUZZ_CHECK(IntAt(sj, "/input/0/other_schema") == static_cast<int64_t>(r.stats.other_schema));
  dom::array procs;
  FUZZ_CHECK(!sj["processes"].get(procs));
  int64_t proc_events = 0;
  for (dom::element p : procs) proc_events += IntAt(p, "/events");
  FUZZ_CHECK(proc_events == static_cast<int64_t>(events));

  // errors --json: one object per line, as many as the human report counts.
  FUZZ_CHECK(errors_json.count() == errors_human.count());
  std::string_view lines = errors_json_out;
  uint64_t n = 0;
  while (!lines.empty()) {
    size_t nl = lines.find('\n');
    FUZZ_CHECK(nl != std::string_view::npos);
    dom::element obj = ParseJson(parser, lines.substr(0, nl));
    std::string_view kind;
    FUZZ_CHECK(!obj["kind"].get(kind) && !kind.empty());
    lines.remove_prefix(nl + 1);
    n++;
  }
  FUZZ_CHECK(n == errors_json.count());
  return r;
}

// The file growing under the reader (--follow): appended in pieces, each drained to kAgain, then
// final. The reader alone runs here, so its memory can be measured.
HARNESS Read PlayGrowing(MemFile& mf, std::string_view file, const Shape& shape, uint8_t control,
                         Source::Limits limits) {
  mf.Reset();
  Read r;
  const size_t pieces = 1 + (control & 0x1f);
  std::vector<size_t> cuts = {0, file.size()};
  uint64_t rng = 0x9e3779b97f4a7c15ULL ^ (file.size() << 8) ^ control;
  for (size_t i = 1; i < pieces && !file.empty(); i++) cuts.push_back(Xorshift(&rng) % (file.size() + 1));
  std::sort(cuts.begin(), cuts.end());

  // The reader may hold its buffer (at most the cap; twice while it grows) and a parser sized for
  // the longest line it parses (at most the cap); what it keeps besides is bounded by constants.
  const size_t max_cap = MaxCap(limits);
  const size_t longest = std::min(shape.longest, max_cap);
  const size_t bound = (64 << 10) + 2 * max_cap + 16 * longest;
  const size_t base = __sanitizer_get_current_allocated_bytes();
  auto check_memory = [&] {
    size_t now = __sanitizer_get_current_allocated_bytes();
    FUZZ_CHECK(now < base || now - base <= bound + r.keys.capacity());
  };

  StderrCapture cap;
  std::string error;
  std::unique_ptr<Source> src = Source::Open(mf.path, 0, &error, limits);
  FUZZ_CHECK(src != nullptr);
  tt::Event e;
  uint64_t last_line = 0;
  auto drain = [&] {
    while (src->Next(&e) == Source::Result::kEvent) {
      CheckEvent(e, *src, &last_line);
      AppendKey(&r.keys, e);
      check_memory();
    }
    check_memory();
  };
  for (size_t i = 0; i + 1 < cuts.size(); i++) {
    mf.Append(file.substr(cuts[i], cuts[i + 1] - cuts[i]));
    drain();
    FUZZ_CHECK(!src->done());
  }
  src->set_final();
  drain();
  FUZZ_CHECK(src->done());
  r.stats = src->stats();
  CheckStats(r.stats, shape);
  src->ReportTotals();
  r.reports = cap.Take();
  return r;
}

// Two files through a Merger: every event of both comes out once, each file's in its order, and
// the smallest timestamp available first.
HARNESS void PlayMerged(MemFile& a, MemFile& b, std::string_view file, Source::Limits limits) {
  size_t split = file.find('\n', file.size() / 2);
  split = split == std::string_view::npos ? file.size() : split + 1;
  a.Reset();
  a.Append(file.substr(0, split));
  b.Reset();
  b.Append(file.substr(split));
  StderrCapture cap;
  std::vector<std::unique_ptr<Source>> sources;
  std::string error;
  sources.push_back(Source::Open(a.path, 0, &error, limits));
  sources.push_back(Source::Open(b.path, 1, &error, limits));
  FUZZ_CHECK(sources[0] && sources[1]);
  tt::Merger merger(std::move(sources));
  merger.set_final();
  merger.NewRound();
  uint64_t last_line[2] = {0, 0};
  uint64_t n = 0;
  while (const tt::Event* e = merger.Next()) {
    FUZZ_CHECK(e->source == 0 || e->source == 1);
    FUZZ_CHECK(e->line > last_line[e->source]);
    last_line[e->source] = e->line;
    n++;
  }
  FUZZ_CHECK(merger.all_done());
  FUZZ_CHECK(n == merger.sources()[0]->stats().events + merger.sources()[1]->stats().events);
  cap.Take();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  FUZZ_CHECK(tt::ParseTs("9999-12-31T23:59:59.999999Z", &g_ts_limit));
  g_ts_limit++;
  return 0;
}

extern "C" HARNESS int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static MemFile* files[2] = {new MemFile("fuzz-trace-a"), new MemFile("fuzz-trace-b")};
  if (size == 0) return 0;
  const uint8_t control = data[0];
  std::string_view raw(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string expanded;
  if (control & 0x80) expanded = Expand(raw);
  std::string_view file = control & 0x80 ? std::string_view(expanded) : raw;
  const Source::Limits limits = control & 0x40 ? kOddLimits : kLimits;
  const Shape shape = ShapeOf(file, limits.max_line);

  Read whole = PlayWhole(*files[0], file, shape, limits);
  CheckReports(whole.reports, files[0]->path);
  Read growing = PlayGrowing(*files[0], file, shape, control, limits);
  CheckReports(growing.reports, files[0]->path);
  // Within the line limit, how the reads fall must not matter.
  if (shape.longest <= limits.max_line) {
    FUZZ_CHECK(whole.keys == growing.keys);
    FUZZ_CHECK(whole.reports == growing.reports);
    const tt::InputStats &a = whole.stats, &b = growing.stats;
    FUZZ_CHECK(a.lines == b.lines && a.events == b.events && a.unreadable == b.unreadable &&
               a.other_schema == b.other_schema && a.unknown == b.unknown &&
               a.truncated_last == b.truncated_last && a.unknown_names == b.unknown_names);
  }
  if (control & 0x20) PlayMerged(*files[0], *files[1], file, limits);
  return 0;
}
