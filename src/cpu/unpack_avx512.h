// AVX-512 versions of the integer view's unpacking (int_format.h) for the K formats without a dedicated dot
// product, IQ4_XS, and the grid formats IQ1_M, IQ2_XS and IQ3_XXS: the same levels, scales and offsets as
// each format's scalar unpack, bit for bit. The row dot products of the K formats and IQ4_XS and the
// interleaving for the batched kernel run on them.
#pragma once

#include "cpu/int_format.h"
#include "cpu/vec_dot.h"

namespace onecard::cpu {

// nullptr where there is none (call only on CPUs with AVX-512).
UnpackFn unpack_avx512(gguf::GgmlType type);

// Row dot products on the vector unpacking (nullptr for the grid formats, whose AVX2 dots are faster, and
// for other formats).
VecDotFn vec_dot_unpacked_avx512(gguf::GgmlType type);

}  // namespace onecard::cpu
