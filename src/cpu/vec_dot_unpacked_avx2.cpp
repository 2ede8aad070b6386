// AVX2 row dots of the 256-element formats without a dedicated AVX2 kernel (the switch at the end lists
// them): each block unpacked into the integer view by its format's scalar unpack, then 32 levels at a time
// multiplied with the Q8_K activations by vpmaddubsw. The zero point is removed exactly in int32 (D - z A per
// lane), so the only float steps are one scale and one offset per sub-block, as in the scalar reference.
// vpmaddubsw's int16 pair sums hold unsigned levels below 129, which the IQ1, IQ2 and IQ3 grids' are (biased
// by 16 or 64); the formats biased by 128 have dedicated dots with the sign trick (vec_dot_avx2.cpp).
#include "cpu/vec_dot.h"
#include "cpu/x86.h"
#include "quant/blocks.h"

namespace onecard::cpu {
namespace {

using quant::BlockQ8_K;

ONECARD_AVX2 __m256i load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// kSub: elements per scale (16 or 32).
template <int kSub>
ONECARD_AVX2 float dot_unpacked(const IntFormat& f, int64_t n, const void* w, const void* a) {
  static_assert(kSub == 16 || kSub == 32);
  const auto* x = static_cast<const uint8_t*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m256i ones16 = _mm256_set1_epi16(1);
  alignas(32) UnpackedUnit u;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    f.unpack(x + i * f.unit_bytes, u);
    __m256 block = _mm256_setzero_ps();
    for (int c = 0; c < quant::kQK_K / 32; ++c) {
      const __m256i q = _mm256_load_si256(reinterpret_cast<const __m256i*>(u.q + 32 * c));
      const __m256i av = load256(y[i].qs + 32 * c);
      __m256i d = _mm256_madd_epi16(_mm256_maddubs_epi16(q, av), ones16);
      if (f.zero != 0) {
        const __m256i sa = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), av), ones16);
        d = _mm256_sub_epi32(d, _mm256_mullo_epi32(_mm256_set1_epi32(f.zero), sa));
      }
      // Lanes 0-3 cover elements 0-15 of the 32, lanes 4-7 elements 16-31: one sub-block or two.
      const __m256 s = kSub == 32 ? _mm256_set1_ps(u.s[c])
                                  : _mm256_setr_m128(_mm_set1_ps(u.s[2 * c]), _mm_set1_ps(u.s[2 * c + 1]));
      block = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), s, block);
    }
    // The offsets of the affine formats times the activation sums of their sub-blocks (sums per 16).
    float offsets = 0;
    if (f.affine) {
      for (int b = 0; b < quant::kQK_K / kSub; ++b) {
        const int sum = kSub == 16 ? y[i].bsums[b] : y[i].bsums[2 * b] + y[i].bsums[2 * b + 1];
        offsets += u.m[b] * static_cast<float>(sum);
      }
    }
    const __m256 total = _mm256_add_ps(block, _mm256_setr_ps(offsets, 0, 0, 0, 0, 0, 0, 0));
    acc = _mm256_fmadd_ps(total, _mm256_set1_ps(y[i].d), acc);
  }
  return x86::hsum(acc);
}

}  // namespace

VecDotFn vec_dot_unpacked_avx2(gguf::GgmlType type) {
  switch (type) {
    case gguf::GgmlType::IQ2_XXS:
    case gguf::GgmlType::IQ3_XXS:
    case gguf::GgmlType::IQ3_S:
    case gguf::GgmlType::IQ1_S:
      return dot_unpacked<32>;
    case gguf::GgmlType::IQ2_XS:
    case gguf::GgmlType::IQ2_S:
    case gguf::GgmlType::IQ1_M:
      return dot_unpacked<16>;
    default:
      return nullptr;
  }
}

}  // namespace onecard::cpu
