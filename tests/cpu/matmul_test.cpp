// matmul against matmul_reference for every format, ISA, thread count and batch size. Float formats and the
// dequantizing IQ formats must agree to float rounding. The integer formats quantize activations to 8 bits
// with round-to-nearest, so each activation moves by at most half a step, amax(group) / 254 (times 1 + 2^-10
// for the fp16 scale of Q8_0): |y - y_ref| <= sum_c |w_c| * step_c / 2 bounds their error, plus rounding.
// Across ISAs the integer results use identical activations, so they must agree to float rounding.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "cpu/float_dot.h"
#include "cpu/int_format.h"
#include "cpu/matmul.h"
#include "cpu/random_weights.h"
#include "quant/dequantize.h"

namespace onecard::cpu {
namespace {

using gguf::GgmlType;

int64_t test_cols(GgmlType type) {
  if (is_float_type(type)) return 37;  // not a multiple of any vector width
  return gguf::traits(type).block_size == 32 ? 160 : 768;
}

struct Bounds {
  std::vector<double> magnitude;  // sum |w x| per (token, row)
  std::vector<double> quant;      // the activation-quantization bound per (token, row)
};

Bounds bounds(const Matrix& w, const std::vector<float>& x, int64_t nt) {
  std::vector<float> row(w.cols);
  const IntFormat* f = int_format(w.type);
  const int64_t group = f == nullptr ? 1 : act_block_elems(f->act);
  Bounds b{std::vector<double>(nt * w.rows), std::vector<double>(nt * w.rows, 0.0)};
  for (int64_t r = 0; r < w.rows; ++r) {
    EXPECT_TRUE(quant::dequantize_row(w.type, w.row(r), row.data(), w.cols).ok());
    for (int64_t t = 0; t < nt; ++t) {
      const float* xt = x.data() + t * w.cols;
      double mag = 0, q = 0;
      for (int64_t c0 = 0; c0 < w.cols; c0 += group) {
        double amax = 0;
        for (int64_t c = c0; c < c0 + group; ++c) amax = std::max(amax, std::abs(static_cast<double>(xt[c])));
        for (int64_t c = c0; c < c0 + group; ++c) {
          mag += std::abs(static_cast<double>(row[c]) * xt[c]);
          if (f != nullptr) q += std::abs(static_cast<double>(row[c])) * amax / 254.0 * (1.0 + 0x1p-10);
        }
      }
      b.magnitude[t * w.rows + r] = mag;
      b.quant[t * w.rows + r] = q;
    }
  }
  return b;
}

TEST(Matmul, MatchesReferenceForEveryFormatIsaAndThreadCount) {
  const int64_t rows = 37;  // not a multiple of 16, 8, or the thread counts
  std::vector<std::unique_ptr<ThreadPool>> pools;
  for (int n : {1, 2, 3}) pools.push_back(std::make_unique<ThreadPool>(n));
  for (GgmlType type : testing::all_matmul_types()) {
    const int64_t cols = test_cols(type);
    const std::vector<uint8_t> data = testing::random_weights(type, rows, cols, 3);
    const Matrix w = make_matrix(type, cols, rows, data.data());
    for (int64_t nt : {1, 3, 17, 64}) {
      const std::vector<float> x = testing::gaussian(nt * cols, 100 + nt);
      std::vector<float> ref(nt * rows);
      matmul_reference(w, x.data(), cols, nt, ref.data(), rows);
      const Bounds b = bounds(w, x, nt);
      std::vector<float> scalar(nt * rows);
      matmul_isa(w, x.data(), cols, nt, scalar.data(), rows, nullptr, Isa::Scalar);
      for (Isa isa : supported_isas()) {
        for (auto& pool : pools) {
          std::vector<float> y(nt * rows, NAN);
          matmul_isa(w, x.data(), cols, nt, y.data(), rows, pool.get(), isa);
          for (int64_t i = 0; i < nt * rows; ++i) {
            const double rounding = 2e-5 * b.magnitude[i] + 1e-30;
            ASSERT_NEAR(y[i], ref[i], b.quant[i] + rounding)
                << gguf::type_name(type) << " " << isa_name(isa) << " threads " << pool->size() << " tokens "
                << nt << " index " << i;
            ASSERT_NEAR(y[i], scalar[i], rounding)
                << gguf::type_name(type) << " " << isa_name(isa) << " vs scalar, threads " << pool->size()
                << " tokens " << nt << " index " << i;
          }
        }
      }
    }
  }
}

// Q8_K is not a weight format files use, so it has no integer path: its rows are dequantized to float.
TEST(Matmul, DequantizedFormatMatchesReference) {
  const int64_t rows = 19, cols = 512, nt = 5;
  const std::vector<float> values = testing::gaussian(rows * cols, 8);
  std::vector<uint8_t> data(act_row_bytes(ActFormat::Q8_K, cols) * rows);
  for (int64_t r = 0; r < rows; ++r) {
    quantize_act(ActFormat::Q8_K, values.data() + r * cols,
                 data.data() + r * act_row_bytes(ActFormat::Q8_K, cols), cols);
  }
  const Matrix w = make_matrix(GgmlType::Q8_K, cols, rows, data.data());
  const std::vector<float> x = testing::gaussian(nt * cols, 9);
  std::vector<float> ref(nt * rows), y(nt * rows);
  matmul_reference(w, x.data(), cols, nt, ref.data(), rows);
  ThreadPool pool(2);
  for (Isa isa : supported_isas()) {
    matmul_isa(w, x.data(), cols, nt, y.data(), rows, &pool, isa);
    for (int64_t i = 0; i < nt * rows; ++i)
      ASSERT_NEAR(y[i], ref[i], 1e-3f) << isa_name(isa) << " index " << i;
  }
}

TEST(Matmul, ActivationsWithAStride) {
  // X rows wider than the matrix, Y rows wider than the output: strides must be honoured.
  const int64_t rows = 21, cols = 256, nt = 19, ldx = cols + 7, ldy = rows + 5;
  const std::vector<uint8_t> data = testing::random_weights(GgmlType::Q4_K, rows, cols, 9);
  const Matrix w = make_matrix(GgmlType::Q4_K, cols, rows, data.data());
  const std::vector<float> x = testing::gaussian(nt * ldx, 10);
  ThreadPool pool(2);
  for (Isa isa : supported_isas()) {
    std::vector<float> y(nt * ldy, -7.0f), want(nt * ldy, -7.0f);
    matmul_isa(w, x.data(), ldx, nt, y.data(), ldy, &pool, isa);
    matmul_isa(w, x.data(), ldx, nt, want.data(), ldy, nullptr, Isa::Scalar);
    for (int64_t i = 0; i < nt * ldy; ++i) {
      // Rows beyond w.rows must stay untouched; computed ones agree to float rounding (|y| is about 10 here,
      // sum |w x| about 200).
      if (i % ldy >= rows) {
        ASSERT_EQ(y[i], -7.0f) << isa_name(isa) << " index " << i;
      } else {
        ASSERT_NEAR(y[i], want[i], 2e-3f) << isa_name(isa) << " index " << i;
      }
    }
  }
}

}  // namespace
}  // namespace onecard::cpu
