#include "cpu/ops.h"

#include <algorithm>
#include <cmath>

#include "backend/backend.h"
#include "cpu/kernels.h"

namespace onecard::cpu {

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const auto scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

void softmax(float* x, int64_t n) {
  best_kernels().softmax(x, n);
}

void softmax_scalar(float* x, int64_t n) {
  const float inv = 1.0f / exp_sum_scalar(x, n, max_of_scalar(x, n));
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

float max_of(const float* x, int64_t n) {
  return best_kernels().max_of(x, n);
}

float max_of_scalar(const float* x, int64_t n) {
  return *std::max_element(x, x + n);
}

float exp_sum(float* x, int64_t n, float shift) {
  return best_kernels().exp_sum(x, n, shift);
}

float exp_sum_scalar(float* x, int64_t n, float shift) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return static_cast<float>(sum);
}

void silu_mul_scalar(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void silu_mul(float* gate, const float* up, int64_t n) {
  // The CPU's best table, not the one of a kernel ISA passed down, so every path computes the same values.
  best_kernels().silu_mul(gate, up, n);
}

Rope::Rope(int dims, float base, float factor, int original_context, float beta_fast, float beta_slow)
    : freqs_(backend::rope_frequencies({dims, base, factor, original_context, beta_fast, beta_slow})) {}

void Rope::apply(float* x, int n_heads, int64_t stride, int64_t pos) const {
  const int half = static_cast<int>(freqs_.size());
  for (int i = 0; i < half; ++i) {
    // The reference forms the angle in float32 (position times frequency) before taking cos and sin.
    const float angle = static_cast<float>(pos) * freqs_[i];
    const float c = std::cos(angle), s = std::sin(angle);
    for (int h = 0; h < n_heads; ++h) {
      float* p = x + h * stride + 2 * i;
      const float a = p[0], b = p[1];
      p[0] = a * c - b * s;
      p[1] = a * s + b * c;
    }
  }
}

}  // namespace onecard::cpu
