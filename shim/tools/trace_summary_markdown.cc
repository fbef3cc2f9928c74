// Summary output as GitHub-flavoured markdown, for $GITHUB_STEP_SUMMARY (`summary --format
// markdown`): a heading, the verdict, then the tables of the human output with the same facts.
//
// The trace is untrusted bytes. Every value taken from it (host names, paths, methods,
// executables, proxy answers, error texts, file names) is shown as a code span, where markdown
// and HTML are inert and GitHub makes no autolink, @mention, #reference, emoji or math either:
// control characters first become \xNN (Clean: no newline can end a table row), the span's fence
// is one backtick longer than the longest run of backticks in the value, and in a table every
// '|' is written '\|' (GFM splits a row into cells before it parses code spans; the span shows
// '|'). The rest is the tool's own words and numbers.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_join.h"
#include "trace_summary.h"

namespace awfshim::tracetool {
namespace {

std::string Code(std::string_view raw, bool in_table) {
  const std::string s = Clean(raw);
  if (s.empty()) return "";
  size_t run = 0, longest = 0;
  for (char c : s) {
    run = c == '`' ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  const std::string fence(longest + 1, '`');
  // A backtick at either end would join the fence; a space at both ends would lose one each.
  const bool pad = s.front() == '`' || s.back() == '`' ||
                   (s.front() == ' ' && s.back() == ' ' && s.find_first_not_of(' ') != std::string::npos);
  std::string out = fence;
  if (pad) out += ' ';
  for (char c : s) {
    if (c == '|' && in_table) out += '\\';
    out += c;
  }
  if (pad) out += ' ';
  return out + fence;
}

std::string CodeInText(std::string_view s) { return Code(s, false); }
std::string CodeInTable(std::string_view s) { return Code(s, true); }

// A GFM table; align: one letter per column, 'l' or 'r'. Cells are markdown already.
class MdTable {
 public:
  MdTable(std::vector<std::string> header, std::string_view align) : header_(std::move(header)) {
    for (char a : align) delimiter_.push_back(a == 'r' ? "---:" : "---");
  }
  void Row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  std::string Render() const {
    std::string out = Line(header_) + Line(delimiter_);
    for (const auto& r : rows_) out += Line(r);
    return out;
  }

 private:
  static std::string Line(const std::vector<std::string>& cells) { return "| " + absl::StrJoin(cells, " | ") + " |\n"; }
  std::vector<std::string> header_, delimiter_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace

std::string Summary::Markdown(const std::vector<std::unique_ptr<Source>>& sources) const {
  std::string out = "### awf-shim\n\n**Verdict:** " + Verdict(&CodeInText) + "\n";
  auto section = [&out](std::string_view title, const MdTable& t, size_t total) {
    Append(&out, "\n#### ", title, "\n\n", t.Render());
    if (total > kMaxRows) Append(&out, "\n… ", total - kMaxRows, " more (see `--format json`)\n");
  };
  if (!procs_.empty()) {
    MdTable t({"pid", "exe", "started", "connects", "tunnel", "direct", "bypass", "refused", "failed", "errors"},
              "rllrrrrrrr");
    for (size_t i = 0; i < procs_.size() && i < kMaxRows; ++i) {
      const Proc& p = procs_[i];
      t.Row({p.pid < 0 ? std::string("…") : Cat(p.pid), CodeInTable(p.exe), TimeOfDay(p.first_us), Cat(p.connects),
             Cat(p.tunnel), Cat(p.direct), Cat(p.bypass), Cat(p.refuse), Cat(p.failed), Cat(p.errors)});
    }
    section("Processes", t, procs_.size());
  }
  std::vector<const Host*> hosts = SortedHosts();
  if (!hosts.empty()) {
    MdTable t({"host", "ports", "connects", "open", "failed", "bytes out", "bytes in", "tunnels by outcome"},
              "llrrrrrl");
    for (size_t i = 0; i < hosts.size() && i < kMaxRows; ++i) {
      const Host& h = *hosts[i];
      std::string outcomes;
      for (const Outcome* o : SortedOutcomes(h)) {
        Append(&outcomes, outcomes.empty() ? "" : ", ", CodeInTable(o->Label()), " ×", o->count);
      }
      std::string ports = absl::StrJoin(h.ports, ", ");
      if (h.more_ports) ports += ", …";
      t.Row({CodeInTable(h.name), ports.empty() ? "-" : ports, Cat(h.connects), Cat(h.open), Cat(h.failed),
             Cat(h.bytes_out), Cat(h.bytes_in), outcomes});
    }
    section("Hosts", t, hosts.size());
  }
  if (events_ != 0) {
    std::vector<const HttpGroup*> groups = SortedHttp();
    if (groups.empty()) {
      out += "\n#### HTTP requests\n\nnone (no http events in the trace)\n";
    } else {
      MdTable t({"host", "method", "path", "status", "count", "p50 ms", "p90 ms", "p99 ms"}, "lllrrrrr");
      auto pct = [](const HttpGroup& g, double p) {
        return g.ms.empty() ? std::string("-") : FormatMs(g.Percentile(p));
      };
      for (size_t i = 0; i < groups.size() && i < kMaxRows; ++i) {
        const HttpGroup& g = *groups[i];
        t.Row({CodeInTable(g.host), CodeInTable(g.method), CodeInTable(g.path),
               g.status > 0 ? Cat(g.status) : std::string("-"), Cat(g.count), pct(g, 50), pct(g, 90), pct(g, 99)});
      }
      section("HTTP requests", t, groups.size());
    }
    if (error_groups_.empty()) {
      out += "\n#### Errors\n\nnone\n";
    } else {
      MdTable t({"count", "exe", "what"}, "rll");
      for (size_t i = 0; i < error_groups_.size() && i < kMaxRows; ++i) {
        const ErrorGroup& g = error_groups_[i];
        t.Row({Cat(g.count), CodeInTable(g.exe), CodeInTable(g.what)});
      }
      section("Errors", t, error_groups_.size());
      if (errors_dropped_) {
        Append(&out, "\n… and ", errors_dropped_, " more of further kinds (only the first ", kMaxErrorGroups,
               " kinds are kept)\n");
      }
    }
  }
  MdTable t({"file", "lines", "events", "unreadable", "of another schema", "unknown events"}, "lrrrrr");
  for (const auto& src : sources) {
    const InputStats& s = src->stats();
    t.Row({CodeInTable(src->name()), Cat(s.lines), Cat(s.events),
           Cat(s.unreadable, s.truncated_last ? " (truncated last line)" : ""), Cat(s.other_schema), Cat(s.unknown)});
  }
  section("Input", t, 0);
  return out;
}

}  // namespace awfshim::tracetool
