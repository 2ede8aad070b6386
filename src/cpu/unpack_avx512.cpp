#include "cpu/unpack_avx512.h"

#include <cstring>

#include "cpu/x86.h"
#include "quant/blocks.h"
#include "quant/iq_tables.h"

namespace onecard::cpu {
namespace {

using quant::BlockIQ1_M;
using quant::BlockIQ2_XS;
using quant::BlockIQ3_XXS;
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
  const __m512 scm = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(x86::k_scales_mins_vec(b.scales)));
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

// The low byte of each 64-bit lane in all eight of its bytes.
ONECARD_AVX512 __m512i spread_low_bytes(__m512i v) {
  const long long hi = 0x0808080808080808LL;
  return _mm512_shuffle_epi8(v, _mm512_setr_epi64(0, hi, 0, hi, 0, hi, 0, hi));
}

// Eight grid rows (8 bytes each) by their indices.
ONECARD_AVX512 __m512i grid_rows(const uint64_t* grid, __m256i indices) {
  return _mm512_i32gather_epi64(indices, reinterpret_cast<const long long*>(grid), 8);
}

// Each 64-bit lane's 7-bit sign index made a sign byte (bit 7: the parity of the other seven, as kIqSigns),
// and the byte mask of the lane's negative values.
ONECARD_AVX512 __mmask64 iq_signs(__m512i index7) {
  __m512i parity = _mm512_xor_si512(index7, _mm512_srli_epi64(index7, 4));
  parity = _mm512_xor_si512(parity, _mm512_srli_epi64(parity, 2));
  parity = _mm512_xor_si512(parity, _mm512_srli_epi64(parity, 1));
  const __m512i sign =
      _mm512_or_si512(index7, _mm512_slli_epi64(_mm512_and_si512(parity, _mm512_set1_epi64(1)), 7));
  return _mm512_test_epi8_mask(spread_low_bytes(sign),
                               _mm512_set1_epi64(static_cast<long long>(0x8040201008040201ULL)));
}

// Sixteen scales d (0.5 + s) / 4, s the nibble k % 2 of scales[k / 2], in the reference's order of
// operations.
ONECARD_AVX512 void nibble_scales_16(const uint8_t* scales, float d, UnpackedUnit& u) {
  const __m512i bytes =
      _mm512_cvtepu8_epi32(_mm_shuffle_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(scales)),
                                            _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7)));
  const __m512i s = _mm512_and_si512(
      _mm512_srlv_epi32(bytes, _mm512_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4)),
      _mm512_set1_epi32(15));
  const __m512 db = _mm512_mul_ps(
      _mm512_mul_ps(_mm512_set1_ps(d), _mm512_add_ps(_mm512_set1_ps(0.5f), _mm512_cvtepi32_ps(s))),
      _mm512_set1_ps(0.25f));
  _mm512_storeu_ps(u.s, db);
  _mm512_storeu_ps(u.m, _mm512_setzero_ps());
}

// z plus or minus the grid coordinates.
ONECARD_AVX512 __m512i signed_levels(__m512i grid, __mmask64 negative, int zero) {
  const __m512i z = _mm512_set1_epi8(static_cast<char>(zero));
  return _mm512_mask_sub_epi8(_mm512_add_epi8(z, grid), negative, z, grid);
}

// The sign indices of eight rows from the dwords of `words` holding their groups' sign words: dword `first`
// for rows 0-3, `second` for rows 4-7; row k's index is bits 7 (k % 4) of its word.
ONECARD_AVX512 __mmask64 iq_word_signs(__m512i words, int first, int second) {
  const __m512i pick =
      _mm512_setr_epi32(first, 0, first, 0, first, 0, first, 0, second, 0, second, 0, second, 0, second, 0);
  const __m512i w = _mm512_and_si512(_mm512_permutexvar_epi32(pick, words), _mm512_set1_epi64(0xffffffff));
  return iq_signs(_mm512_and_si512(_mm512_srlv_epi64(w, _mm512_setr_epi64(0, 7, 14, 21, 0, 7, 14, 21)),
                                   _mm512_set1_epi64(127)));
}

// The top 4 bits of 8 sign words (dwords 1, 3, .., 15 of `words`, or 0..7 with stride 1), as sub-block scales
// d (0.5 + s) f in the reference's order of operations.
ONECARD_AVX512 void word_scales(__m512i words, __m512i pick, float d, float f, UnpackedUnit& u) {
  const __m256i s = _mm512_castsi512_si256(_mm512_srli_epi32(_mm512_permutexvar_epi32(pick, words), 28));
  const __m256 db = _mm256_mul_ps(
      _mm256_mul_ps(_mm256_set1_ps(d), _mm256_add_ps(_mm256_set1_ps(0.5f), _mm256_cvtepi32_ps(s))),
      _mm256_set1_ps(f));
  _mm256_storeu_ps(u.s, db);
  _mm256_storeu_ps(u.m, _mm256_setzero_ps());
}

