#include "cpu/unpack_avx512.h"

#include "cpu/x86.h"
#include "quant/blocks.h"
#include "quant/iq_tables.h"

namespace onecard::cpu {
namespace {

using quant::BlockIQ4_XS;
using quant::BlockQ2_K;
using quant::BlockQ3_K;
using quant::BlockQ5_K;

// 32 bytes at p in both halves of a register.
ONECARD_AVX512 __m512i twice(const uint8_t* p) {
  return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// Per 16-bit lane: shifted right by a in the low half of the register and by b in the high half.
ONECARD_AVX512 __m512i shift_halves(__m512i v, int a, int b) {
  const __m512i counts = _mm512_inserti64x4(_mm512_set1_epi16(static_cast<int16_t>(a)),
                                            _mm256_set1_epi16(static_cast<int16_t>(b)), 1);
  return _mm512_srlv_epi16(v, counts);
}

// Elements 64c .. 64c + 63 of the 2-bit field Q2_K and Q3_K share: element e lies in qs[32 (e / 128) + e %
// 32] at bit 2 ((e % 128) / 32).
ONECARD_AVX512 __m512i two_bits(const uint8_t* qs, int c) {
  const int shift = 2 * (2 * (c % 2));
  return _mm512_and_si512(shift_halves(twice(qs + 32 * (c / 2)), shift, shift + 2), _mm512_set1_epi8(3));
}

ONECARD_AVX512 void store_levels(UnpackedUnit& u, int c, __m512i v) {
  _mm512_storeu_si512(u.q + 64 * c, v);
}

ONECARD_AVX512 void q2_k(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockQ2_K*>(p);
  for (int c = 0; c < 4; ++c) store_levels(u, c, two_bits(b.qs, c));
  const __m512i sc = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
  const __m512 d = _mm512_set1_ps(_cvtsh_ss(b.d)), neg_dmin = _mm512_set1_ps(-_cvtsh_ss(b.dmin));
  _mm512_storeu_ps(u.s, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_and_si512(sc, _mm512_set1_epi32(15)))));
  _mm512_storeu_ps(u.m, _mm512_mul_ps(neg_dmin, _mm512_cvtepi32_ps(_mm512_srli_epi32(sc, 4))));
}

ONECARD_AVX512 void q3_k(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockQ3_K*>(p);
  const __m512i one = _mm512_set1_epi8(1);
  for (int c = 0; c < 4; ++c) {
    // The third bit of element e: hmask[e % 32], bit e / 32.
    const __m512i h = _mm512_and_si512(shift_halves(twice(b.hmask), 2 * c, 2 * c + 1), one);
    store_levels(u, c, _mm512_or_si512(two_bits(b.qs, c), _mm512_slli_epi16(h, 2)));
  }
  // The 12 scale bytes, read from 4 bytes earlier so that the load stays inside the block.
  const __m128i raw = _mm_srli_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales - 4)), 4);
  // Scale k: low 4 bits from byte k % 8 (k >= 8: its high nibble), high 2 bits from byte 8 + k % 4, at bit
  // 2 (k / 4).
  const __m512i low = _mm512_cvtepu8_epi32(
      _mm_shuffle_epi8(raw, _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7)));
  const __m512i high = _mm512_cvtepu8_epi32(
      _mm_shuffle_epi8(raw, _mm_setr_epi8(8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11)));
  const __m512i low4 = _mm512_and_si512(
      _mm512_srlv_epi32(low, _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4)),
      _mm512_set1_epi32(15));
  const __m512i high2 = _mm512_and_si512(
      _mm512_srlv_epi32(high, _mm512_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6)),
      _mm512_set1_epi32(3));
  const __m512i sc =
      _mm512_sub_epi32(_mm512_or_si512(low4, _mm512_slli_epi32(high2, 4)), _mm512_set1_epi32(32));
  _mm512_storeu_ps(u.s, _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(b.d)), _mm512_cvtepi32_ps(sc)));
  _mm512_storeu_ps(u.m, _mm512_setzero_ps());
}

