// SiLU(gate)·up and softmax in AVX-512: exp by range reduction to [-ln2/2, ln2/2], a degree-6 polynomial, and
// scalef for the power of two, which also saturates to 0 and infinity where std::exp would, without its slow
// path.
#include <limits>

#include "cpu/ops.h"
#include "cpu/x86.h"

namespace onecard::cpu {
namespace {

ONECARD_AVX512 __m512 exp_ps(__m512 x) {
  // Beyond +-100 the result is 0 or infinity either way; clamping keeps x - n ln2 finite.
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-100.0f)), _mm512_set1_ps(100.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // x - n ln2 in two steps (Cody-Waite): ln2's high part has few enough bits for n * hi to be exact.
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  // Taylor coefficients 1/k! up to k = 6: |error| < 2e-7 relative on |r| <= ln2 / 2.
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

}  // namespace

ONECARD_AVX512 void silu_mul_avx512(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const auto mask = static_cast<__mmask16>(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
    const __m512 g = _mm512_maskz_loadu_ps(mask, gate + i);
    const __m512 u = _mm512_maskz_loadu_ps(mask, up + i);
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g));
    const __m512 s = _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    _mm512_mask_storeu_ps(gate + i, mask, _mm512_mul_ps(s, u));
  }
}

ONECARD_AVX512 float max_of_avx512(const float* x, int64_t n) {
  __m512 mx = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < n; i += 16) {
    const auto mask = static_cast<__mmask16>(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
    mx = _mm512_mask_max_ps(mx, mask, mx, _mm512_maskz_loadu_ps(mask, x + i));
  }
  return _mm512_reduce_max_ps(mx);
}

ONECARD_AVX512 void softmax_avx512(float* x, int64_t n) {
  const float total = exp_sum_avx512(x, n, max_of_avx512(x, n));
  const __m512 inv = _mm512_set1_ps(1.0f / total);
  for (int64_t i = 0; i < n; i += 16) {
    const auto mask = static_cast<__mmask16>(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(x + i, mask, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + i), inv));
  }
}

ONECARD_AVX512 float exp_sum_avx512(float* x, int64_t n, float shift) {
  const __m512 s = _mm512_set1_ps(shift);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const auto mask = static_cast<__mmask16>(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, x + i), s));
    sum = _mm512_mask_add_ps(sum, mask, sum, e);
    _mm512_mask_storeu_ps(x + i, mask, e);
  }
  return _mm512_reduce_add_ps(sum);
}

}  // namespace onecard::cpu
