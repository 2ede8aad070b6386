#include "base/rng.h"

#include <cmath>

#include <gtest/gtest.h>

namespace onecard {
namespace {

TEST(Rng, SameSeedSameStream) {
  Rng a(42, "blk.0.ffn_up.weight"), b(42, "blk.0.ffn_up.weight"), c(42, "blk.0.ffn_down.weight"), d(43);
  bool differs_c = false, differs_d = false;
  Rng e(43);
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.next();
    EXPECT_EQ(x, b.next());
    differs_c |= x != c.next();
    EXPECT_EQ(d.next(), e.next());
  }
  EXPECT_TRUE(differs_c);
  (void)differs_d;
}

TEST(Rng, KnownFirstValuesAcrossPlatforms) {
  // Synthetic models must be byte-identical everywhere: pin the generator's output.
  Rng r(1);
  EXPECT_EQ(r.next(), 0xb3f2af6d0fc710c5ull);
}

TEST(Rng, DistributionsHaveTheirMoments) {
  Rng r(9);
  double sum = 0, sq = 0, usum = 0;
  constexpr int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double x = r.normal();
    sum += x;
    sq += x * x;
    const float u = r.uniform();
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    usum += u;
    ASSERT_LT(r.below(7), 7u);
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sq / n, 1.0, 0.02);
  EXPECT_NEAR(usum / n, 0.5, 0.01);
}

}  // namespace
}  // namespace onecard