ONECARD_AVX512 void q5_k(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockQ5_K*>(p);
  const __m512i m4 = _mm512_set1_epi8(0x0f), one = _mm512_set1_epi8(1);
  for (int c = 0; c < 4; ++c) {
    // Sub-blocks 2c (low nibbles) and 2c + 1 (high nibbles); the fifth bit of element 32k + l is qh[l], bit
    // k.
    const __m512i q = twice(b.qs + 32 * c);
    const __m512i low = _mm512_and_si512(_mm512_mask_srli_epi16(q, 0xffff0000u, q, 4), m4);
    const __m512i h = _mm512_and_si512(shift_halves(twice(b.qh), 2 * c, 2 * c + 1), one);
    store_levels(u, c, _mm512_or_si512(low, _mm512_slli_epi16(h, 4)));
  }
  // Scales times d, then mins times -dmin.
  const __m512 scm = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(x86::k_scales_mins_avx512(b.scales)));
  const __m512 f = _mm512_insertf32x8(_mm512_set1_ps(_cvtsh_ss(b.d)), _mm256_set1_ps(-_cvtsh_ss(b.dmin)), 1);
  const __m512 sm = _mm512_mul_ps(scm, f);
  _mm256_storeu_ps(u.s, _mm512_castps512_ps256(sm));
  _mm256_storeu_ps(u.m, _mm512_extractf32x8_ps(sm, 1));
}

ONECARD_AVX512 void iq4_xs(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockIQ4_XS*>(p);
  // The non-linear levels plus 128, looked up by nibble in every 128-bit lane.
  alignas(16) uint8_t table[16];
  for (int i = 0; i < 16; ++i) table[i] = static_cast<uint8_t>(quant::kIq4nlValues[i] + 128);
  const __m512i lut = _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(table)));
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  for (int c = 0; c < 4; ++c) {
    // Sub-block g takes qs[16g .. 16g + 15]: low nibbles, then high nibbles. Lanes: A, A, B, B.
    const __m512i x =
        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * c)));
    const __m512i ab = _mm512_shuffle_i32x4(x, x, _MM_SHUFFLE(1, 1, 0, 0));
    const __m512i nib = _mm512_and_si512(_mm512_mask_srli_epi16(ab, 0xff00ff00u, ab, 4), m4);
    store_levels(u, c, _mm512_shuffle_epi8(lut, nib));
  }
  const __m256i g = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i sl =
      _mm256_set1_epi32(static_cast<int>(b.scales_l[0] | (b.scales_l[1] << 8) | (b.scales_l[2] << 16) |
                                         (static_cast<uint32_t>(b.scales_l[3]) << 24)));
  // Scale g: 4 low bits at bit 4g of the scales_l word, 2 high bits at bit 2g of scales_h.
  const __m256i low = _mm256_and_si256(_mm256_srlv_epi32(sl, _mm256_slli_epi32(g, 2)), _mm256_set1_epi32(15));
  const __m256i high = _mm256_and_si256(
      _mm256_srlv_epi32(_mm256_set1_epi32(b.scales_h), _mm256_slli_epi32(g, 1)), _mm256_set1_epi32(3));
  const __m256i ls =
      _mm256_sub_epi32(_mm256_or_si256(low, _mm256_slli_epi32(high, 4)), _mm256_set1_epi32(32));
  _mm256_storeu_ps(u.s, _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(b.d)), _mm256_cvtepi32_ps(ls)));
  _mm256_storeu_ps(u.m, _mm256_setzero_ps());
}

}  // namespace

UnpackFn unpack_avx512(gguf::GgmlType type) {
  switch (type) {
    case gguf::GgmlType::Q2_K:
      return q2_k;
    case gguf::GgmlType::Q3_K:
      return q3_k;
    case gguf::GgmlType::Q5_K:
      return q5_k;
    case gguf::GgmlType::IQ4_XS:
      return iq4_xs;
    default:
      return nullptr;
  }
}

}  // namespace onecard::cpu
