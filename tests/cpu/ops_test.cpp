// The AVX-512 SiLU(gate)·up against the scalar one (std::exp) on random values, odd lengths for the masked
// tail, and the extremes where exp overflows or underflows; every table's softmax against the scalar one on
// attention-like scores (a wide spread, so that the smallest weights underflow), and so is every exp_sum and
// every max_of.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/isa.h"
#include "cpu/kernels.h"
#include "cpu/ops.h"
#include "cpu/random_weights.h"

namespace onecard::cpu {
namespace {

TEST(SiluMul, VectorMatchesScalar) {
  if (supported_isas().back() != Isa::Avx512Vnni) GTEST_SKIP() << "needs AVX-512";
  for (int64_t n : {1, 15, 16, 17, 100, 2051}) {
    std::vector<float> g = testing::gaussian(n, n), u = testing::gaussian(n, n + 1000);
    for (int64_t i = 0; i < n; ++i) g[i] *= 8.0f;  // gates well into both saturated ends
    if (n > 4) {
      g[0] = -200.0f;  // exp(200) overflows: silu is -0
      g[1] = 200.0f;
      g[2] = -87.0f;
      g[3] = 0.0f;
    }
    std::vector<float> want = g, got = g;
    silu_mul_scalar(want.data(), u.data(), n);
    silu_mul_avx512(got.data(), u.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_TRUE(std::isfinite(got[i])) << "n " << n << " index " << i;
      ASSERT_NEAR(got[i], want[i], 1e-6 * std::abs(want[i]) + 1e-30)
          << "n " << n << " index " << i << " gate " << g[i];
    }
  }
}

TEST(Softmax, EveryTableMatchesTheScalarOne) {
  for (Isa isa : supported_isas()) {
    for (int64_t n : {1, 7, 8, 17, 100, 4099}) {
      std::vector<float> x = testing::gaussian(n, n + 7);
      for (float& v : x) v *= 30.0f;
      std::vector<float> want = x, got = x;
      softmax_scalar(want.data(), n);
      kernels(isa).softmax(got.data(), n);
      double total = 0;
      for (int64_t i = 0; i < n; ++i) {
        total += got[i];
        ASSERT_NEAR(got[i], want[i], 2e-6 * want[i] + 1e-37) << isa_name(isa) << " n " << n << " index " << i;
      }
      EXPECT_NEAR(total, 1.0, 1e-5) << isa_name(isa) << " n " << n;
    }
  }
}

TEST(MaxOf, EveryTableMatchesTheScalarOne) {
  for (Isa isa : supported_isas()) {
    for (int64_t n : {1, 7, 8, 15, 16, 17, 100, 4099}) {
      const std::vector<float> x = testing::gaussian(n, n + 11);
      // The largest at the end as well as anywhere: the tails are reduced apart from the vectors.
      std::vector<float> last = x;
      last[static_cast<size_t>(n - 1)] = 100.0f;
      const std::vector<float>* inputs[] = {&x, &last};
      for (const std::vector<float>* v : inputs) {
        EXPECT_EQ(kernels(isa).max_of(v->data(), n), max_of_scalar(v->data(), n))
            << isa_name(isa) << " n " << n;
      }
    }
  }
}

TEST(ExpSum, EveryTableMatchesTheScalarOne) {
  for (Isa isa : supported_isas()) {
    for (int64_t n : {1, 7, 8, 17, 100, 4099}) {
      std::vector<float> x = testing::gaussian(n, n + 11);
      for (float& v : x) v *= 30.0f;
      // A shift above the maximum, as an online softmax's running maximum from earlier blocks is.
      const float shift = *std::max_element(x.begin(), x.end()) + 3.0f;
      std::vector<float> want = x, got = x;
      const float want_sum = exp_sum_scalar(want.data(), n, shift);
      const float got_sum = kernels(isa).exp_sum(got.data(), n, shift);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(got[i], want[i], 2e-6 * want[i] + 1e-37) << isa_name(isa) << " n " << n << " index " << i;
      EXPECT_NEAR(got_sum, want_sum, 2e-6 * want_sum) << isa_name(isa) << " n " << n;
    }
  }
}

}  // namespace
}  // namespace onecard::cpu
