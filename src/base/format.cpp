#include "base/format.h"

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>

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

Result<uint64_t> parse_bytes(std::string_view text) {
  constexpr std::string_view kExamples = "e.g. 24GiB, 512MiB, 1.5GB";
  std::string_view s = text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  double value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || !std::isfinite(value))
    return make_error("'{}' is not a size ({})", text, kExamples);
  if (value < 0) return make_error("'{}' is negative", text);
  std::string_view unit_text(end, static_cast<size_t>(s.data() + s.size() - end));
  while (!unit_text.empty() && unit_text.front() == ' ') unit_text.remove_prefix(1);
  std::string unit(unit_text);
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (unit.empty()) return make_error("'{}' has no unit ({})", text, kExamples);
  struct Unit {
    std::string_view name;
    double factor;
  };
  constexpr double kKi = 1024.0, kK = 1000.0;
  constexpr std::array<Unit, 13> kUnits = {{{"b", 1.0},
                                            {"k", kKi},
                                            {"kib", kKi},
                                            {"m", kKi * kKi},
                                            {"mib", kKi * kKi},
                                            {"g", kKi * kKi * kKi},
                                            {"gib", kKi * kKi * kKi},
                                            {"t", kKi * kKi * kKi * kKi},
                                            {"tib", kKi * kKi * kKi * kKi},
                                            {"kb", kK},
                                            {"mb", kK * kK},
                                            {"gb", kK * kK * kK},
                                            {"tb", kK * kK * kK * kK}}};
  for (const Unit& u : kUnits) {
    if (unit != u.name) continue;
    const double bytes = std::round(value * u.factor);
    // 2^64 is exactly representable; every double below it converts.
    if (bytes >= 18446744073709551616.0) return make_error("'{}' is too large", text);
    return static_cast<uint64_t>(bytes);
  }
  return make_error(
      "'{}': unknown unit '{}' (B, KiB, MiB, GiB, TiB or K, M, G, T; KB, MB, GB, TB are powers "
      "of 1000)",
      text, unit_text);
}

}  // namespace onecard
