// Float32 vector primitives.
#pragma once

#include <cstdint>

namespace onecard::cpu {

// y += a * x
void axpy_f32(float a, const float* x, float* y, int64_t n);

}  // namespace onecard::cpu
