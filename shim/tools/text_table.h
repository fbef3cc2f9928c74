// Columns for human output: left- or right-aligned by UTF-8 width, no trailing blanks.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "trace_event.h"

namespace awfshim::tracetool {

class TextTable {
 public:
  // align: one letter per column, 'l' or 'r'.
  TextTable(std::vector<std::string> header, std::string align)
      : align_(std::move(align)) { rows_.push_back(std::move(header)); }

  void Row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  size_t rows() const { return rows_.size() - 1; }

  std::string Render(const std::string& indent = "  ") const {
    std::vector<size_t> width;
    for (const auto& r : rows_) {
      if (width.size() < r.size()) width.resize(r.size(), 0);
      for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], Width(r[i]));
    }
    std::string out;
    for (const auto& r : rows_) {
      std::string line = indent;
      for (size_t i = 0; i < r.size(); ++i) {
        size_t pad = width[i] - Width(r[i]);
        bool right = i < align_.size() && align_[i] == 'r';
        if (i > 0) line += "  ";
        if (right) line.append(pad, ' ');
        line += r[i];
        if (!right && i + 1 < r.size()) line.append(pad, ' ');
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line;
      out += '\n';
    }
    return out;
  }

 private:
  std::string align_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace awfshim::tracetool
