// y = W·x for a batch of tokens: the operation that dominates every forward pass.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "base/thread_pool.h"
#include "cpu/isa.h"
#include "cpu/matrix.h"

namespace onecard::cpu {

// Y[t][r] = sum_c W[r][c] * X[t][c] for t < n_tokens, r < w.rows. X is [n_tokens][w.cols] float32 with row
// stride ldx, Y is [n_tokens][w.rows] with row stride ldy. Rows are split across the pool.
//
// Paths: F32/F16/BF16 multiply float activations in fp32. Every quantized weight format (Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, IQ4_NL, Q2_K .. Q6_K, IQ1_S .. IQ4_XS) quantizes the activations once per call to Q8_0 or Q8_K
// and takes integer dot products; anything else (Q8_K as a weight) is dequantized row by row to float.
void matmul(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
            ThreadPool& pool);

// The same with an explicit ISA (at most active_isa()) and an optional pool (nullptr: this thread only).
void matmul_isa(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
                ThreadPool* pool, Isa isa);

// The definition the fast kernels are tested against: each row dequantized to float32 by the scalar reference
// of its format, dot products accumulated in double.
void matmul_reference(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy);

// Fails, naming the format, for weights that cannot be multiplied (no dequantizer, e.g. I32 or TQ1_0).
Status check_matmul_type(gguf::GgmlType type);

}  // namespace onecard::cpu