ONECARD_AVX512 void iq2_xs(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockIQ2_XS*>(p);
  // 16-bit codes: a 9-bit grid index and a 7-bit sign index.
  for (int c = 0; c < 4; ++c) {
    const __m256i code =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs + 8 * c)));
    const __m512i grid = grid_rows(quant::kIq2xsGrid.data(), _mm256_and_si256(code, _mm256_set1_epi32(511)));
    store_levels(u, c, signed_levels(grid, iq_signs(_mm512_cvtepu32_epi64(_mm256_srli_epi32(code, 9))), 64));
  }
  nibble_scales_16(b.scales, _cvtsh_ss(b.d), u);
}

ONECARD_AVX512 void iq3_xxs(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockIQ3_XXS*>(p);
  // qs: 64 grid indices of 4 coordinates each, then per group a word of four sign indices and the scale.
  const __m512i meta =
      _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + quant::kQK_K / 4)));
  for (int c = 0; c < 4; ++c) {
    const __m512i idx =
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs + 16 * c)));
    const __m512i grid =
        _mm512_i32gather_epi32(idx, reinterpret_cast<const int*>(quant::kIq3xxsGrid.data()), 4);
    store_levels(u, c, signed_levels(grid, iq_word_signs(meta, 2 * c, 2 * c + 1), 64));
  }
  word_scales(meta, _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 0), _cvtsh_ss(b.d), 0.5f,
              u);
}

// IQ1 levels of eight rows: 16 + 8g, plus 1 or (where the row's shift is negative) minus 1.
ONECARD_AVX512 __m512i iq1_levels(__m512i grid, __m512i shift_negative) {
  const __m512i g8 = _mm512_add_epi8(grid, grid);
  const __m512i eight = _mm512_add_epi8(_mm512_add_epi8(g8, g8), _mm512_add_epi8(g8, g8));
  const __m512i base = _mm512_mask_blend_epi8(_mm512_test_epi8_mask(shift_negative, shift_negative),
                                              _mm512_set1_epi8(17), _mm512_set1_epi8(15));
  return _mm512_add_epi8(eight, base);
}

ONECARD_AVX512 void iq1_m(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockIQ1_M*>(p);
  const __m512i qh_all = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qh)));
  for (int c = 0; c < 4; ++c) {
    // Row k of groups 2c, 2c + 1: the nibble (qh[4c + k / 2] >> 4 (k % 2)) holds 3 index bits and the shift
    // sign.
    const __m256i bytes = _mm512_castsi512_si256(
        _mm512_permutexvar_epi32(_mm512_setr_epi32(4 * c, 4 * c, 4 * c + 1, 4 * c + 1, 4 * c + 2, 4 * c + 2,
                                                   4 * c + 3, 4 * c + 3, 0, 0, 0, 0, 0, 0, 0, 0),
                                 qh_all));
    const __m256i nib = _mm256_and_si256(_mm256_srlv_epi32(bytes, _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4)),
                                         _mm256_set1_epi32(15));
    const __m256i low = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.qs + 8 * c)));
    const __m256i index =
        _mm256_or_si256(low, _mm256_slli_epi32(_mm256_and_si256(nib, _mm256_set1_epi32(7)), 8));
    const __m512i grid = grid_rows(quant::kIq1sGrid.data(), index);
    const __m512i negative = _mm512_cvtepi32_epi64(_mm256_srli_epi32(nib, 3));
    store_levels(u, c, iq1_levels(grid, spread_low_bytes(negative)));
  }
  // The four 16-bit scale words: 3 bits per 16-element scale (k: word k / 4, bit 3 (k % 4)), and in their top
  // nibbles the fp16 super-scale.
  const __m512i words = _mm512_permutexvar_epi32(
      _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
      _mm512_castsi256_si512(
          _mm256_cvtepu16_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.scales)))));
  const __m512i s = _mm512_and_si512(
      _mm512_srlv_epi32(words, _mm512_setr_epi32(0, 3, 6, 9, 0, 3, 6, 9, 0, 3, 6, 9, 0, 3, 6, 9)),
      _mm512_set1_epi32(7));
  uint16_t sc[4];
  std::memcpy(sc, b.scales, sizeof(sc));
  const auto dbits = static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) |
                                           (sc[3] & 0xf000));
  const __m512 odd = _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_slli_epi32(s, 1), _mm512_set1_epi32(1)));
  _mm512_storeu_ps(
      u.s, _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(dbits)), odd), _mm512_set1_ps(0.125f)));
  _mm512_storeu_ps(u.m, _mm512_setzero_ps());
}

