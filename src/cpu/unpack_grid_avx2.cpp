// AVX2 unpacking of the grid formats into the integer view (int_format.h), from their register decoding
// (grid_avx2.h): levels z +- grid, and the scales computed in the reference's order of float operations, so
// that the bytes equal the scalar unpack's.
#include "cpu/grid_avx2.h"

namespace onecard::cpu {
namespace {

ONECARD_AVX2 void store_group(UnpackedUnit& u, int g, __m256i levels) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(u.q + 32 * g), levels);
}

// z plus the signed grid values.
ONECARD_AVX2 __m256i signed_levels(grid_avx2::Group v, int zero) {
  return _mm256_add_epi8(_mm256_sign_epi8(v.grid, v.sign), _mm256_set1_epi8(static_cast<char>(zero)));
}

// Scales d (0.5 + s) f from 8 (or, in two calls, 16) small integers s.
ONECARD_AVX2 void scales_plus_half(float d, float f, __m256i s, float* out) {
  const __m256 db = _mm256_mul_ps(
      _mm256_mul_ps(_mm256_set1_ps(d), _mm256_add_ps(_mm256_set1_ps(0.5f), _mm256_cvtepi32_ps(s))),
      _mm256_set1_ps(f));
  _mm256_storeu_ps(out, db);
}

ONECARD_AVX2 void zero_offsets(UnpackedUnit& u, int subs) {
  for (int k = 0; k < subs; k += 8) _mm256_storeu_ps(u.m + k, _mm256_setzero_ps());
}

ONECARD_AVX2 void iq2_xxs(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const quant::BlockIQ2_XXS*>(p);
  const grid_avx2::Tables& t = grid_avx2::tables();
  alignas(32) int32_t s[8];
  for (int g = 0; g < 8; ++g) {
    uint32_t word;
    store_group(u, g, signed_levels(grid_avx2::iq2_xxs(b, g, t, word), 64));
    s[g] = static_cast<int32_t>(word >> 28);
  }
  scales_plus_half(_cvtsh_ss(b.d), 0.25f, _mm256_load_si256(reinterpret_cast<const __m256i*>(s)), u.s);
  zero_offsets(u, 8);
}

// The 16 nibble scales of IQ2_XS and IQ2_S: d (0.5 + s) / 4.
ONECARD_AVX2 void iq2_nibble_scales(float d, const uint8_t* scales, UnpackedUnit& u) {
  const __m128i sc = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(scales));
  const __m128i m4 = _mm_set1_epi8(0x0f);
  const __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(sc, m4), _mm_and_si128(_mm_srli_epi16(sc, 4), m4));
  scales_plus_half(d, 0.25f, _mm256_cvtepu8_epi32(nib), u.s);
  scales_plus_half(d, 0.25f, _mm256_cvtepu8_epi32(_mm_srli_si128(nib, 8)), u.s + 8);
  zero_offsets(u, 16);
}

ONECARD_AVX2 void iq2_xs(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const quant::BlockIQ2_XS*>(p);
  const grid_avx2::Tables& t = grid_avx2::tables();
  for (int g = 0; g < 8; ++g) store_group(u, g, signed_levels(grid_avx2::iq2_xs(b, g, t), 64));
  iq2_nibble_scales(_cvtsh_ss(b.d), b.scales, u);
}

ONECARD_AVX2 void iq2_s(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const quant::BlockIQ2_S*>(p);
  for (int g = 0; g < 8; ++g) store_group(u, g, signed_levels(grid_avx2::iq2_s(b, g), 64));
  iq2_nibble_scales(_cvtsh_ss(b.d), b.scales, u);
}

ONECARD_AVX2 void iq3_xxs(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const quant::BlockIQ3_XXS*>(p);
  const grid_avx2::Tables& t = grid_avx2::tables();
  alignas(32) int32_t s[8];
  for (int g = 0; g < 8; ++g) {
    uint32_t word;
    store_group(u, g, signed_levels(grid_avx2::iq3_xxs(b, g, t, word), 64));
    s[g] = static_cast<int32_t>(word >> 28);
  }
  scales_plus_half(_cvtsh_ss(b.d), 0.5f, _mm256_load_si256(reinterpret_cast<const __m256i*>(s)), u.s);
  zero_offsets(u, 8);
}

ONECARD_AVX2 void iq3_s(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const quant::BlockIQ3_S*>(p);
  for (int g = 0; g < 8; ++g) store_group(u, g, signed_levels(grid_avx2::iq3_s(b, g), 16));
  // Scale g: d (1 + 2s), s the nibble g % 2 of scales[g / 2].
  const __m256i bytes = _mm256_cvtepu8_epi32(
      _mm_shuffle_epi8(_mm_cvtsi32_si128(static_cast<int>(quant::load_u32(b.scales))),
                       _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, -1, -1, -1, -1, -1, -1, -1, -1)));
  const __m256i s = _mm256_and_si256(_mm256_srlv_epi32(bytes, _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4)),
                                     _mm256_set1_epi32(15));
  const __m256i odd = _mm256_add_epi32(_mm256_slli_epi32(s, 1), _mm256_set1_epi32(1));
  _mm256_storeu_ps(u.s, _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(b.d)), _mm256_cvtepi32_ps(odd)));
  zero_offsets(u, 8);
}

// Scales d (2s + 1) / 8 from 8 odd integers 2s + 1.
ONECARD_AVX2 void iq1_scales(float d, __m256i odd, float* out) {
  _mm256_storeu_ps(
      out, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(odd)), _mm256_set1_ps(0.125f)));
}

ONECARD_AVX2 void iq1_s(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const quant::BlockIQ1_S*>(p);
  const grid_avx2::Tables& t = grid_avx2::tables();
  for (int g = 0; g < 8; ++g) {
    const __m256i shift = _mm256_set1_epi8(b.qh[g] & 0x8000 ? -1 : 1);
    store_group(u, g, _mm256_add_epi8(grid_avx2::iq1_s(b, g, t), shift));
  }
  const __m256i qh = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qh)));
  const __m256i odd = _mm256_add_epi32(_mm256_and_si256(_mm256_srli_epi32(qh, 11), _mm256_set1_epi32(14)),
                                       _mm256_set1_epi32(1));
  iq1_scales(_cvtsh_ss(b.d), odd, u.s);
  zero_offsets(u, 8);
}

ONECARD_AVX2 void iq1_m(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const quant::BlockIQ1_M*>(p);
  const grid_avx2::Tables& t = grid_avx2::tables();
  for (int g = 0; g < 8; ++g) store_group(u, g, grid_avx2::iq1_m(b, g, t));
  const __m256i odd = grid_avx2::iq1_m_odd_scales(b);
  const float d = grid_avx2::iq1_m_scale(b);
  iq1_scales(d, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(odd)), u.s);
  iq1_scales(d, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(odd, 1)), u.s + 8);
  zero_offsets(u, 16);
}

}  // namespace

UnpackFn unpack_grid_avx2(gguf::GgmlType type) {
  switch (type) {
    case gguf::GgmlType::IQ1_S:
      return iq1_s;
    case gguf::GgmlType::IQ1_M:
      return iq1_m;
    case gguf::GgmlType::IQ2_XXS:
      return iq2_xxs;
    case gguf::GgmlType::IQ2_XS:
      return iq2_xs;
    case gguf::GgmlType::IQ2_S:
      return iq2_s;
    case gguf::GgmlType::IQ3_XXS:
      return iq3_xxs;
    case gguf::GgmlType::IQ3_S:
      return iq3_s;
    default:
      return nullptr;
  }
}

}  // namespace onecard::cpu
