// Stop strings across token boundaries: generated text is fed piece by piece, and only text that cannot be
// the beginning of a stop string is released; when a stop string appears, the text before it is released and
// the generation ends.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace onecard::sample {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // Adds a piece; returns the text that may be shown now.
  std::string feed(std::string_view piece);
  // True once a stop string was found (everything after it is dropped).
  bool stopped() const { return stopped_; }
  // At the end of generation: the text still held back.
  std::string flush();

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace onecard::sample
