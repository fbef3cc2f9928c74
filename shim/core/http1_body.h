// HTTP/1.1 message body framing for the tracker (http1.cc): Content-Length, chunked (with
// extensions and trailers) and until-close bodies, followed across reads without storing the
// payload.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "awfshim/hex.h"

namespace awfshim::http1_detail {

// A chunk-size line with its extensions; real ones are a few bytes.
inline constexpr size_t kMaxChunkLine = 4096;
// A body length beyond any real transfer; also keeps the arithmetic far from overflow.
inline constexpr uint64_t kMaxBodyLength = uint64_t{1} << 60;

// Follows one body's framing and hands out its payload piece by piece; stores nothing but the
// current chunk-size or trailer line.
class BodyReader {
 public:
  enum class Kind { kNone, kLength, kChunked, kUntilClose };
  enum class Step {
    kPiece,  // *piece holds payload bytes (non-empty); call again
    kMore,   // all of *in was used; the body goes on
    kDone,   // the body ended; *in holds what follows it
    kError,  // broken framing: problem()
  };

  void Start(Kind kind, uint64_t length) {
    kind_ = kind;
    remaining_ = length;
    state_ = State::kSize;
    trailer_bytes_ = 0;
    ClearLine();
    problem_ = "";
  }
  bool until_close() const { return kind_ == Kind::kUntilClose; }
  absl::string_view problem() const { return problem_; }
  size_t buffered() const { return line_.size(); }

  Step Next(absl::string_view* in, absl::string_view* piece) {
    switch (kind_) {
      case Kind::kNone:
        return Step::kDone;
      case Kind::kUntilClose:
        if (in->empty()) return Step::kMore;
        *piece = *in;
        in->remove_prefix(in->size());
        return Step::kPiece;
      case Kind::kLength:
        return Counted(in, piece);
      case Kind::kChunked:
        return Chunked(in, piece);
    }
    return Step::kDone;
  }

 private:
  enum class State { kSize, kData, kDataEnd, kTrailer, kEnd };

  Step Counted(absl::string_view* in, absl::string_view* piece) {
    if (remaining_ == 0) return Step::kDone;
    if (in->empty()) return Step::kMore;
    size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in->size()));
    *piece = in->substr(0, n);
    in->remove_prefix(n);
    remaining_ -= n;
    return Step::kPiece;
  }

  Step Chunked(absl::string_view* in, absl::string_view* piece) {
    for (;;) {
      bool too_long = false;
      switch (state_) {
        case State::kSize: {
          if (!ReadLine(in, kMaxChunkLine, &too_long)) return too_long ? Fail("chunk size line too long") : Step::kMore;
          uint64_t size = 0;
          if (!ParseChunkSize(line_, &size)) return Fail("bad chunk size line");
          ClearLine();
          if (size == 0) {
            state_ = State::kTrailer;
          } else {
            remaining_ = size;
            state_ = State::kData;
          }
          break;
        }
        case State::kData: {
          if (in->empty()) return Step::kMore;
          size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in->size()));
          *piece = in->substr(0, n);
          in->remove_prefix(n);
          remaining_ -= n;
          if (remaining_ == 0) state_ = State::kDataEnd;
          return Step::kPiece;
        }
        case State::kDataEnd:
          // Only the line end may follow the data: anything else means the size was wrong.
          if (!ReadLine(in, 0, &too_long)) return too_long ? Fail("chunk data not followed by CRLF") : Step::kMore;
          if (!line_.empty()) return Fail("chunk data not followed by CRLF");
          state_ = State::kSize;
          break;
        case State::kTrailer: {
          // Trailer fields are skipped; their total is bounded like a head.
          size_t before = line_.size();
          bool complete = ReadLine(in, kMaxHttpHead, &too_long);
          trailer_bytes_ += line_.size() - before;
          if (too_long || trailer_bytes_ > kMaxHttpHead) return Fail("trailer section too long");
          if (!complete) return Step::kMore;
          bool blank = line_.empty();
          ClearLine();
          if (blank) {
            state_ = State::kEnd;
            return Step::kDone;
          }
          break;
        }
        case State::kEnd:
          return Step::kDone;
      }
    }
  }

  // chunk-size [BWS] [; ext...]: hex digits, at most 15 significant (well past kMaxBodyLength).
  static bool ParseChunkSize(absl::string_view line, uint64_t* size) {
    size_t i = 0;
    int significant = 0;
    uint64_t n = 0;
    for (; i < line.size(); i++) {
      int d = HexDigitValue(static_cast<unsigned char>(line[i]));
      if (d < 0) break;
      if (n != 0 || d != 0) significant++;
      if (significant > 15) return false;
      n = n * 16 + static_cast<uint64_t>(d);
    }
    if (i == 0) return false;
    absl::string_view rest = line.substr(i);
    while (!rest.empty() && (rest[0] == ' ' || rest[0] == '\t')) rest.remove_prefix(1);
    if (!rest.empty() && rest[0] != ';') return false;
    *size = n;
    return true;
  }

  // Appends to line_ up to the next LF; true when the line is complete (its CR removed). A line
  // longer than `cap` (plus its CR) sets *too_long. The verdict depends only on the bytes, not on
  // how they were split.
  bool ReadLine(absl::string_view* in, size_t cap, bool* too_long) {
    size_t nl = in->find('\n');
    absl::string_view part = in->substr(0, nl);
    if (line_.size() + part.size() > cap + 1) {
      *too_long = true;
      return false;
    }
    line_.append(part.data(), part.size());
    if (nl == absl::string_view::npos) {
      in->remove_prefix(in->size());
      return false;
    }
    in->remove_prefix(nl + 1);
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    return true;
  }

  void ClearLine() {
    if (line_.capacity() > 8192) {
      std::string().swap(line_);
    } else {
      line_.clear();
    }
  }

  Step Fail(absl::string_view problem) {
    problem_ = problem;
    return Step::kError;
  }

  Kind kind_ = Kind::kNone;
  State state_ = State::kSize;
  uint64_t remaining_ = 0;
  size_t trailer_bytes_ = 0;
  std::string line_;
  absl::string_view problem_;  // always a literal
};

}  // namespace awfshim::http1_detail
