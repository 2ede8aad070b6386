#include "base/progress.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

#include "base/format.h"

namespace onecard {

Progress::Progress(std::string label, uint64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  finish();
}

void Progress::advance(uint64_t amount) {
  done_ += amount;
  if (!enabled_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ >= std::chrono::milliseconds(100)) {
      last_draw_ = now;
      draw(false);
    }
  } else {
    const int tenth = total_ ? static_cast<int>(done_ * 10 / total_) : 10;
    if (tenth != last_tenth_ && tenth < 10) {
      last_tenth_ = tenth;
      draw(false);
    }
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled_) draw(true);
}

void Progress::draw(bool final_line) {
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double frac = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  const double rate = secs > 0 ? static_cast<double>(done_) / secs : 0.0;
  std::string line;
  if (tty_) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(frac * kWidth);
    line = fmt::format("\r{} [{}{}] {:5.1f}% {} / {} {}/s", label_, std::string(filled, '#'),
                       std::string(kWidth - filled, '.'), frac * 100.0, human_bytes(done_),
                       human_bytes(total_), human_bytes(static_cast<uint64_t>(rate)));
    if (!final_line && rate > 0 && done_ < total_) {
      line += fmt::format(" ETA {:.0f}s", static_cast<double>(total_ - done_) / rate);
    }
    line += final_line ? fmt::format(" in {:.1f}s\n", secs) : "\x1b[K";
  } else {
    line = fmt::format("{}: {:3.0f}% {} / {}{}\n", label_, frac * 100.0, human_bytes(done_),
                       human_bytes(total_), final_line ? fmt::format(" in {:.1f}s", secs) : "");
  }
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace onecard
