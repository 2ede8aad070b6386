// Summaries of latency samples for benchmark reports: mean, extremes and percentiles. Percentiles
// interpolate linearly between the closest ranks (NumPy's default, which vLLM's benchmark_serving uses), so
// that our numbers and theirs are comparable.
#pragma once

#include <cstddef>
#include <limits>
#include <span>
#include <vector>

namespace onecard::serve {

// The p-th percentile (p in [0, 100], clamped) of values sorted ascending; NaN for none.
double percentile_sorted(std::span<const double> sorted, double p);

struct Summary {
  static constexpr double kNone = std::numeric_limits<double>::quiet_NaN();
  size_t count = 0;
  // NaN when count is 0.
  double mean = kNone, min = kNone, max = kNone;
  double p50 = kNone, p90 = kNone, p99 = kNone;
};

// NaN samples are left out.
Summary summarize(std::vector<double> values);

}  // namespace onecard::serve
