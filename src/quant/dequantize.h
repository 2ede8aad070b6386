// Scalar reference dequantization of every GGUF block format onecard reads: the definition of what a block
// means, against which the SIMD and GPU kernels are tested. Not tuned for speed.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "gguf/types.h"
#include "quant/blocks.h"

namespace onecard::quant {

// Per-type row functions: n is the number of elements, a multiple of the type's block size (unchecked here;
// dequantize_row checks it).
void dequantize_f32(const float* x, float* y, int64_t n);
void dequantize_f16(const uint16_t* x, float* y, int64_t n);
void dequantize_bf16(const uint16_t* x, float* y, int64_t n);
void dequantize_q4_0(const BlockQ4_0* x, float* y, int64_t n);
void dequantize_q4_1(const BlockQ4_1* x, float* y, int64_t n);
void dequantize_q5_0(const BlockQ5_0* x, float* y, int64_t n);
void dequantize_q5_1(const BlockQ5_1* x, float* y, int64_t n);
void dequantize_q8_0(const BlockQ8_0* x, float* y, int64_t n);
void dequantize_q8_1(const BlockQ8_1* x, float* y, int64_t n);
void dequantize_q2_k(const BlockQ2_K* x, float* y, int64_t n);
void dequantize_q3_k(const BlockQ3_K* x, float* y, int64_t n);
void dequantize_q4_k(const BlockQ4_K* x, float* y, int64_t n);
void dequantize_q5_k(const BlockQ5_K* x, float* y, int64_t n);
void dequantize_q6_k(const BlockQ6_K* x, float* y, int64_t n);
void dequantize_q8_k(const BlockQ8_K* x, float* y, int64_t n);
void dequantize_iq2_xxs(const BlockIQ2_XXS* x, float* y, int64_t n);
void dequantize_iq2_xs(const BlockIQ2_XS* x, float* y, int64_t n);
void dequantize_iq2_s(const BlockIQ2_S* x, float* y, int64_t n);
void dequantize_iq3_xxs(const BlockIQ3_XXS* x, float* y, int64_t n);
void dequantize_iq3_s(const BlockIQ3_S* x, float* y, int64_t n);
void dequantize_iq1_s(const BlockIQ1_S* x, float* y, int64_t n);
void dequantize_iq1_m(const BlockIQ1_M* x, float* y, int64_t n);
void dequantize_iq4_nl(const BlockIQ4_NL* x, float* y, int64_t n);
void dequantize_iq4_xs(const BlockIQ4_XS* x, float* y, int64_t n);

// A type-erased row function, for callers that pick the format at run time once and call it per row.
using DequantizeFn = void (*)(const void* src, float* dst, int64_t n);
// nullptr for a type without a dequantizer (the integer types, TQ*, MXFP4).
DequantizeFn dequantize_fn(gguf::GgmlType type);
inline bool can_dequantize(gguf::GgmlType type) {
  return dequantize_fn(type) != nullptr;
}

// Dequantizes n elements (n / block_size blocks at src) into dst. Fails, naming the type and n, for a type
// without a dequantizer or an n that is negative or not a multiple of the block size.
Status dequantize_row(gguf::GgmlType type, const void* src, float* dst, int64_t n);

// The same check, for callers that use the per-type functions.
Status check_row_length(gguf::GgmlType type, int64_t n);

}  // namespace onecard::quant
