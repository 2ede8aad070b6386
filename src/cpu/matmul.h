// y = W·x for a batch of tokens: the operation that dominates every forward pass.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "base/thread_pool.h"
#include "cpu/matrix.h"

namespace onecard::cpu {

// Y[t][r] = sum_c W[r][c] * X[t][c] for t < n_tokens, r < w.rows. X is [n_tokens][w.cols] float32 with row
// stride ldx, Y is [n_tokens][w.rows] with row stride ldy. Rows are split across the pool.
void matmul(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
            ThreadPool& pool);

// The definition the fast kernels are tested against: each row dequantized to float32 by the scalar reference
// of its format, dot products accumulated in double.
void matmul_reference(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy);

// Fails, naming the format, for weights that cannot be multiplied (no dequantizer, e.g. I32 or TQ1_0).
Status check_matmul_type(gguf::GgmlType type);

}  // namespace onecard::cpu
