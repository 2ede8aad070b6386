#include "cpu/gemm_check.h"

#include <gtest/gtest.h>

#include <cmath>

#include "cpu/act_quant.h"
#include "cpu/random_weights.h"
#include "quant/dequantize.h"

namespace onecard::cpu::testing {

QuantizedTokens::QuantizedTokens(const IntFormat& f, const std::vector<float>& x, int64_t cols, int64_t nt)
    : act_ptr(static_cast<size_t>(nt)), side_ptr(static_cast<size_t>(nt)) {
  const size_t act_row = act_row_bytes(f.act, cols), side_row = token_side_bytes(f, cols);
  acts.resize(act_row * static_cast<size_t>(nt));
  sides.resize(side_row * static_cast<size_t>(nt));
  for (int64_t t = 0; t < nt; ++t) {
    quantize_act(f.act, x.data() + t * cols, acts.data() + t * act_row, cols);
    token_side(f, cols, acts.data() + t * act_row, sides.data() + t * side_row);
    act_ptr[t] = acts.data() + t * act_row;
    side_ptr[t] = sides.data() + t * side_row;
  }
}

void expect_gemm_matches_scalar_dot(GemmFn gemm, gguf::GgmlType type, int64_t rows, int64_t cols, int64_t r0,
                                    int64_t nr, int64_t nt, uint64_t seed) {
  const IntFormat* f = int_format(type);
  ASSERT_NE(f, nullptr) << gguf::type_name(type);
  const std::vector<uint8_t> data = random_weights(type, rows, cols, seed);
  const Matrix w = make_matrix(type, cols, rows, data.data());
  const std::vector<float> x = gaussian(nt * cols, seed + 100 + static_cast<uint64_t>(nt));
  const QuantizedTokens q(*f, x, cols, nt);
  const int64_t ldy = nr + 3;
  std::vector<float> y(static_cast<size_t>(nt * ldy), -7.0f);
  gemm(*f, w, r0, nr, q.tokens(), y.data(), ldy, nullptr, 0);
  const VecDotFn dot = kernels(Isa::Scalar).row_dot[type];
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t t = 0; t < nt; ++t) {
    for (int64_t i = 0; i < ldy; ++i) {
      const float got = y[t * ldy + i];
      if (i >= nr) {
        ASSERT_EQ(got, -7.0f) << gguf::type_name(type) << " wrote past the rows, token " << t;
        continue;
      }
      ASSERT_TRUE(quant::dequantize_row(type, w.row(r0 + i), row.data(), cols).ok());
      double magnitude = 0;
      for (int64_t c = 0; c < cols; ++c) magnitude += std::abs(static_cast<double>(row[c]) * x[t * cols + c]);
      const float want = dot(*f, cols, w.row(r0 + i), q.act_ptr[t]);
      ASSERT_NEAR(got, want, 2e-5 * magnitude + 1e-30)
          << gguf::type_name(type) << " tokens " << nt << " token " << t << " row " << r0 + i;
    }
  }
}

}  // namespace onecard::cpu::testing
