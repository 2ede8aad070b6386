// What the batched-kernel tests share: tokens quantized as the kernels take them, and a check of a GemmFn
// over a row range against the scalar row dot.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu/gemm.h"
#include "cpu/int_format.h"
#include "cpu/kernels.h"

namespace onecard::cpu::testing {

// nt rows of cols activations quantized for f, with the per-token sums the batched kernels read.
struct QuantizedTokens {
  std::vector<uint8_t> acts, sides;
  std::vector<const uint8_t*> act_ptr, side_ptr;

  QuantizedTokens(const IntFormat& f, const std::vector<float>& x, int64_t cols, int64_t nt);
  GemmTokens tokens() const {
    return GemmTokens{act_ptr.data(), side_ptr.data(), static_cast<int64_t>(act_ptr.size())};
  }
};

// gemm over rows [r0, r0 + nr) of random weights of `type` (rows x cols) times nt Gaussian tokens, into an
// output stride wider than the rows: each entry must equal the scalar row dot on the same quantized
// activations to float rounding (2e-5 of sum |w x|), and the entries past the range must stay untouched.
void expect_gemm_matches_scalar_dot(GemmFn gemm, gguf::GgmlType type, int64_t rows, int64_t cols, int64_t r0,
                                    int64_t nr, int64_t nt, uint64_t seed);

}  // namespace onecard::cpu::testing
