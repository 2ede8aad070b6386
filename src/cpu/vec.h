// Float32 vector primitives, including the bfloat16 forms that read a bf16 KV cache without converting it.
#pragma once

#include <cstdint>

namespace onecard::cpu {

float dot_f32(const float* a, const float* b, int64_t n);
float dot_f32_bf16(const float* a, const uint16_t* b, int64_t n);
// y += a * x
void axpy_f32(float a, const float* x, float* y, int64_t n);
void axpy_bf16(float a, const uint16_t* x, float* y, int64_t n);

}  // namespace onecard::cpu
