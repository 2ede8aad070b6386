#include "base/format.h"

#include <fmt/format.h>

namespace onecard {

std::string human_bytes(uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  if (u == 0) return fmt::format("{} B", bytes);
  return fmt::format("{:.2f} {}", v, units[u]);
}

std::string human_count(uint64_t count) {
  static const char* units[] = {"", "K", "M", "B", "T"};
  double v = static_cast<double>(count);
  int u = 0;
  while (v >= 1000.0 && u < 4) {
    v /= 1000.0;
    ++u;
  }
  if (u == 0) return fmt::format("{}", count);
  return fmt::format("{:.2f} {}", v, units[u]);
}

}  // namespace onecard
