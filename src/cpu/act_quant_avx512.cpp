// The AVX-512 activation quantizer: the operations of quantize_act_scalar, sixteen lanes at a time.
#include <cstring>

#include "base/half.h"
#include "cpu/act_quant.h"
#include "cpu/x86.h"
#include "quant/blocks.h"

namespace onecard::cpu {
namespace {

ONECARD_AVX512 float abs_max(const float* x, int vectors) {
  __m512 m = _mm512_setzero_ps();
  for (int i = 0; i < vectors; ++i) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + 16 * i)));
  return _mm512_reduce_max_ps(m);
}

// Sixteen levels round(x * iscale), clamped to [-127, 127], as int32 lanes (cvtps rounds to nearest even,
// like nearbyint in the default mode).
ONECARD_AVX512 __m512i levels(const float* x, __m512 iscale) {
  const __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x), iscale));
  return _mm512_max_epi32(_mm512_min_epi32(q, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
}

}  // namespace

ONECARD_AVX512 void quantize_act_avx512(ActFormat f, const float* x, void* dst, int64_t n) {
  if (f == ActFormat::Q8_0) {
    auto* y = static_cast<quant::BlockQ8_0*>(dst);
    uint8_t* scales = static_cast<uint8_t*>(dst) + act_q8_0_scales_at(n);
    uint8_t* sums = static_cast<uint8_t*>(dst) + act_q8_0_sums_at(n);
    for (int64_t b = 0; b < n / quant::kQK; ++b, x += quant::kQK) {
      y[b].d = fp32_to_fp16(abs_max(x, 2) / 127.0f);
      const float d = fp16_to_fp32(y[b].d);
      const __m512 iscale = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
      const __m512i q0 = levels(x, iscale), q1 = levels(x + 16, iscale);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs), _mm512_cvtepi32_epi8(q0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs + 16), _mm512_cvtepi32_epi8(q1));
      const int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
      std::memcpy(scales + 4 * b, &d, 4);
      std::memcpy(sums + 4 * b, &sum, 4);
    }
    return;
  }
  auto* y = static_cast<quant::BlockQ8_K*>(dst);
  for (int64_t b = 0; b < n / quant::kQK_K; ++b, x += quant::kQK_K) {
    const float d = abs_max(x, 16) / 127.0f;
    const __m512 iscale = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    y[b].d = d;
    for (int g = 0; g < 16; ++g) {
      const __m512i q = levels(x + 16 * g, iscale);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs + 16 * g), _mm512_cvtepi32_epi8(q));
      y[b].bsums[g] = static_cast<int16_t>(_mm512_reduce_add_epi32(q));
    }
  }
}

}  // namespace onecard::cpu
