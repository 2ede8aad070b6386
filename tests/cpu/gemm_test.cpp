// gemm_int, the batched AVX-512 kernel, called directly: row ranges that start off a group boundary and span
// several 32-row blocks with a partial last group, every token count up to two passes and a tail, an output
// stride wider than the rows. Each entry must equal the scalar row dot product on the same quantized
// activations to float rounding (2e-5 of sum |w x|), and entries outside the range must stay untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "cpu/act_quant.h"
#include "cpu/isa.h"
#include "cpu/kernels.h"
#include "cpu/random_weights.h"
#include "cpu/x86/avx512/gemm.h"
#include "quant/dequantize.h"

namespace onecard::cpu {
namespace {

using gguf::GgmlType;

TEST(Gemm, RowRangesAndTokenCountsMatchTheScalarDot) {
  if (active_isa() != Isa::Avx512Vnni) GTEST_SKIP() << "the batched kernel needs AVX-512 VNNI";
  const int64_t rows = 90, r0 = 5, nr = 70;  // blocks of 32, 32 and 6 rows starting at row 5
  for (GgmlType type : testing::all_matmul_types()) {
    const IntFormat* f = int_format(type);
    if (f == nullptr) continue;
    // Two spans of the kernel's 1024 interleaved columns, the second partial: 37 or 5 units.
    const int64_t cols = gguf::traits(type).block_size == 32 ? 1184 : 1280;
    const std::vector<uint8_t> data = testing::random_weights(type, rows, cols, 11);
    const Matrix w = make_matrix(type, cols, rows, data.data());
    const VecDotFn dot = kernels(Isa::Scalar).row_dot[type];
    std::vector<float> row(cols);
    for (int64_t nt : {1, 5, 6, 7, 13}) {
      const std::vector<float> x = testing::gaussian(nt * cols, 40 + nt);
      const size_t act_row = act_row_bytes(f->act, cols), side_row = token_side_bytes(*f, cols);
      std::vector<uint8_t> acts(act_row * nt), sides(side_row * nt);
      std::vector<const uint8_t*> act_ptr(nt), side_ptr(nt);
      for (int64_t t = 0; t < nt; ++t) {
        quantize_act(f->act, x.data() + t * cols, acts.data() + t * act_row, cols);
        token_side(*f, cols, acts.data() + t * act_row, sides.data() + t * side_row);
        act_ptr[t] = acts.data() + t * act_row;
        side_ptr[t] = sides.data() + t * side_row;
      }
      const int64_t ldy = nr + 3;
      std::vector<float> y(nt * ldy, -7.0f);
      gemm_int(*f, w, r0, nr, GemmTokens{act_ptr.data(), side_ptr.data(), nt}, y.data(), ldy);
      for (int64_t t = 0; t < nt; ++t) {
        for (int64_t i = 0; i < ldy; ++i) {
          const float got = y[t * ldy + i];
          if (i >= nr) {
            ASSERT_EQ(got, -7.0f) << gguf::type_name(type) << " wrote past the rows, token " << t;
            continue;
          }
          ASSERT_TRUE(quant::dequantize_row(type, w.row(r0 + i), row.data(), cols).ok());
          double magnitude = 0;
          for (int64_t c = 0; c < cols; ++c)
            magnitude += std::abs(static_cast<double>(row[c]) * x[t * cols + c]);
          const float want = dot(*f, cols, w.row(r0 + i), act_ptr[t]);
          ASSERT_NEAR(got, want, 2e-5 * magnitude + 1e-30)
              << gguf::type_name(type) << " tokens " << nt << " token " << t << " row " << r0 + i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace onecard::cpu
