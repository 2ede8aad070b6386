// A progress line for long work (writing a multi-GB file, loading a model). Redraws in place on a terminal;
// elsewhere (CI logs, pipes) prints a line at every tenth so logs stay short.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace onecard {

class Progress {
 public:
  Progress(std::string label, uint64_t total, bool enabled = true);
  ~Progress();
  void advance(uint64_t amount);
  void finish();

 private:
  void draw(bool final_line);
  std::string label_;
  uint64_t total_;
  uint64_t done_ = 0;
  bool enabled_;
  bool tty_;
  bool finished_ = false;
  int last_tenth_ = -1;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace onecard
