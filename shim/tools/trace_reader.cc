#include "trace_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace awfshim::tracetool {
namespace {

// "1 MiB", "4 KiB", "100 bytes": a size as it was set, never rounded.
std::string SizeText(size_t n) {
  if (n % (1 << 20) == 0) return Cat(n >> 20, " MiB");
  if (n % (1 << 10) == 0) return Cat(n >> 10, " KiB");
  return Cat(n, n == 1 ? " byte" : " bytes");
}

const char* TypeName(simdjson::dom::element_type t) {
  switch (t) {
    case simdjson::dom::element_type::ARRAY: return "an array";
    case simdjson::dom::element_type::STRING: return "a string";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE: return "a number";
    case simdjson::dom::element_type::BOOL: return "a boolean";
    case simdjson::dom::element_type::NULL_VALUE: return "null";
    default: return "not an object";
  }
}

using simdjson::dom::element;

void Get(element v, std::string_view* out) {
  if (v.get(*out) != simdjson::SUCCESS) *out = {};
}
void Get(element v, int64_t* out) {
  if (v.get(*out) != simdjson::SUCCESS) *out = 0;
}
void Get(element v, std::optional<int64_t>* out) {
  int64_t i;
  if (v.get(i) == simdjson::SUCCESS) *out = i;
}
void Get(element v, std::optional<double>* out) {
  double d;
  if (v.get(d) == simdjson::SUCCESS) *out = d;
}
void Get(element v, bool* out) {
  bool b;
  *out = v.get(b) == simdjson::SUCCESS && b;
}

// Stores a common field or one of Event::Hot; false for any other key. One pass over the object
// this way is much cheaper than a lookup per field (each scans the object).
bool TakeField(std::string_view k, element v, Event* e) {
  Event::Hot& h = e->hot;
  switch (k.size()) {
    case 2:
      if (k == "ev") return Get(v, &e->ev_name), true;
      if (k == "ts") return Get(v, &e->ts), true;
      if (k == "fd") return Get(v, &h.fd), true;
      if (k == "ms") return Get(v, &h.ms), true;
      if (k == "by") return Get(v, &h.by), true;
      return false;
    case 3:
      if (k == "pid") return Get(v, &e->pid), true;
      if (k == "tid") return Get(v, &e->tid), true;
      if (k == "exe") return Get(v, &e->exe), true;
      return false;
    case 4:
      if (k == "host") return Get(v, &h.host), true;
      if (k == "addr") return Get(v, &h.addr), true;
      if (k == "path") return Get(v, &h.path), true;
      if (k == "port") return Get(v, &h.port), true;
      return false;
    case 5:
      if (k == "errno") return Get(v, &h.err), true;
      if (k == "error") return h.has_error = true;
      return false;
    case 6:
      if (k == "target") return Get(v, &h.target), true;
      if (k == "result") return Get(v, &h.result), true;
      if (k == "status") return Get(v, &h.status), true;
      if (k == "method") return Get(v, &h.method), true;
      return false;
    case 8:
      if (k == "decision") return Get(v, &h.decision), true;
      if (k == "bytes_in") return Get(v, &h.bytes_in), true;
      return false;
    case 9:
      if (k == "bytes_out") return Get(v, &h.bytes_out), true;
      return false;
    case 11:
      if (k == "squid_error") return Get(v, &h.squid_error), true;
      return false;
    case 12:
      if (k == "open_at_exit") return Get(v, &h.open_at_exit), true;
      return false;
    default:
      return false;
  }
}

}  // namespace

std::unique_ptr<Source> Source::Open(const std::string& path, int index, std::string* error, Limits limits) {
  if (path == "-") return std::unique_ptr<Source>(new Source("<stdin>", "", 0, index, limits));
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = Cat(path, ": ", strerror(errno));
    return nullptr;
  }
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    *error = Cat(path, ": is a directory");
    close(fd);
    return nullptr;
  }
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return std::unique_ptr<Source>(new Source(path, path, fd, index, limits));
}

Source::Source(std::string name, std::string path, int fd, int index, Limits limits)
    : name_(std::move(name)), path_(std::move(path)), fd_(fd), index_(index),
      max_line_(std::max<size_t>(limits.max_line, 1)), max_cap_(2 * max_line_),
      cap_(std::clamp<size_t>(limits.first_cap, 1, max_cap_)), buf_(new char[cap_ + simdjson::SIMDJSON_PADDING]()) {
  struct stat st;
  regular_ = fstat(fd_, &st) == 0 && S_ISREG(st.st_mode);
}

Source::~Source() {
  if (fd_ > 0) close(fd_);
}

