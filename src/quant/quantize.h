// Quantization from float32 into the block formats onecard writes: exact rounding for F16/BF16, and for the
// integer formats a search for the scales (and mins) that minimize the squared error, weighted per column
// by an optional importance vector. A plain max-abs mode, without search, serves activations on the hot path
// and is the baseline the search has to beat.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "gguf/types.h"
#include "quant/blocks.h"

namespace onecard::quant {

struct QuantizeOptions {
  // n non-negative weights, one per element of the row (for a matrix: per input column, the same for every
  // row); the search minimizes sum(importance[i] * m[i] * err[i]^2), where m[i] = sqrt(sigma2 + x[i]^2)
  // weighs the value's own magnitude as llama.cpp does (m = 1 for Q6_K; sigma2 per type in quantize.cpp).
  // nullptr weighs every element the same.
  const float* importance = nullptr;
  // false: plain max-abs rounding (the scale maps the largest magnitude to the extreme level, and the scales
  // of the K formats are rounded the same way); importance is then ignored.
  bool search = true;
};

// Per-type row functions: n is a multiple of the block size (unchecked here; quantize_row checks it).
void quantize_f32(const float* x, float* y, int64_t n);
void quantize_f16(const float* x, uint16_t* y, int64_t n);
void quantize_bf16(const float* x, uint16_t* y, int64_t n);
void quantize_q4_0(const float* x, BlockQ4_0* y, int64_t n, const QuantizeOptions& opt = {});
void quantize_q8_0(const float* x, BlockQ8_0* y, int64_t n, const QuantizeOptions& opt = {});
void quantize_q2_k(const float* x, BlockQ2_K* y, int64_t n, const QuantizeOptions& opt = {});
void quantize_q3_k(const float* x, BlockQ3_K* y, int64_t n, const QuantizeOptions& opt = {});
void quantize_q4_k(const float* x, BlockQ4_K* y, int64_t n, const QuantizeOptions& opt = {});
void quantize_q5_k(const float* x, BlockQ5_K* y, int64_t n, const QuantizeOptions& opt = {});
void quantize_q6_k(const float* x, BlockQ6_K* y, int64_t n, const QuantizeOptions& opt = {});
// The non-linear 4-bit formats: levels from kIq4nlValues, one fp16 scale per 32 (IQ4_NL) or 6-bit scales per
// 32 under one fp16 scale per 256 (IQ4_XS).
void quantize_iq4_nl(const float* x, BlockIQ4_NL* y, int64_t n, const QuantizeOptions& opt = {});
void quantize_iq4_xs(const float* x, BlockIQ4_XS* y, int64_t n, const QuantizeOptions& opt = {});
// Activation formats: always max-abs, quants in [-127, 127] (never -128, which sign tricks in int8 dot
// products cannot negate).
void quantize_q8_1(const float* x, BlockQ8_1* y, int64_t n);
void quantize_q8_k(const float* x, BlockQ8_K* y, int64_t n);

// F32, F16, BF16, Q4_0, Q8_0, Q8_1, Q2_K .. Q6_K, Q8_K, IQ4_NL, IQ4_XS.
bool can_quantize(gguf::GgmlType type);

// Quantizes n floats into n / block_size blocks at dst (row_bytes(type, n) bytes). Fails, naming the type and
// n, for a type without a quantizer or an n that is negative or not a multiple of the block size.
Status quantize_row(gguf::GgmlType type, const float* src, void* dst, int64_t n,
                    const float* importance = nullptr);
Status quantize_row(gguf::GgmlType type, const float* src, void* dst, int64_t n, const QuantizeOptions& opt);

// nrows rows of n_per_row floats, each quantized on its own; opt.importance has n_per_row entries.
Status quantize_rows(gguf::GgmlType type, const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const QuantizeOptions& opt = {});

}  // namespace onecard::quant
