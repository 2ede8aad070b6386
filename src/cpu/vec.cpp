#include "cpu/vec.h"

#include "base/half.h"

namespace onecard::cpu {
namespace {

// Sixteen independent partial sums let the compiler keep several vector accumulators in flight.
template <class Load>
float dot_with(const float* a, int64_t n, Load load) {
  float s[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) s[j] += a[i + j] * load(i + j);
  }
  float tail = 0;
  for (; i < n; ++i) tail += a[i] * load(i);
  for (int j = 8; j > 0; j /= 2) {
    for (int k = 0; k < j; ++k) s[k] += s[k + j];
  }
  return s[0] + tail;
}

}  // namespace

float dot_f32(const float* a, const float* b, int64_t n) {
  return dot_with(a, n, [b](int64_t i) { return b[i]; });
}

float dot_f32_bf16(const float* a, const uint16_t* b, int64_t n) {
  return dot_with(a, n, [b](int64_t i) { return bf16_to_fp32(b[i]); });
}

void axpy_f32(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void axpy_bf16(float a, const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * bf16_to_fp32(x[i]);
}

}  // namespace onecard::cpu
