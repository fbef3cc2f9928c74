#include "trace_merger.h"

namespace awfshim::tracetool {

Merger::Merger(std::vector<std::unique_ptr<Source>> sources)
    : sources_(std::move(sources)), heads_(sources_.size()), has_head_(sources_.size(), 0) {}

bool Merger::Later::operator()(const std::pair<int64_t, int>& a, const std::pair<int64_t, int>& b) const {
  return a > b;
}

void Merger::Pull(int i) {
  if (sources_[i]->Next(&heads_[i]) == Source::Result::kEvent) {
    has_head_[i] = 1;
    heap_.push({heads_[i].ts_us, i});
  } else {
    has_head_[i] = 0;
  }
}

void Merger::NewRound() {
  for (size_t i = 0; i < sources_.size(); ++i) {
    if (!has_head_[i] && static_cast<int>(i) != last_) Pull(static_cast<int>(i));
  }
}

const Event* Merger::Next() {
  if (last_ >= 0) {
    int i = last_;
    last_ = -1;
    Pull(i);
  }
  if (heap_.empty()) return nullptr;
  int i = heap_.top().second;
  heap_.pop();
  has_head_[i] = 0;
  last_ = i;
  return &heads_[i];
}

void Merger::set_final() {
  for (auto& s : sources_) s->set_final();
}

bool Merger::all_done() const {
  for (const auto& s : sources_) {
    if (!s->done()) return false;
  }
  return true;
}

bool Merger::any_unreadable() const {
  for (const auto& s : sources_) {
    if (s->stats().unreadable > 0 || s->read_failed()) return true;
  }
  return false;
}

}  // namespace awfshim::tracetool