// The row dot product on a format's unpacking, inlined: one block unpacked into registers' reach, then
// vpdpbusd on the levels. Lane l of register c holds columns 64c + 4l .. + 3, so it takes the scale of
// sub-block (64c + 4l) / SUB; the zero point and offsets meet the activation sums per 16 columns (Q8_K's
// bsums).
template <void (*kUnpack)(const void*, UnpackedUnit&), int SUB>
ONECARD_AVX512 float dot_unpacked(const IntFormat& f, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const uint8_t*>(w);
  const auto* y = static_cast<const quant::BlockQ8_K*>(a);
  __m512i lane_scale[4];
  for (int c = 0; c < 4; ++c) {
    alignas(64) int32_t idx[16];
    for (int l = 0; l < 16; ++l) idx[l] = (64 * c + 4 * l) / SUB;
    lane_scale[c] = _mm512_load_si512(idx);
  }
  alignas(64) int32_t per16[16];
  for (int j = 0; j < 16; ++j) per16[j] = 16 * j / SUB;
  const __m512i sum_scale = _mm512_load_si512(per16);
  const __m512 zero = _mm512_set1_ps(static_cast<float>(f.zero));
  const int lines = static_cast<int>((f.unit_bytes + 63) / 64) + 1;
  __m512 acc = _mm512_setzero_ps();
  alignas(64) UnpackedUnit u{};  // sub-blocks of 32 fill half of s and m; the rest is never selected
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    x86::prefetch_ahead(x + i * f.unit_bytes, lines);
    kUnpack(x + i * f.unit_bytes, u);
    const __m512 sv = _mm512_loadu_ps(u.s), mv = _mm512_loadu_ps(u.m);
    __m512 unit = _mm512_setzero_ps();
    for (int c = 0; c < 4; ++c) {
      const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_load_si512(u.q + 64 * c),
                                            _mm512_loadu_si512(y[i].qs + 64 * c));
      unit = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(lane_scale[c], sv), unit);
    }
    // sum_b (m_b - z s_b) A_b, with A per 16 columns.
    const __m512 sums = _mm512_cvtepi32_ps(
        _mm512_cvtepi16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].bsums))));
    const __m512 mz = _mm512_fnmadd_ps(zero, sv, mv);
    unit = _mm512_fmadd_ps(sums, _mm512_permutexvar_ps(sum_scale, mz), unit);
    acc = _mm512_fmadd_ps(unit, _mm512_set1_ps(y[i].d), acc);
  }
  return x86::hsum(acc);
}

// Each format's vector unpacking and the row dot built on it (its sub-block size as the template argument).
struct Unpacker {
  gguf::GgmlType type;
  UnpackFn unpack;
  VecDotFn dot;
};
constexpr Unpacker kUnpackers[] = {
    {gguf::GgmlType::Q2_K, q2_k, dot_unpacked<q2_k, 16>},
    {gguf::GgmlType::Q3_K, q3_k, dot_unpacked<q3_k, 16>},
    {gguf::GgmlType::Q5_K, q5_k, dot_unpacked<q5_k, 32>},
    {gguf::GgmlType::IQ4_XS, iq4_xs, dot_unpacked<iq4_xs, 32>},
    // The grid formats' row dots are the AVX2 ones (vec_dot_grid_avx2.cpp), which decode in registers and
    // are faster on Zen 5 than these on the unpacking; these unpackers are as fast as the AVX2 ones or
    // faster, and the other grid formats unpack faster with AVX2 (unpack_grid_avx2.cpp).
    {gguf::GgmlType::IQ2_XS, iq2_xs, nullptr},
    {gguf::GgmlType::IQ3_XXS, iq3_xxs, nullptr},
    {gguf::GgmlType::IQ1_M, iq1_m, nullptr},
};

const Unpacker* unpacker(gguf::GgmlType type) {
  for (const Unpacker& u : kUnpackers) {
    if (u.type == type) return &u;
  }
  return nullptr;
}

}  // namespace

VecDotFn vec_dot_unpacked_avx512(gguf::GgmlType type) {
  const Unpacker* u = unpacker(type);
  return u == nullptr ? nullptr : u->dot;
}

UnpackFn unpack_avx512(gguf::GgmlType type) {
  const Unpacker* u = unpacker(type);
  return u == nullptr ? nullptr : u->unpack;
}

}  // namespace onecard::cpu
