// Dot products of one weight row in an integer-path format with one row of quantized activations (the
// activation format int_format() names). The scalar version is the reference: integer sums per sub-block,
// one float step per sub-block; every SIMD version must equal it up to float rounding.
#pragma once

#include <cstdint>

#include "cpu/int_format.h"

namespace onecard::cpu {

using VecDotFn = float (*)(const IntFormat& f, int64_t n, const void* w, const void* a);

float vec_dot_scalar(const IntFormat& f, int64_t n, const void* w, const void* a);

// Per-ISA lookups, which fill the kernel tables (kernels.h; nullptr: no kernel for that format).
VecDotFn vec_dot_avx2(gguf::GgmlType type);
VecDotFn vec_dot_avx512(gguf::GgmlType type);
// The AVX2 table's part for the 32-element formats.
VecDotFn vec_dot_legacy_avx2(gguf::GgmlType type);
// The AVX-512 table's parts for the 32-element formats.
VecDotFn vec_dot_legacy_avx512(gguf::GgmlType type);

}  // namespace onecard::cpu
