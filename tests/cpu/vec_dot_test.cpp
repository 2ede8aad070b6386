// Each SIMD row dot product equals the scalar reference (same quantized activations) up to float rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "cpu/int_format.h"
#include "cpu/kernels.h"
#include "cpu/random_weights.h"
#include "quant/dequantize.h"

namespace onecard::cpu {
namespace {

TEST(VecDot, SimdMatchesScalar) {
  for (Isa isa : supported_isas()) {
    for (gguf::GgmlType type : testing::all_matmul_types()) {
      const IntFormat* f = int_format(type);
      if (f == nullptr) continue;
      for (int64_t units : {1, 3, 8, 17, 35}) {
        const int64_t n = units * f->unit;
        const std::vector<uint8_t> w = testing::random_weights(type, 1, n, 11 + units);
        const std::vector<float> x = testing::gaussian(n, 5 + units);
        std::vector<uint8_t> a(act_row_bytes(f->act, n));
        quantize_act(f->act, x.data(), a.data(), n);
        // The scale of the float rounding: the sum of |w * x| over the row.
        std::vector<float> wf(n);
        ASSERT_TRUE(quant::dequantize_row(type, w.data(), wf.data(), n).ok());
        double mag = 0;
        for (int64_t i = 0; i < n; ++i) mag += std::abs(static_cast<double>(wf[i]) * x[i]);
        const float want = vec_dot_scalar(*f, n, w.data(), a.data());
        const float got = kernels(isa).row_dot[type](*f, n, w.data(), a.data());
        EXPECT_NEAR(got, want, 1e-5 * mag) << isa_name(isa) << " " << gguf::type_name(type) << " n=" << n;
      }
    }
  }
}

}  // namespace
}  // namespace onecard::cpu
