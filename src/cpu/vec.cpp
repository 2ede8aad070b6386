#include "cpu/vec.h"

namespace onecard::cpu {

void axpy_f32(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace onecard::cpu
