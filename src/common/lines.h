// Splitting text into lines, for the line-oriented formats the node reads (INFO text
// turned into metrics, the cluster secret file). Lines end at '\n'; a '\r' before it is
// dropped; the last line needs no '\n'. Views point into the caller's text.
#pragma once

#include <cstddef>
#include <string_view>

namespace itsuka {

class LineReader {
 public:
  explicit LineReader(std::string_view text) : text_(text) {}

  // The next line into *line (without its end); false once the text is used up.
  bool Next(std::string_view* line) {
    if (pos_ >= text_.size()) return false;
    size_t end = text_.find('\n', pos_);
    if (end == std::string_view::npos) end = text_.size();
    *line = text_.substr(pos_, end - pos_);
    pos_ = end + 1;
    ++number_;
    if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
    return true;
  }
  // 1-based number of the line Next returned last (0 before the first).
  int number() const { return number_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  int number_ = 0;
};

}  // namespace itsuka
