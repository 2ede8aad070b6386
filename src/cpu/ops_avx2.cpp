// Softmax in AVX2: exp by range reduction to [-ln2/2, ln2/2], a degree-6 polynomial, and the power of two put
// into the exponent bits. Inputs are at most 0 (the maximum is subtracted first) and clamped at -87, where
// the result, about 1e-38, is 0 next to the sum.
#include <algorithm>
#include <limits>

#include "cpu/ops.h"
#include "cpu/x86.h"

namespace onecard::cpu {
namespace {

ONECARD_AVX2 __m256 exp_nonpositive(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // x - n ln2 in two steps (Cody-Waite): ln2's high part has few enough bits for n * hi to be exact.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

}  // namespace

ONECARD_AVX2 float max_of_avx2(const float* x, int64_t n) {
  const int64_t whole = n / 8 * 8;
  __m256 mx = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < whole; i += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(x + i));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, mx);
  float top = lanes[0];
  for (float v : lanes) top = std::max(top, v);
  for (int64_t i = whole; i < n; ++i) top = std::max(top, x[i]);
  return top;
}

ONECARD_AVX2 void softmax_avx2(float* x, int64_t n) {
  const int64_t whole = n / 8 * 8;
  const float total = exp_sum_avx2(x, n, max_of_avx2(x, n));
  const __m256 inv = _mm256_set1_ps(1.0f / total);
  for (int64_t i = 0; i < whole; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
  for (int64_t i = whole; i < n; ++i) x[i] *= 1.0f / total;
}

ONECARD_AVX2 float exp_sum_avx2(float* x, int64_t n, float shift) {
  const int64_t whole = n / 8 * 8;
  const __m256 s = _mm256_set1_ps(shift);
  __m256 sum = _mm256_setzero_ps();
  for (int64_t i = 0; i < whole; i += 8) {
    const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
    sum = _mm256_add_ps(sum, e);
    _mm256_storeu_ps(x + i, e);
  }
  float total = x86::hsum(sum);
  for (int64_t i = whole; i < n; ++i) {
    x[i] = _mm256_cvtss_f32(exp_nonpositive(_mm256_set1_ps(x[i] - shift)));
    total += x[i];
  }
  return total;
}

}  // namespace onecard::cpu
