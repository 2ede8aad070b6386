// When FP8 weights asked for as BF16 are written as F16: the range their block scales imply, and the limits
// that keep every block's values F16 normals with headroom.
#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "convert/output_type.h"

namespace onecard::convert {
namespace {

// A float32 scale tensor over `s` (one scale a block).
StTensor scales_of(const std::vector<float>& s) {
  StTensor t;
  t.name = "w_scale_inv";
  t.dtype = Dtype::kF32;
  t.shape = {1, s.size()};
  t.end = s.size() * sizeof(float);
  t.data = reinterpret_cast<const uint8_t*>(s.data());
  return t;
}

TEST(Fp8Range, IsTheFormatsLargestValueTimesEachScale) {
  const std::vector<float> s = {1e-3f, 0.0f, -2e-3f, 5e-4f};  // the zero block does not count as smallest
  const Fp8Range e4m3 = fp8_range(Dtype::kF8_E4M3, scales_of(s));
  EXPECT_FLOAT_EQ(e4m3.max_abs, 448.0f * 2e-3f);
  EXPECT_FLOAT_EQ(e4m3.min_block_max, 448.0f * 5e-4f);
  EXPECT_TRUE(e4m3.finite);
  EXPECT_FLOAT_EQ(fp8_range(Dtype::kF8_E5M2, scales_of(s)).max_abs, 57344.0f * 2e-3f);
  EXPECT_FALSE(
      fp8_range(Dtype::kF8_E4M3, scales_of({1e-3f, std::numeric_limits<float>::quiet_NaN()})).finite);
}

TEST(Fp8FitsF16, OnlyNormalValuesWithHeadroom) {
  auto fits = [](std::vector<float> s) { return fp8_fits_f16(fp8_range(Dtype::kF8_E4M3, scales_of(s))); };
  EXPECT_TRUE(fits({6e-4f, 5e-4f}));       // DeepSeek's scales: blocks of amax ~0.27
  EXPECT_TRUE(fits({0.0f, 5e-4f}));        // an all-zero block is exact in F16
  EXPECT_TRUE(fits({4096.0f / 448.0f}));   // the largest value at the limit
  EXPECT_FALSE(fits({4100.0f / 448.0f}));  // above it, though F16 reaches 65504
  EXPECT_FALSE(fits({5e-4f, 1e-8f}));      // one block of F16 subnormals (largest 4.5e-6 < 2^-14)
  EXPECT_TRUE(fits({std::ldexp(1.0f, -14) / 448.0f * 1.001f}));
  EXPECT_FALSE(fits({std::numeric_limits<float>::infinity()}));
  EXPECT_FALSE(fp8_fits_f16(fp8_range(Dtype::kF8_E5M2, scales_of({0.1f}))));  // 5734: e5m2's wider range
}

}  // namespace
}  // namespace onecard::convert
