#include "base/half.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "base/rng.h"

namespace onecard {
namespace {

// Reference: the nearest representable half, found by exhaustive search over all finite halves near the
// value.
uint16_t nearest_half(float f) {
  if (std::isnan(f)) return 0x7e00;
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const double a = std::fabs(static_cast<double>(f));
  if (a >= 65520.0) return sign | 0x7c00;
  uint16_t best = 0;
  double best_err = std::numeric_limits<double>::infinity();
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    const double err = std::fabs(static_cast<double>(fp16_to_fp32(static_cast<uint16_t>(h))) - a);
    if (err < best_err || (err == best_err && (h & 1) == 0)) {
      best = static_cast<uint16_t>(h);
      best_err = err;
    }
  }
  return sign | best;
}

TEST(Half, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto x = static_cast<uint16_t>(h);
    const float f = fp16_to_fp32(x);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(f))));
    } else {
      EXPECT_EQ(fp32_to_fp16(f), x) << std::hex << h;
    }
  }
}

TEST(Half, RoundsToNearestEven) {
  Rng rng(7);
  for (int i = 0; i < 300; ++i) {
    const float f = rng.normal() * std::ldexp(1.0f, static_cast<int>(rng.below(40)) - 26);
    EXPECT_EQ(fp32_to_fp16(f), nearest_half(f)) << f;
  }
  EXPECT_EQ(fp32_to_fp16(65519.0f), 0x7bff);             // below the rounding boundary of the largest half
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);             // rounds to infinity
  EXPECT_EQ(fp32_to_fp16(1.0f + 0x1p-11f), 0x3c00);      // tie to even (down)
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3c02);  // tie to even (up)
  EXPECT_EQ(fp32_to_fp16(0x1p-25f), 0x0000);             // half of the smallest subnormal: tie to even zero
  EXPECT_EQ(fp32_to_fp16(0x1.8p-24f), 0x0002);
}

TEST(BFloat16, RoundsToNearestEvenAndKeepsNan) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f808001u)), 0x3f81);
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  Rng rng(3);
  for (int i = 0; i < 1000; ++i) {
    const float f = rng.normal() * 1000.0f;
    const float back = bf16_to_fp32(fp32_to_bf16(f));
    EXPECT_LE(std::fabs(back - f), std::fabs(f) * 0x1p-8f);
  }
}

}  // namespace
}  // namespace onecard
