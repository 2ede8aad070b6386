// Rows of F32, F16 or BF16 weights times float32 activations, accumulated in fp32 (F16 and BF16 are widened
// exactly), so float models keep the reference's precision. One weight row is multiplied with up to
// kFloatTokens activation rows per pass, so batches read each weight once per group of tokens.
#pragma once

#include <cstdint>

#include "gguf/types.h"

namespace onecard::cpu {

inline constexpr int kFloatTokens = 4;

// out[t] = sum_c w[c] * x[t * ldx + c] for t < nt (nt <= kFloatTokens), c < n.
using FloatDotFn = void (*)(const void* w, const float* x, int64_t ldx, int nt, int64_t n, float* out);

bool is_float_type(gguf::GgmlType type);  // F32, F16, BF16

// Per-ISA lookups, which fill the kernel tables (kernels.h; nullptr for other types).
FloatDotFn float_dot_scalar(gguf::GgmlType type);
FloatDotFn float_dot_avx2(gguf::GgmlType type);
FloatDotFn float_dot_avx512(gguf::GgmlType type);

}  // namespace onecard::cpu
