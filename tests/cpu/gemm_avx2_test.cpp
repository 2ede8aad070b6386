// The AVX2 batched kernel's int16 sums: vpmaddubsw saturates, so the kernel widens them as often as a
// format's largest level requires (avx2::max_level). That bound must hold for every level the format can
// encode: random block bytes (every bit pattern equally likely) are unpacked by the scalar reference and each
// level checked. Then the kernel on the largest activations there are (every level 127, or -127) must still
// equal the scalar row dot, which it would not if an int16 sum saturated. The AVX-VNNI kernel (the same
// layout, vpdpbusd) is held to the same checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/rng.h"
#include "cpu/gemm.h"
#include "cpu/gemm_check.h"
#include "cpu/isa.h"
#include "cpu/kernels.h"
#include "cpu/random_weights.h"
#include "cpu/x86/avx2/gemm.h"
#include "quant/dequantize.h"

namespace onecard::cpu {
namespace {

using gguf::GgmlType;

// The AVX2-family ISAs this CPU runs: AVX2, and AVX-VNNI where it has it.
std::vector<Isa> avx2_family() {
  std::vector<Isa> out;
  for (Isa isa : supported_isas())
    if (isa == Isa::Avx2 || isa == Isa::AvxVnni) out.push_back(isa);
  return out;
}

TEST(GemmAvx2, LevelsNeverExceedTheBoundTheKernelWidensFor) {
  Rng rng(5, "avx2-levels");
  for (GgmlType type : testing::all_matmul_types()) {
    const IntFormat* f = int_format(type);
    if (f == nullptr) continue;
    const int bound = avx2::max_level(*f);
    std::vector<uint8_t> block(f->unit_bytes);
    int highest = 0;
    for (int trial = 0; trial < 4000; ++trial) {
      for (uint8_t& b : block) b = static_cast<uint8_t>(rng.next());
      UnpackedUnit u;
      f->unpack(block.data(), u);
      for (int i = 0; i < f->unit; ++i) highest = std::max<int>(highest, u.q[i]);
    }
    EXPECT_LE(highest, bound) << gguf::type_name(type);
    // The bound is tight enough to matter: the format reaches at least half of it.
    EXPECT_GE(2 * highest, bound) << gguf::type_name(type);
  }
}

void expect_extreme_activations_match(const KernelTable& k) {
  for (GgmlType type : testing::all_matmul_types()) {
    const IntFormat* f = int_format(type);
    if (f == nullptr || !k.gemm[type]) continue;
    const int64_t rows = 19, cols = 2 * 256, nt = 5;
    const std::vector<uint8_t> data = testing::random_weights(type, rows, cols, 23);
    const Matrix w = make_matrix(type, cols, rows, data.data());
    for (float sign : {1.0f, -1.0f}) {
      // Equal activations quantize to +-127 everywhere; one token alternates signs per sub-block.
      std::vector<float> x(static_cast<size_t>(nt * cols), sign);
      for (int64_t c = 0; c < cols; ++c) x[c] = (c / f->sub) % 2 == 0 ? sign : -sign;
      const testing::QuantizedTokens q(*f, x, cols, nt);
      std::vector<float> y(static_cast<size_t>(nt * rows));
      k.gemm[type].run(*f, w, 0, rows, q.tokens(), y.data(), rows, nullptr, 0);
      const VecDotFn dot = kernels(Isa::Scalar).row_dot[type];
      std::vector<float> row(static_cast<size_t>(cols));
      for (int64_t r = 0; r < rows; ++r) {
        ASSERT_TRUE(quant::dequantize_row(type, w.row(r), row.data(), cols).ok());
        double magnitude = 0;  // sum |w x| with |x| = 1
        for (float v : row) magnitude += std::abs(v);
        for (int64_t t = 0; t < nt; ++t) {
          const float want = dot(*f, cols, w.row(r), q.act_ptr[t]);
          ASSERT_NEAR(y[t * rows + r], want, 2e-5 * magnitude + 1e-30)
              << gguf::type_name(type) << " sign " << sign << " token " << t << " row " << r;
        }
      }
    }
  }
}

TEST(GemmAvx2, ExtremeActivationsMatchTheScalarDot) {
  if (avx2_family().empty()) GTEST_SKIP() << "needs AVX2";
  for (Isa isa : avx2_family()) {
    SCOPED_TRACE(isa_name(isa));
    expect_extreme_activations_match(kernels(isa));
  }
}

// gemm_int called directly: a row range that starts off a group boundary and ends in a partial group, token
// counts that leave every tail of a pass (1, 2, 3 ...) and several passes, an output stride wider than the
// rows. Each entry must equal the scalar row dot to float rounding, and entries outside the range must stay
// untouched.
TEST(GemmAvx2, RowRangesAndTokenCountsMatchTheScalarDot) {
  if (avx2_family().empty()) GTEST_SKIP() << "needs AVX2";
  const int64_t rows = 45, r0 = 3, nr = 37;  // blocks of 16, 16 and 5 rows starting at row 3
  for (Isa isa : avx2_family()) {
    const KernelTable& k = kernels(isa);
    SCOPED_TRACE(isa_name(isa));
    for (GgmlType type : testing::all_matmul_types()) {
      const IntFormat* f = int_format(type);
      if (f == nullptr || !k.gemm[type]) continue;
      const int64_t cols = f->unit == 32 ? 11 * 32 : 3 * 256;
      for (int64_t nt : {1, 2, 3, 5, 6, 17})
        testing::expect_gemm_matches_scalar_dot(k.gemm[type].run, type, rows, cols, r0, nr, nt, 13);
    }
  }
}

}  // namespace
}  // namespace onecard::cpu
