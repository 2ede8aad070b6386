// The grid formats (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S) decoded in AVX2 registers, one
// group of 32 elements (four grid rows of 8) at a time: grid rows by table lookup on the published grids
// (quant/iq_tables.h), signs as +-1 bytes for vpsignb. Their row dots (vec_dot_grid_avx2.cpp) multiply the
// decoded rows with the activations directly; their vector unpackers (unpack_grid_avx2.cpp) store the same
// rows as the integer view's levels.
#pragma once

#include <cstdint>
#include <cstring>

#include "cpu/int_format.h"
#include "cpu/vec_dot.h"
#include "cpu/x86.h"
#include "quant/blocks.h"
#include "quant/iq_tables.h"

namespace onecard::cpu {

// nullptr for the formats that are not grid formats.
VecDotFn vec_dot_grid_avx2(gguf::GgmlType type);
// The AVX-512 row dots (vec_dot_grid_avx512.cpp) of the grid formats where they beat the AVX2 ones, nullptr
// for the others.
VecDotFn vec_dot_grid_avx512(gguf::GgmlType type);
UnpackFn unpack_grid_avx2(gguf::GgmlType type);

namespace grid_avx2 {

// Tables derived once from the published ones, in the layout the decoders load.
struct Tables {
  // kIqSigns as vpsignb operands: byte j is -1 where bit j of the sign byte is set, +1 elsewhere.
  uint64_t signs[128];
  // The IQ1 grid rows as levels of the integer view before the shift: 16 + 8g for g in {-1, 0, 1}.
  uint64_t iq1_levels[2048];
};

inline Tables make_tables() {
  Tables t{};
  for (int i = 0; i < 128; ++i) {
    for (int j = 0; j < 8; ++j) {
      const uint64_t byte = (quant::kIqSigns[i] >> j) & 1 ? 0xff : 0x01;
      t.signs[i] |= byte << (8 * j);
    }
  }
  for (int i = 0; i < 2048; ++i) {
    for (int j = 0; j < 8; ++j) {
      const int g = static_cast<int8_t>((quant::kIq1sGrid[i] >> (8 * j)) & 0xff);
      t.iq1_levels[i] |= static_cast<uint64_t>(16 + 8 * g) << (8 * j);
    }
  }
  return t;
}

inline const Tables& tables() {
  static const Tables t = make_tables();
  return t;
}

// One group of 32 decoded elements: unsigned grid magnitudes and their signs (+-1 per byte).
struct Group {
  __m256i grid;
  __m256i sign;
};

ONECARD_AVX2 inline __m256i rows64(const uint64_t* t, uint32_t i0, uint32_t i1, uint32_t i2, uint32_t i3) {
  return _mm256_set_epi64x(static_cast<long long>(t[i3]), static_cast<long long>(t[i2]),
                           static_cast<long long>(t[i1]), static_cast<long long>(t[i0]));
}

// Eight half rows of a grid of 4 coordinates (IQ3) by their indices. A gather: as fast as eight scalar
// loads and their inserts, and the indices need no scalar work.
ONECARD_AVX2 inline __m256i rows32(const uint32_t* t, __m256i idx) {
  return _mm256_i32gather_epi32(reinterpret_cast<const int*>(t), idx, 4);
}

// The four 7-bit sign indices of a sign word (bits 7r .. 7r + 6 for row r).
ONECARD_AVX2 inline __m256i word_signs(const Tables& t, uint32_t w) {
  return rows64(t.signs, w & 127, (w >> 7) & 127, (w >> 14) & 127, (w >> 21) & 127);
}

// Four explicit sign bytes (bit j of byte r: element 8r + j is negative).
ONECARD_AVX2 inline __m256i byte_signs(const uint8_t* p) {
  const __m256i spread =
      _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(quant::load_u32(p))),
                          _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2,
                                           2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bits = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
  const __m256i negative = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bits), bits);
  return _mm256_or_si256(negative, _mm256_set1_epi8(1));
}

// Group g: bytes 8g .. 8g + 3 are grid indices, the next 32 bits the sign word with the scale on top.
ONECARD_AVX2 inline Group iq2_xxs(const quant::BlockIQ2_XXS& b, int g, const Tables& t, uint32_t& word) {
  const auto* q = reinterpret_cast<const uint8_t*>(b.qs) + 8 * g;
  word = quant::load_u32(q + 4);
  return {rows64(quant::kIq2xxsGrid.data(), q[0], q[1], q[2], q[3]), word_signs(t, word)};
}

// Group g: four 16-bit codes, a 9-bit grid index under a 7-bit sign index.
ONECARD_AVX2 inline Group iq2_xs(const quant::BlockIQ2_XS& b, int g, const Tables& t) {
  uint16_t c[4];
  std::memcpy(c, b.qs + 4 * g, sizeof(c));
  return {rows64(quant::kIq2xsGrid.data(), c[0] & 511u, c[1] & 511u, c[2] & 511u, c[3] & 511u),
          rows64(t.signs, c[0] >> 9, c[1] >> 9, c[2] >> 9, c[3] >> 9)};
}

// Group g: row r's index is qs[4g + r] under bits 2r, 2r + 1 of qh[g]; its sign byte is qs[32 + 4g + r].
ONECARD_AVX2 inline Group iq2_s(const quant::BlockIQ2_S& b, int g) {
  const uint8_t* q = b.qs + 4 * g;
  const uint32_t h = b.qh[g];
  return {rows64(quant::kIq2sGrid.data(), q[0] | ((h << 8) & 0x300), q[1] | ((h << 6) & 0x300),
                 q[2] | ((h << 4) & 0x300), q[3] | ((h << 2) & 0x300)),
          byte_signs(b.qs + quant::kQK_K / 8 + 4 * g)};
}

