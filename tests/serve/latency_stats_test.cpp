#include "serve/latency_stats.h"

#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

namespace onecard::serve {
namespace {

TEST(LatencyStats, PercentilesInterpolateLikeNumpy) {
  // numpy.percentile([1, 2, 3, 4], [0, 25, 50, 90, 99, 100]) == [1, 1.75, 2.5, 3.7, 3.97, 4].
  const std::vector<double> v = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 0), 1);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 25), 1.75);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 90), 3.7);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 99), 3.97);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 100), 4);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 150), 4);  // clamped
  EXPECT_DOUBLE_EQ(percentile_sorted(v, -5), 1);
}

TEST(LatencyStats, OneToHundred) {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);  // unsorted on purpose: summarize sorts
  const Summary s = summarize(v);
  EXPECT_EQ(s.count, 100u);
  EXPECT_DOUBLE_EQ(s.mean, 50.5);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 100);
  EXPECT_DOUBLE_EQ(s.p50, 50.5);
  EXPECT_DOUBLE_EQ(s.p90, 90.1);
  EXPECT_DOUBLE_EQ(s.p99, 99.01);
}

TEST(LatencyStats, SingleValue) {
  const Summary s = summarize({0.25});
  EXPECT_EQ(s.count, 1u);
  EXPECT_DOUBLE_EQ(s.mean, 0.25);
  EXPECT_DOUBLE_EQ(s.p50, 0.25);
  EXPECT_DOUBLE_EQ(s.p99, 0.25);
}

TEST(LatencyStats, EmptyAndNanSamples) {
  const Summary empty = summarize({});
  EXPECT_EQ(empty.count, 0u);
  EXPECT_TRUE(std::isnan(empty.mean));
  EXPECT_TRUE(std::isnan(empty.p99));
  EXPECT_TRUE(std::isnan(percentile_sorted({}, 50)));

  const Summary s = summarize({std::numeric_limits<double>::quiet_NaN(), 2, 4});
  EXPECT_EQ(s.count, 2u);
  EXPECT_DOUBLE_EQ(s.mean, 3);
}

}  // namespace
}  // namespace onecard::serve
