// awf-shim-trace: reads awf-shim traces (JSON lines, see README.md "Trace") and says what
// happened: summary, errors, timeline, or a HAR file of the HTTP exchanges.
//
// Input is streamed (memory is bounded by distinct processes, hosts and request groups, not by
// lines); several files are merged by timestamp. Bad lines are reported on stderr as
// FILE:LINE: reason and skipped. Exit: 0 all input readable, 1 some of it was not (the output is
// still produced), 2 usage error or a file that cannot be opened.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "trace_errors.h"
#include "trace_event.h"
#include "trace_har.h"
#include "trace_merger.h"
#include "trace_reader.h"
#include "trace_summary.h"
#include "trace_timeline.h"

namespace awfshim::tracetool {
namespace {

constexpr char kUsage[] =
    "usage: awf-shim-trace COMMAND [OPTIONS] [FILE...]\n"
    "\n"
    "Reads awf-shim traces (JSON lines; FILE '-' or none: stdin); several files are merged by time.\n"
    "\n"
    "commands:\n"
    "  summary  [--format F] [--follow]   verdict, then per process, per host (tunnels by outcome,\n"
    "                                     bytes), HTTP requests (count, latency p50/p90/p99), errors\n"
    "  errors   [--format F] [--follow]   only what went wrong, each with the context that explains it\n"
    "  timeline [--follow]                one line per event, in time order\n"
    "  har      -o OUT.har                HAR 1.2 of the http events ('-o -': stdout)\n"
    "\n"
    "options:\n"
    "  --pid N     only events of process N\n"
    "  --host H    only events about host H, whatever the port (host, tunnel target or address)\n"
    "  --format F  pretty: for people (the default); json: summary one object, errors one object\n"
    "              per line; markdown (summary only, not with --follow): GitHub-flavoured, e.g.\n"
    "              awf-shim-trace summary --format markdown \"$AWF_SHIM_TRACE\" >> \"$GITHUB_STEP_SUMMARY\"\n"
    "  --json      the same as --format json\n"
    "  --follow    keep reading files as they grow (every 200 ms) until SIGINT; a truncated file\n"
    "              is read again from the start, a rotated one to its end, then the new one\n"
    "  -o, --output FILE   where har writes\n"
    "\n"
    "exit status: 0 all input readable; 1 some lines unreadable (reported on stderr as FILE:LINE,\n"
    "output still produced); 2 usage error or a file that cannot be opened\n";

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

enum class Command { kSummary, kErrors, kTimeline, kHar };
enum class Format { kPretty, kJson, kMarkdown };

struct Options {
  Command command = Command::kSummary;
  std::string command_name;
  Format format = Format::kPretty;
  std::string format_from;  // the option that chose it ("--json", "--format json"), if any
  bool follow = false;
  std::optional<int64_t> pid;
  std::string host;
  std::string output;
  bool has_output = false;
  std::vector<std::string> files;
};

[[noreturn]] void UsageError(const std::string& command, const std::string& msg) {
  fprintf(stderr, "awf-shim-trace%s%s: %s\n(awf-shim-trace --help for usage)\n", command.empty() ? "" : " ",
          command.c_str(), msg.c_str());
  exit(2);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  if (argc < 2) UsageError("", "missing command: summary, errors, timeline or har");
  std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    fputs(kUsage, stdout);
    exit(0);
  }
  if (cmd == "--version") {
    printf("awf-shim-trace %s\n", AWFSHIM_VERSION);
    exit(0);
  }
  if (cmd == "summary") {
    o.command = Command::kSummary;
  } else if (cmd == "errors") {
    o.command = Command::kErrors;
  } else if (cmd == "timeline") {
    o.command = Command::kTimeline;
  } else if (cmd == "har") {
    o.command = Command::kHar;
  } else {
    UsageError("", Cat("unknown command '", cmd, "'; expected summary, errors, timeline or har"));
  }
  o.command_name = cmd;
  bool options_done = false;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (options_done || arg == "-" || arg.empty() || arg[0] != '-') {
      o.files.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    std::string name = arg, value;
    bool has_value = false;
    if (size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    auto take_value = [&]() {
      if (has_value) return;
      if (i + 1 >= argc) UsageError(cmd, Cat(name, " needs a value"));
      value = argv[++i];
    };
    auto only_for = [&](std::initializer_list<Command> commands, const char* which) {
      for (Command c : commands) {
        if (c == o.command) return;
      }
      UsageError(cmd, Cat(name, " is not an option of ", cmd, " (only of ", which, ")"));
    };
    if (name == "--help" || name == "-h") {
      fputs(kUsage, stdout);
      exit(0);
    } else if (name == "--json" || name == "--format") {
      only_for({Command::kSummary, Command::kErrors}, "summary and errors");
      const bool summary = o.command == Command::kSummary;
      Format f = Format::kJson;
      std::string from = name;
      if (name == "--format") {
        take_value();
        from = Cat(name, " ", value);
        if (value == "pretty") {
          f = Format::kPretty;
        } else if (value == "markdown" && summary) {
          f = Format::kMarkdown;
        } else if (value == "markdown") {
          UsageError(cmd, Cat("--format markdown is for summary only (", cmd, ": pretty or json)"));
        } else if (value != "json") {
          UsageError(cmd, Cat("--format wants ", summary ? "pretty, markdown or json" : "pretty or json", ", not '",
                              value, "'"));
        }
      }
      if (!o.format_from.empty() && f != o.format) UsageError(cmd, Cat(from, " contradicts ", o.format_from));
      o.format = f;
      o.format_from = from;
    } else if (name == "--follow" || name == "-f") {
      only_for({Command::kSummary, Command::kErrors, Command::kTimeline}, "summary, errors and timeline");
      o.follow = true;
    } else if (name == "--pid") {
      take_value();
      int64_t pid;
      if (!absl::SimpleAtoi(value, &pid) || pid < 0) UsageError(cmd, Cat("--pid wants a process id, not '", value, "'"));
      o.pid = pid;
    } else if (name == "--host") {
      take_value();
      const HostPort hp = SplitHostPort(value);
      if (hp.host.empty()) UsageError(cmd, "--host wants a host name");
      // Hosts are keyed by name alone (EventHost): a port would select nothing.
      if (hp.port != 0) {
        UsageError(cmd, Cat("--host takes a host without a port, not '", value,
                            "' (the summary lists the ports of each host)"));
      }
      o.host = absl::AsciiStrToLower(A(hp.host));
    } else if (name == "-o" || name == "--output") {
      only_for({Command::kHar}, "har");
      take_value();
      if (value.empty()) UsageError(cmd, Cat(name, " wants a file name"));
      o.output = value;
      o.has_output = true;
    } else if (name.size() > 2 && name.rfind("-o", 0) == 0 && name[1] == 'o') {
      only_for({Command::kHar}, "har");
      o.output = name.substr(2);
      o.has_output = true;
    } else {
      UsageError(cmd, Cat("unknown option '", arg, "'"));
    }
  }
  if (o.command == Command::kHar && !o.has_output) UsageError(cmd, "missing -o FILE (where to write the HAR)");
  // Markdown is a report for the end of a run ($GITHUB_STEP_SUMMARY), not for a screen redrawn.
  if (o.follow && o.format == Format::kMarkdown) {
    UsageError(cmd, "--format markdown does not go with --follow (it writes one summary, at the end)");
  }
  if (o.files.empty()) o.files.push_back("-");
  int stdin_count = 0;
  for (const std::string& f : o.files) stdin_count += f == "-";
  if (stdin_count > 1) UsageError(cmd, "stdin ('-') given more than once");
  return o;
}

bool Matches(const Options& o, const Event& e) {
  if (o.pid && e.pid != *o.pid) return false;
  return o.host.empty() || absl::EqualsIgnoreCase(A(EventHost(e).host), o.host);
}

void Write(const std::string& s) {
  if (!s.empty()) fwrite(s.data(), 1, s.size(), stdout);
}

int Main(int argc, char** argv) {
  Options o = ParseArgs(argc, argv);
  std::vector<std::unique_ptr<Source>> sources;
  std::vector<std::string> names;
  for (const std::string& f : o.files) {
    std::string error;
    std::unique_ptr<Source> s = Source::Open(f, static_cast<int>(sources.size()), &error);
    if (!s) UsageError(o.command_name, Cat("cannot read ", error));
    names.push_back(s->name());
    sources.push_back(std::move(s));
  }
  FILE* har_out = nullptr;
  if (o.command == Command::kHar) {
    har_out = o.output == "-" ? stdout : fopen(o.output.c_str(), "w");
    if (har_out == nullptr) UsageError(o.command_name, Cat("cannot write ", o.output, ": ", strerror(errno)));
  }
  static char out_buf[1 << 16];
  setvbuf(stdout, out_buf, _IOFBF, sizeof out_buf);
  if (o.follow) {
    struct sigaction sa = {};
    sa.sa_handler = OnSignal;  // no SA_RESTART: a blocking read returns EINTR
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
  }

  Merger merger(std::move(sources));
  Summary summary;
  const bool json = o.format == Format::kJson;
  ErrorsReport errors(json, names);
  std::unique_ptr<HarWriter> har;
  if (har_out) har = std::make_unique<HarWriter>(har_out);
  const bool tty = isatty(1);
  std::string out;
  bool final = !o.follow;
  if (final) merger.set_final();
  uint64_t unprinted = 0;  // summary: events since it was last printed
  bool printed = false;
  auto print_summary = [&]() {
    if (printed && !json) Write(tty ? "\x1b[H\x1b[2J" : "\n--- updated ---\n");
    switch (o.format) {
      case Format::kPretty: Write(summary.Human(merger.sources())); break;
      case Format::kJson: Write(summary.Json(merger.sources())); break;
      case Format::kMarkdown: Write(summary.Markdown(merger.sources())); break;
    }
    unprinted = 0;
    printed = true;
  };
  for (;;) {
    merger.NewRound();
    while (const Event* e = merger.Next()) {
      if (!Matches(o, *e)) continue;
      switch (o.command) {
        case Command::kSummary: summary.Add(*e); ++unprinted; break;
        case Command::kErrors: errors.Add(*e, &out); break;
        case Command::kTimeline: out += TimelineLine(*e); break;
        case Command::kHar: har->Add(*e); break;
      }
      if (out.size() >= (1 << 16)) {
        Write(out);
        out.clear();
      }
    }
    Write(out);
    out.clear();
    if (final) break;
    if (g_stop || merger.all_done()) {
      merger.set_final();
      final = true;
      continue;  // one more round: a last line without a newline is taken now
    }
    if (o.command == Command::kSummary && (unprinted > 0 || !printed)) print_summary();
    fflush(stdout);
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
  if (o.command == Command::kSummary && (unprinted > 0 || !printed)) print_summary();
  if (o.command == Command::kErrors && !json) Write(errors.Footer());
  if (har) {
    har->Finish();
    if (har_out != stdout && fclose(har_out) != 0) {
      fprintf(stderr, "awf-shim-trace har: writing %s: %s\n", o.output.c_str(), strerror(errno));
      return 2;
    }
    if (har->skipped() > 0) {
      fprintf(stderr, "awf-shim-trace har: %llu http %s without a parsed request (e.g. HTTP/2) left out\n",
              static_cast<unsigned long long>(har->skipped()), har->skipped() == 1 ? "event" : "events");
    }
    if (har->entries() == 0) {
      fprintf(stderr, "awf-shim-trace har: no http events in the input: the HAR has no entries "
                      "(the shim writes http events only when its TLS tap sees the requests)\n");
    }
  }
  if (fflush(stdout) != 0) return 2;
  for (const auto& s : merger.sources()) s->ReportTotals();
  return merger.any_unreadable() ? 1 : 0;
}

}  // namespace
}  // namespace awfshim::tracetool

int main(int argc, char** argv) { return awfshim::tracetool::Main(argc, argv); }