// Group g: half rows indexed by qs[8g .. 8g + 7]; its sign word (scale on top) follows the 64 indices.
ONECARD_AVX2 inline Group iq3_xxs(const quant::BlockIQ3_XXS& b, int g, const Tables& t, uint32_t& word) {
  word = quant::load_u32(b.qs + quant::kQK_K / 4 + 4 * g);
  const __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.qs + 8 * g)));
  return {rows32(quant::kIq3xxsGrid.data(), idx), word_signs(t, word)};
}

// Group g: half row j is indexed by qs[8g + j] with bit j of qh[g] as the ninth bit; explicit sign bytes.
ONECARD_AVX2 inline Group iq3_s(const quant::BlockIQ3_S& b, int g) {
  const __m256i low = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.qs + 8 * g)));
  const __m256i high = _mm256_and_si256(
      _mm256_sllv_epi32(_mm256_set1_epi32(b.qh[g]), _mm256_setr_epi32(8, 7, 6, 5, 4, 3, 2, 1)),
      _mm256_set1_epi32(256));
  return {rows32(quant::kIq3sGrid.data(), _mm256_or_si256(low, high)), byte_signs(b.signs + 4 * g)};
}

// IQ1_S group g: the levels 16 + 8g of its four rows (without the shift); index r is qs[4g + r] under bits
// 3r .. 3r + 2 of qh[g].
ONECARD_AVX2 inline __m256i iq1_s(const quant::BlockIQ1_S& b, int g, const Tables& t) {
  const uint8_t* q = b.qs + 4 * g;
  const uint32_t h = b.qh[g];
  return rows64(t.iq1_levels, q[0] | ((h << 8) & 0x700), q[1] | ((h << 5) & 0x700), q[2] | ((h << 2) & 0x700),
                q[3] | ((h >> 1) & 0x700));
}

// IQ1_M group g: the levels 16 + 8g +- 1 of its four rows. Row r's nibble (qh[2g + r / 2] >> 4 (r % 2))
// holds three index bits under qs[4g + r] and, in bit 3, a negative shift.
ONECARD_AVX2 inline __m256i iq1_m(const quant::BlockIQ1_M& b, int g, const Tables& t) {
  const uint8_t* q = b.qs + 4 * g;
  const uint32_t h = b.qh[2 * g] | (static_cast<uint32_t>(b.qh[2 * g + 1]) << 8);
  const __m256i levels = rows64(t.iq1_levels, q[0] | ((h << 8) & 0x700), q[1] | ((h << 4) & 0x700),
                                q[2] | (h & 0x700), q[3] | ((h >> 4) & 0x700));
  // Rows 0, 1 read bits 3, 7 of the first qh byte, rows 2, 3 those of the second.
  const __m256i spread =
      _mm256_shuffle_epi8(_mm256_set1_epi16(static_cast<int16_t>(h)),
                          _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1,
                                           1, 1, 1, 1, 1, 1, 1, 1, 1, 1));
  const __m256i bit = _mm256_setr_epi64x(0x0808080808080808LL, static_cast<long long>(0x8080808080808080ULL),
                                         0x0808080808080808LL, static_cast<long long>(0x8080808080808080ULL));
  const __m256i negative = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_add_epi8(levels, _mm256_or_si256(negative, _mm256_set1_epi8(1)));
}

// The fp16 super-scale of IQ1_M, spread over the top nibbles of its four scale words.
ONECARD_AVX2 inline float iq1_m_scale(const quant::BlockIQ1_M& b) {
  uint16_t sc[4];
  std::memcpy(sc, b.scales, sizeof(sc));
  const auto bits = static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) |
                                          (sc[3] & 0xf000));
  return _cvtsh_ss(bits);
}

// IQ1_M's sixteen 3-bit scales s as 2s + 1 (scale k: word k / 4, bits 3 (k % 4)).
ONECARD_AVX2 inline __m256i iq1_m_odd_scales(const quant::BlockIQ1_M& b) {
  const __m128i w = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b.scales));
  const __m256i words =
      _mm256_setr_m128i(_mm_shuffle_epi8(w, _mm_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3)),
                        _mm_shuffle_epi8(w, _mm_setr_epi8(4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7)));
  // Bits 3j .. 3j + 2 moved to the top of the 16-bit lane, then down.
  const __m256i up = _mm256_setr_epi16(1 << 13, 1 << 10, 1 << 7, 1 << 4, 1 << 13, 1 << 10, 1 << 7, 1 << 4,
                                       1 << 13, 1 << 10, 1 << 7, 1 << 4, 1 << 13, 1 << 10, 1 << 7, 1 << 4);
  const __m256i s = _mm256_srli_epi16(_mm256_mullo_epi16(words, up), 13);
  return _mm256_add_epi16(_mm256_slli_epi16(s, 1), _mm256_set1_epi16(1));
}

// The sixteen 4-bit scales s of IQ2_XS and IQ2_S (nibble k % 2 of scales[k / 2]) as 2s + 1.
ONECARD_AVX2 inline __m256i iq2_odd_scales(const uint8_t* scales) {
  const __m128i sc = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(scales));
  const __m128i m4 = _mm_set1_epi8(0x0f);
  const __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(sc, m4), _mm_and_si128(_mm_srli_epi16(sc, 4), m4));
  return _mm256_add_epi16(_mm256_slli_epi16(_mm256_cvtepu8_epi16(nib), 1), _mm256_set1_epi16(1));
}

}  // namespace grid_avx2
}  // namespace onecard::cpu
