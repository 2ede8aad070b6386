// Activation quantization for the integer path, once per matmul: max-abs scaling, round to nearest even,
// levels in [-127, 127]. The AVX-512 and portable versions produce identical bytes (same operations in the
// same order), and quantize_act takes the one of the CPU's best table (best_kernels()), never the one of
// the kernel ISA, so every kernel path multiplies the very same activations.
#pragma once

#include <cstdint>

#include "cpu/int_format.h"

namespace onecard::cpu {

void quantize_act_scalar(ActFormat f, const float* x, void* dst, int64_t n);
void quantize_act_avx512(ActFormat f, const float* x, void* dst, int64_t n);

}  // namespace onecard::cpu