void Source::Report(uint64_t line, const std::string& reason) {
  if (reports_ < kMaxReports) {
    ++reports_;
    fprintf(stderr, "%s:%llu: %s\n", name_.c_str(), static_cast<unsigned long long>(line), reason.c_str());
  } else {
    ++suppressed_;
  }
}

void Source::ReportTotals() const {
  const InputStats& s = stats_;
  uint64_t skipped = s.unreadable + s.other_schema + s.unknown;
  if (skipped == 0 && suppressed_ == 0) return;
  std::string msg = Cat(name_, ": ", skipped, " of ", s.lines, " lines skipped:");
  const char* sep = " ";
  if (s.unreadable) {
    Append(&msg, sep, s.unreadable, " unreadable");
    sep = ", ";
  }
  if (s.other_schema) {
    Append(&msg, sep, s.other_schema, " of another schema version");
    sep = ", ";
  }
  if (s.unknown) {
    Append(&msg, sep, s.unknown, s.unknown == 1 ? " unknown event (" : " unknown events (");
    const char* sep2 = "";
    for (const auto& [ev, n] : s.unknown_names) {
      Append(&msg, sep2, Clean(ev), " ×", n);
      sep2 = ", ";
    }
    msg += ")";
  }
  if (suppressed_) Append(&msg, "; ", suppressed_, " more not listed above");
  fprintf(stderr, "%s\n", msg.c_str());
}

bool Source::Fill() {
  if (begin_ > 0) {
    memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == cap_) {
    if (cap_ >= max_cap_) return false;  // unreachable: longer lines are discarded first
    size_t cap = std::min(cap_ * 2, max_cap_);
    std::unique_ptr<char[]> bigger(new char[cap + simdjson::SIMDJSON_PADDING]());
    memcpy(bigger.get(), buf_.get(), end_);
    buf_ = std::move(bigger);
    cap_ = cap;
  }
  for (;;) {
    // Between two looks past the end, the file may have been truncated and grown again.
    if (eof_seen_ && regular_ && !final_ && Rewritten()) StartOver();
    ssize_t n = read(fd_, buf_.get() + end_, cap_ - end_);
    if (n > 0) {
      eof_seen_ = false;
      const char* got = buf_.get() + end_;
      if (static_cast<size_t>(n) >= kTail) {
        tail_.assign(got + n - kTail, kTail);
      } else {
        tail_.append(got, static_cast<size_t>(n));
        if (tail_.size() > kTail) tail_.erase(0, tail_.size() - kTail);
      }
      end_ += static_cast<size_t>(n);
      offset_ += n;
      return true;
    }
    if (n < 0 && errno == EINTR) return false;  // a signal (SIGINT in --follow): look again later
    if (n < 0) {
      if (!read_failed_) fprintf(stderr, "%s: read error: %s\n", name_.c_str(), strerror(errno));
      read_failed_ = true;
      ++stats_.unreadable;
      final_ = true;
      return false;
    }
    // End of file: for good on a pipe; for now on a followed file. One whose path names another
    // file now is read once more (a writer may have just added to it), then left (Next).
    eof_seen_ = true;
    if (!regular_) final_ = true;
    if (!final_ && !rotated_ && Replaced()) {
      rotated_ = true;
      continue;
    }
    return false;
  }
}

bool Source::Rewritten() const {
  struct stat st;
  if (fstat(fd_, &st) != 0) return false;
  if (st.st_size < offset_) return true;
  if (tail_.empty()) return false;
  char was[kTail];
  const auto n = static_cast<ssize_t>(tail_.size());
  return pread(fd_, was, tail_.size(), offset_ - n) != n || memcmp(was, tail_.data(), tail_.size()) != 0;
}

void Source::StartOver() {
  fprintf(stderr, "%s: the file was truncated: reading it again from the start\n", name_.c_str());
  lseek(fd_, 0, SEEK_SET);
  offset_ = 0;
  tail_.clear();
  begin_ = end_ = 0;  // a line cut short by the truncation is dropped
  line_no_ = 0;
  discarding_ = false;
  eof_seen_ = false;
}

bool Source::Replaced() const {
  struct stat now, ours;
  return !path_.empty() && stat(path_.c_str(), &now) == 0 && S_ISREG(now.st_mode) && fstat(fd_, &ours) == 0 &&
         (now.st_ino != ours.st_ino || now.st_dev != ours.st_dev);
}

bool Source::Reopen() {
  int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;  // gone again in between: the next look tries again
  fprintf(stderr, "%s: replaced by a new file (rotated?): read the old one to its end, reading the new one from the "
                  "start\n", name_.c_str());
  close(fd_);
  fd_ = fd;
  rotated_ = false;
  offset_ = 0;
  tail_.clear();
  begin_ = end_ = 0;
  line_no_ = 0;
  discarding_ = false;
  eof_seen_ = false;
  return true;
}

