// AVX-512 versions of the integer view's unpacking (int_format.h) for the K formats without a dedicated dot
// product, and IQ4_XS: the same levels, scales and offsets as each format's scalar unpack, bit for bit. The
// row dot products of these formats and their interleaving for the batched kernel run on them.
#pragma once

#include "cpu/int_format.h"
#include "cpu/vec_dot.h"

namespace onecard::cpu {

// nullptr where there is none (call only on CPUs with AVX-512).
UnpackFn unpack_avx512(gguf::GgmlType type);

// Row dot products of those formats on their vector unpacking (nullptr for other formats).
VecDotFn vec_dot_unpacked_avx512(gguf::GgmlType type);

}  // namespace onecard::cpu
