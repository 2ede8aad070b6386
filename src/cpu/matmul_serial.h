// Single-threaded matrix products, for work that is already split across threads (per attention head, per
// expert): the kernels of matmul() on this thread only.
#pragma once

#include <cstdint>

#include "cpu/matrix.h"

namespace onecard::cpu {

// Y[t][r] = sum_c W[r][c] * X[t][c]: X is [n][w.cols] (stride ldx), Y is [n][w.rows] (stride ldy).
void matmul_serial(const Matrix& w, const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy);

// Y[t][c] = sum_r X[t][r] * W[r][c]: the product with W transposed. X is [n][w.rows], Y is [n][w.cols].
void matmul_transposed_serial(const Matrix& w, const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy);

}  // namespace onecard::cpu