Source::Result Source::Next(Event* e) {
  for (;;) {
    {  // base is valid only until Fill, which may move the data to a bigger buffer
      const char* base = buf_.get();
      const char* nl = static_cast<const char*>(memchr(base + begin_, '\n', end_ - begin_));
      if (discarding_) {
        if (nl != nullptr) {
          begin_ = static_cast<size_t>(nl - base) + 1;
          discarding_ = false;
          continue;
        }
        begin_ = end_;
      } else if (nl != nullptr) {
        const char* p = base + begin_;
        size_t len = static_cast<size_t>(nl - p);
        begin_ += len + 1;
        ++line_no_;
        ++stats_.lines;
        if (ParseLine(p, len, e)) return Result::kEvent;
        continue;
      } else if (end_ - begin_ > max_line_) {
        ++line_no_;
        ++stats_.lines;
        ++stats_.unreadable;
        Report(line_no_, Cat("line longer than ", SizeText(max_line_), ": skipped"));
        discarding_ = true;
        begin_ = end_;
        continue;
      }
    }
    if (Fill()) continue;
    if ((final_ || rotated_) && end_ > begin_ && !discarding_) {
      // The last line has no newline: take it if it parses, else it was cut short.
      const char* p = buf_.get() + begin_;
      size_t len = end_ - begin_;
      begin_ = end_;
      ++line_no_;
      ++stats_.lines;
      at_eof_ = true;
      if (ParseLine(p, len, e)) return Result::kEvent;
      continue;
    }
    if (rotated_ && !final_ && Reopen()) continue;
    return Result::kAgain;
  }
}

bool Source::ParseLine(const char* p, size_t n, Event* e) {
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r')) ++i;
  if (i == n) return false;  // blank line
  simdjson::dom::element root;
  if (auto err = parser_.parse(p, n, false).get(root); err) {
    ++stats_.unreadable;
    if (at_eof_) {
      stats_.truncated_last = true;
      at_eof_ = false;
      Report(line_no_, Cat("truncated last line (no newline at the end of the file, ", n,
                                    " bytes): skipped"));
    } else {
      Report(line_no_, Cat("not JSON (", simdjson::error_message(err), "): skipped"));
    }
    return false;
  }
  at_eof_ = false;
  simdjson::dom::object obj;
  if (root.get(obj) != simdjson::SUCCESS) {
    ++stats_.unreadable;
    Report(line_no_, Cat("not a JSON object (", TypeName(root.type()), "): skipped"));
    return false;
  }
  e->obj = obj;
  e->ev_name = {};
  e->ts = {};
  e->exe = {};
  e->pid = e->tid = 0;
  e->hot = Event::Hot();
  bool has_schema = false;
  simdjson::dom::element schema;
  for (auto field : obj) {
    if (!TakeField(field.key, field.value, e) && field.key == "schema") {
      has_schema = true;
      schema = field.value;
    }
  }
  if (has_schema) {
    int64_t v = 0;
    if (schema.get(v) != simdjson::SUCCESS || v != kSchema) {
      ++stats_.other_schema;
      Report(line_no_, Cat("schema ", Clean(simdjson::minify(schema)), " (this tool reads schema ",
                                    kSchema, "): skipped"));
      return false;
    }
  }
  if (e->ev_name.empty()) {
    ++stats_.unreadable;
    Report(line_no_, "no \"ev\" string: skipped");
    return false;
  }
  if (!ParseTs(e->ts, &e->ts_us)) {
    ++stats_.unreadable;
    Report(line_no_, e->ts.empty() ? "no \"ts\" string: skipped"
                                   : Cat("bad \"ts\" '", Clean(e->ts), "' (expected UTC like "
                                                  "2026-11-28T17:38:44.123456Z): skipped"));
    return false;
  }
  e->ev = EvFromName(e->ev_name);
  if (e->ev == Ev::kUnknown) {
    ++stats_.unknown;
    std::string name(e->ev_name);
    if (stats_.unknown_names.count(name) || stats_.unknown_names.size() < kMaxUnknownNames) {
      ++stats_.unknown_names[name];
    } else {
      ++stats_.unknown_names["(others)"];
    }
    Report(line_no_, Cat("unknown event \"", Clean(e->ev_name), "\": skipped"));
    return false;
  }
  e->source = index_;
  e->line = line_no_;
  ++stats_.events;
  return true;
}

}  // namespace awfshim::tracetool
