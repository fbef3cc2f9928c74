// Token usage in responses for the tracker (http1.cc): an SSE stream scanned event by event, or a
// whole JSON body, keeping at most kMaxUsageEvent bytes whatever arrives.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "awfshim/http1.h"

namespace awfshim::http1_detail {

// An SSE event's data (or a chat JSON response) up to this size is parsed whole; a longer one
// (a response.completed event repeats the whole output) keeps only its last kUsageTail bytes,
// where the usage object sits, and that window is searched for it.
inline constexpr size_t kMaxUsageEvent = 64 * 1024;
inline constexpr size_t kUsageTail = 16 * 1024;

bool StartsLikeObject(absl::string_view json);

// The last `"usage"` key starting at or before `before` whose value is an object: returns the
// index of its '{' and sets *key_at, or npos. Chat Completions streams carry "usage":null in every
// chunk but the last, so only this shape is worth a parse.
size_t FindUsageObject(absl::string_view json, size_t before, size_t* key_at);

// The last window of an event too long to parse whole: the last `"usage":{...}` that closes in it
// and has a count. A few tries only: a tool schema may have a property named usage.
std::optional<SseUsage> UsageFromTail(absl::string_view tail);

// Watches a response body for token usage: an SSE stream event by event, or a whole JSON body.
// Keeps at most kMaxUsageEvent bytes.
class UsageScanner {
 public:
  enum class Mode { kOff, kSse, kJson };

  void Start(Mode mode) {
    Reset();
    mode_ = mode;
    usage_.reset();
  }
  bool active() const { return mode_ != Mode::kOff; }
  size_t buffered() const { return data_.size() + name_.size(); }

  void Feed(absl::string_view bytes) {
    if (mode_ == Mode::kJson) {
      has_data_ = true;
      Append(bytes);
      return;
    }
    if (mode_ == Mode::kSse) FeedSse(bytes);
  }

  // The body ended: an event without its closing empty line still counts.
  std::optional<SseUsage> Finish() {
    if (mode_ != Mode::kOff) Dispatch();
    mode_ = Mode::kOff;
    Reset();
    std::optional<SseUsage> u = usage_;
    usage_.reset();
    return u;
  }

  void Reset() {
    field_ = Field::kName;
    name_.clear();
    name_long_ = false;
    skip_lf_ = false;
    ClearData();
  }

 private:
  enum class Field { kName, kDataStart, kData, kOther };

  // text/event-stream (WHATWG HTML 9.2.6): lines end with CRLF, LF or CR; "data:" lines (one
  // optional space after the colon) accumulate, joined by LF, until an empty line dispatches.
  void FeedSse(absl::string_view bytes) {
    size_t i = 0;
    while (i < bytes.size()) {
      char c = bytes[i];
      if (skip_lf_) {
        skip_lf_ = false;
        if (c == '\n') {
          i++;
          continue;
        }
      }
      if (c == '\r' || c == '\n') {
        EndLine();
        skip_lf_ = c == '\r';
        i++;
        continue;
      }
      switch (field_) {
        case Field::kName:
          if (c == ':') {
            if (IsDataName()) {
              BeginDataLine();
              field_ = Field::kDataStart;
            } else {
              field_ = Field::kOther;
            }
          } else if (name_.size() < 8) {
            name_.push_back(c);
          } else {
            name_long_ = true;
          }
          i++;
          break;
        case Field::kDataStart:
          if (c == ' ') i++;
          field_ = Field::kData;
          break;
        case Field::kData:
        case Field::kOther: {
          size_t end = bytes.find_first_of("\r\n", i);
          if (end == absl::string_view::npos) end = bytes.size();
          if (field_ == Field::kData) Append(bytes.substr(i, end - i));
          i = end;
          break;
        }
      }
    }
  }

  bool IsDataName() const { return !name_long_ && name_ == "data"; }

  void BeginDataLine() {
    if (has_data_) Append("\n");
    has_data_ = true;
  }

  void EndLine() {
    if (field_ == Field::kName) {
      if (name_.empty() && !name_long_) {
        Dispatch();
      } else if (IsDataName()) {
        BeginDataLine();  // "data" alone: an empty data line
      }
    }
    field_ = Field::kName;
    name_.clear();
    name_long_ = false;
  }

  // Keeps everything up to kMaxUsageEvent; past that only a window of the last bytes (at least
  // kUsageTail of them, at most twice that, so trimming is amortised).
  void Append(absl::string_view s) {
    if (!tail_mode_) {
      if (data_.size() + s.size() <= kMaxUsageEvent) {
        data_.append(s.data(), s.size());
        return;
      }
      tail_mode_ = true;
    }
    if (s.size() >= kUsageTail) {
      data_.assign(s.data() + s.size() - kUsageTail, kUsageTail);
      return;
    }
    data_.append(s.data(), s.size());
    if (data_.size() > 2 * kUsageTail) data_.erase(0, data_.size() - kUsageTail);
  }

  void Dispatch() {
    if (has_data_) {
      absl::string_view data = data_;
      std::optional<SseUsage> u;
      if (tail_mode_) {
        // Exactly the last kUsageTail bytes, so that the result does not depend on the reads.
        u = UsageFromTail(data.substr(data.size() - std::min(data.size(), kUsageTail)));
      } else if (size_t key_at = 0; StartsLikeObject(data) &&
                 FindUsageObject(data, absl::string_view::npos, &key_at) != absl::string_view::npos) {
        u = ParseUsage(data);
      }
      if (u) Merge(*u);
    }
    ClearData();
  }

  // Later reports win field by field: Anthropic sends input tokens first, output tokens last.
  void Merge(const SseUsage& u) {
    if (!usage_) {
      usage_ = u;
      return;
    }
    for (auto field : {&SseUsage::input_tokens, &SseUsage::output_tokens, &SseUsage::total_tokens,
                       &SseUsage::cached_tokens, &SseUsage::reasoning_tokens}) {
      if (u.*field >= 0) (*usage_).*field = u.*field;
    }
  }

  void ClearData() {
    if (data_.capacity() > 8192) {
      std::string().swap(data_);
    } else {
      data_.clear();
    }
    has_data_ = false;
    tail_mode_ = false;
  }

  Mode mode_ = Mode::kOff;
  Field field_ = Field::kName;
  std::string name_;        // the field name so far; only "data" matters
  bool name_long_ = false;  // longer than 8 bytes: not "data"
  bool skip_lf_ = false;    // a CR ended the last line: an LF right after it belongs to it
  bool has_data_ = false;
  bool tail_mode_ = false;
  std::string data_;
  std::optional<SseUsage> usage_;
};

}  // namespace awfshim::http1_detail
