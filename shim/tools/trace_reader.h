// Streaming trace input: each Source reads one file (or stdin) in fixed-size blocks, splits it
// into lines and parses each with simdjson's DOM parser in place (no copy); memory is the block
// buffer plus the parser, whatever the file size. Bad lines are reported on stderr as
// `FILE:LINE: reason` and skipped (trace_merger.h interleaves several by timestamp).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "simdjson.h"
#include "trace_event.h"

namespace awfshim::tracetool {

struct InputStats {
  uint64_t lines = 0;          // complete lines read (plus a final line without newline)
  uint64_t events = 0;         // lines handed on as events
  uint64_t unreadable = 0;     // not JSON, not an object, no ev/ts, too long, truncated
  uint64_t other_schema = 0;   // "schema" other than kSchema
  uint64_t unknown = 0;        // an "ev" this tool does not know
  bool truncated_last = false;
  std::map<std::string, uint64_t> unknown_names;  // at most kMaxUnknownNames names
};

class Source {
 public:
  static constexpr size_t kMaxLine = 1 << 20;   // the tool's Limits
  static constexpr size_t kFirstCap = 256 << 10;
  static constexpr size_t kBlock = 4 << 20;
  static constexpr int kMaxReports = 20;        // per source; the rest are only counted
  static constexpr size_t kMaxUnknownNames = 32;
  static constexpr size_t kTail = 1024;  // last bytes read, kept to notice a rewritten file

  // The buffer: it starts at first_cap bytes and doubles up to 2 * max_line (a whole line of
  // max_line fits wherever it starts); a longer line is skipped, never buffered whole. The fuzz
  // target sets small limits to reach every boundary with short inputs.
  struct Limits {
    size_t max_line;   // at least 1
    size_t first_cap;  // 1 … 2 * max_line
  };

  // Opens path ("-" = stdin). On failure returns null and sets *error.
  static std::unique_ptr<Source> Open(const std::string& path, int index, std::string* error,
                                      Limits limits = {kMaxLine, kFirstCap});
  ~Source();

  enum class Result { kEvent, kAgain };
  // The next event, or kAgain when no complete line is available now. With final set (no more
  // data will come: not following, or the follow ended), a last line without a newline is
  // taken as it is; it is reported as truncated when it does not parse.
  Result Next(Event* e);
  void set_final() { final_ = true; }
  // Followed past its end (not final), a regular file is checked before it is read on: one that is
  // shorter than what was read, or holds other bytes where the last ones read were, was truncated
  // (and maybe written again): it is read again from the start. One whose path now names another
  // file was rotated: it is read to its end, then the file at the path from its start. Both are
  // said on stderr; a line cut short at the end of a rotated file is reported as truncated.
  // Everything read and handed on, and no more will come (a pipe at its end, or final).
  bool done() const { return final_ && eof_seen_ && begin_ == end_; }

  const std::string& name() const { return name_; }
  const InputStats& stats() const { return stats_; }
  bool read_failed() const { return read_failed_; }
  // A one-line account on stderr when lines were skipped or reports were suppressed.
  void ReportTotals() const;

 private:
  Source(std::string name, std::string path, int fd, int index, Limits limits);
  bool Fill();  // reads more; false when nothing came
  bool Rewritten() const;
  void StartOver();
  bool Replaced() const;  // the path names another file now
  bool Reopen();
  bool ParseLine(const char* p, size_t n, Event* e);
  void Report(uint64_t line, const std::string& reason);

  std::string name_;
  std::string path_;  // "" for stdin
  int fd_;
  int index_;
  bool final_ = false;
  bool at_eof_ = false;       // parsing the last line, which has no newline
  bool eof_seen_ = false;
  bool regular_ = false;      // a regular file: followed past its end; a pipe ends at EOF
  bool discarding_ = false;  // inside an over-long line
  bool read_failed_ = false;
  bool rotated_ = false;     // the path names another file: finish this one, then open that
  size_t max_line_;
  size_t max_cap_;
  size_t cap_;
  std::unique_ptr<char[]> buf_;  // cap_ + SIMDJSON_PADDING bytes
  size_t begin_ = 0, end_ = 0;
  int64_t offset_ = 0;       // bytes read from the file
  std::string tail_;         // its last kTail bytes (fewer at first), up to offset_
  uint64_t line_no_ = 0;
  int reports_ = 0;
  uint64_t suppressed_ = 0;
  InputStats stats_;
  simdjson::dom::parser parser_;
};

}  // namespace awfshim::tracetool
