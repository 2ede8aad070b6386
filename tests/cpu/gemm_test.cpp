// gemm_int, the batched AVX-512 kernel, called directly: row ranges that start off a group boundary and span
// several 32-row blocks with a partial last group, every token count up to two passes and a tail, an output
// stride wider than the rows. Each entry must equal the scalar row dot product on the same quantized
// activations to float rounding (2e-5 of sum |w x|), and entries outside the range must stay untouched.
#include <gtest/gtest.h>

#include "cpu/gemm_check.h"
#include "cpu/isa.h"
#include "cpu/kernels.h"
#include "cpu/random_weights.h"
#include "cpu/x86/avx512/gemm.h"

namespace onecard::cpu {
namespace {

using gguf::GgmlType;

TEST(Gemm, RowRangesAndTokenCountsMatchTheScalarDot) {
  if (active_isa() != Isa::Avx512Vnni) GTEST_SKIP() << "the batched kernel needs AVX-512 VNNI";
  const int64_t rows = 90, r0 = 5, nr = 70;  // blocks of 32, 32 and 6 rows starting at row 5
  for (GgmlType type : testing::all_matmul_types()) {
    if (int_format(type) == nullptr) continue;
    // Two spans of the kernel's 1024 interleaved columns, the second partial: 37 or 5 units.
    const int64_t cols = gguf::traits(type).block_size == 32 ? 1184 : 1280;
    for (int64_t nt : {1, 5, 6, 7, 13})
      testing::expect_gemm_matches_scalar_dot(gemm_int, type, rows, cols, r0, nr, nt, 11);
  }
}

}  // namespace
}  // namespace onecard::cpu
