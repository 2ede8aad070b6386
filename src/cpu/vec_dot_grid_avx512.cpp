// AVX-512 row dots of the grid formats, 64 elements (two groups of 32) per step. Like the AVX2 dots
// (vec_dot_grid_avx2.cpp) they multiply the unsigned grid magnitudes with the activations by vpmaddubsw and
// apply the odd integer sub-block scales 2s + 1 exactly (here by vpdpwssd), one float step per block; what
// differs is the signs: a 64-bit mask per step, one bit per element, negates the activations (masked vpsubb)
// instead of a +-1 byte vector built from table loads. The 7-bit sign words (IQ2_XXS, IQ2_XS, IQ3_XXS) are
// turned into sign bytes for a whole block in vectors, a block ahead: that chain is long, and computed in
// the same block it left the products waiting (about 10% slower on this Zen 4). IQ1_S has no signs and gains
// only the wider steps; IQ1_M applies its per-row shifts under a mask too.
#include "cpu/grid_avx2.h"

namespace onecard::cpu {
namespace {

using quant::BlockQ8_K;

#define ONECARD_GRID512 \
  __attribute__((target("avx2,fma,f16c,bmi2,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

// Eight grid rows of 8 bytes by their indices (an insert chain: faster here than broadcasts and blends,
// masked broadcasts or a gather).
ONECARD_GRID512 inline __m512i rows8(const uint64_t* t, uint32_t i0, uint32_t i1, uint32_t i2, uint32_t i3,
                                     uint32_t i4, uint32_t i5, uint32_t i6, uint32_t i7) {
  return _mm512_set_epi64(static_cast<long long>(t[i7]), static_cast<long long>(t[i6]),
                          static_cast<long long>(t[i5]), static_cast<long long>(t[i4]),
                          static_cast<long long>(t[i3]), static_cast<long long>(t[i2]),
                          static_cast<long long>(t[i1]), static_cast<long long>(t[i0]));
}

// Sixteen half rows of 4 bytes of an IQ3 grid by their indices: two gathers of eight, a little faster here
// than one of sixteen, and than sixteen loads in an insert chain.
ONECARD_GRID512 inline __m512i rows16(const uint32_t* t, __m512i idx) {
  const int* base = reinterpret_cast<const int*>(t);
  const __m256i lo = _mm256_i32gather_epi32(base, _mm512_castsi512_si256(idx), 4);
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo),
                            _mm256_i32gather_epi32(base, _mm512_extracti64x4_epi64(idx, 1), 4), 1);
}

// The sign bytes of 7-bit sign indices (one per byte, bit 7 clear): bit 7 set where the seven bits have odd
// parity (kIqSigns). The shifts may carry bits of higher bytes into bits 4-7, never into bit 0.
ONECARD_GRID512 inline __m512i with_parity(__m512i y) {
  __m512i p = _mm512_xor_si512(y, _mm512_srli_epi64(y, 4));
  p = _mm512_xor_si512(p, _mm512_srli_epi64(p, 2));
  p = _mm512_xor_si512(p, _mm512_srli_epi64(p, 1));
  // y | (p << 7 & 0x80 in every byte)
  return _mm512_ternarylogic_epi64(y, _mm512_slli_epi64(p, 7), _mm512_set1_epi8(static_cast<char>(0x80)),
                                   0xf8);
}

// The 32 sign bytes of a block whose eight sign words (bits 7r .. 7r + 6: row r) sit in the low halves of
// w's qwords, in element order.
ONECARD_GRID512 inline __m256i word_sign_bytes(__m512i w) {
  __m512i y = _mm512_and_si512(w, _mm512_set1_epi64(0x7f));
  y = _mm512_ternarylogic_epi64(y, _mm512_slli_epi64(w, 1), _mm512_set1_epi64(0x7f00), 0xf8);
  y = _mm512_ternarylogic_epi64(y, _mm512_slli_epi64(w, 2), _mm512_set1_epi64(0x7f0000), 0xf8);
  y = _mm512_ternarylogic_epi64(y, _mm512_slli_epi64(w, 3), _mm512_set1_epi64(0x7f000000), 0xf8);
  return _mm512_cvtepi64_epi32(with_parity(y));
}

// Sign masks, 64 elements each, of a block.
struct Signs {
  alignas(32) uint64_t mask[4];
};

ONECARD_GRID512 inline Signs signs_of(__m256i bytes) {
  Signs s;
  _mm256_store_si256(reinterpret_cast<__m256i*>(s.mask), bytes);
  return s;
}

ONECARD_GRID512 inline __m512i negate(const int8_t* q8, uint64_t mask) {
  const __m512i a = _mm512_loadu_si512(q8);
  return _mm512_mask_sub_epi8(a, _cvtu64_mask64(mask), _mm512_setzero_si512(), a);
}

// The int16 scales of step j from the odd scales in odd's 16-bit lanes, `per` elements (per / 2 lanes) each:
// lane l takes lane j * 64 / per + 2 l / per.
ONECARD_GRID512 inline __m512i step_scales(__m512i odd, int j, int per) {
  alignas(64) int16_t idx[32];
  for (int l = 0; l < 32; ++l) idx[l] = static_cast<int16_t>(j * 64 / per + 2 * l / per);
  return _mm512_permutexvar_epi16(_mm512_load_si512(idx), odd);
}

template <class Block>
void prefetch_block(const Block* p) {
  x86::prefetch_ahead(p, sizeof(Block) > 64 ? 2 : 1);
}

ONECARD_GRID512 inline __m256i iq2_xxs_signs(const quant::BlockIQ2_XXS& b) {
  return word_sign_bytes(_mm512_srli_epi64(_mm512_loadu_si512(b.qs), 32));
}

ONECARD_GRID512 float dot_iq2_xxs(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const quant::BlockIQ2_XXS*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const uint64_t* grid = quant::kIq2xxsGrid.data();
  const int64_t nb = n / quant::kQK_K;
  __m512 acc = _mm512_setzero_ps();
  __m256i next = nb > 0 ? iq2_xxs_signs(x[0]) : _mm256_setzero_si256();
  for (int64_t i = 0; i < nb; ++i) {
    prefetch_block(x + i);
    const Signs s = signs_of(next);
    if (i + 1 < nb) next = iq2_xxs_signs(x[i + 1]);
    // Group g's word (scale in bits 28-31) is the high half of qword g: 2s + 1 is its top five bits, or 1.
    const __m512i words = _mm512_srli_epi64(_mm512_loadu_si512(x[i].qs), 59);
    const __m512i odd =
        _mm512_castsi128_si512(_mm512_cvtepi64_epi16(_mm512_or_si512(words, _mm512_set1_epi64(1))));
    __m512i sum0 = _mm512_setzero_si512(), sum1 = _mm512_setzero_si512();
    for (int j = 0; j < 4; ++j) {
      const auto* q = reinterpret_cast<const uint8_t*>(x[i].qs) + 16 * j;
      const __m512i v = rows8(grid, q[0], q[1], q[2], q[3], q[8], q[9], q[10], q[11]);
      const __m512i p = _mm512_maddubs_epi16(v, negate(y[i].qs + 64 * j, s.mask[j]));
      __m512i& sum = j % 2 ? sum1 : sum0;
      sum = _mm512_dpwssd_epi32(sum, p, step_scales(odd, j, 32));
    }
    // Scale d (0.5 + s) / 4 = d (2s + 1) / 8.
    const float d = y[i].d * _cvtsh_ss(x[i].d) * 0.125f;
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(sum0, sum1)), _mm512_set1_ps(d), acc);
  }
  return x86::hsum(acc);
}

ONECARD_GRID512 inline __m256i iq3_xxs_signs(const quant::BlockIQ3_XXS& b) {
  return word_sign_bytes(
      _mm512_cvtepu32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 64))));
}

ONECARD_GRID512 float dot_iq3_xxs(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const quant::BlockIQ3_XXS*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const uint32_t* grid = quant::kIq3xxsGrid.data();
  const int64_t nb = n / quant::kQK_K;
  __m512 acc = _mm512_setzero_ps();
  __m256i next = nb > 0 ? iq3_xxs_signs(x[0]) : _mm256_setzero_si256();
  for (int64_t i = 0; i < nb; ++i) {
    prefetch_block(x + i);
    const Signs s = signs_of(next);
    if (i + 1 < nb) next = iq3_xxs_signs(x[i + 1]);
    // The sign words follow the 64 indices, the scale in their bits 28-31.
    const __m512i words =
        _mm512_cvtepu32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + 64)));
    const __m512i odd = _mm512_castsi128_si512(
        _mm512_cvtepi64_epi16(_mm512_or_si512(_mm512_srli_epi64(words, 27), _mm512_set1_epi64(1))));
    __m512i sum0 = _mm512_setzero_si512(), sum1 = _mm512_setzero_si512();
    for (int j = 0; j < 4; ++j) {
      const __m512i idx =
          _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].qs + 16 * j)));
      const __m512i p = _mm512_maddubs_epi16(rows16(grid, idx), negate(y[i].qs + 64 * j, s.mask[j]));
      __m512i& sum = j % 2 ? sum1 : sum0;
      sum = _mm512_dpwssd_epi32(sum, p, step_scales(odd, j, 32));
    }
    // Scale d (0.5 + s) / 2 = d (2s + 1) / 4.
    const float d = y[i].d * _cvtsh_ss(x[i].d) * 0.25f;
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(sum0, sum1)), _mm512_set1_ps(d), acc);
  }
  return x86::hsum(acc);
}

// The sign index is the top 7 bits of each 16-bit code.
ONECARD_GRID512 inline __m256i iq2_xs_signs(const quant::BlockIQ2_XS& b) {
  return _mm512_cvtepi16_epi8(with_parity(_mm512_srli_epi16(_mm512_loadu_si512(b.qs), 9)));
}

ONECARD_GRID512 float dot_iq2_xs(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const quant::BlockIQ2_XS*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const uint64_t* grid = quant::kIq2xsGrid.data();
  const int64_t nb = n / quant::kQK_K;
  __m512 acc = _mm512_setzero_ps();
  __m256i next = nb > 0 ? iq2_xs_signs(x[0]) : _mm256_setzero_si256();
  for (int64_t i = 0; i < nb; ++i) {
    prefetch_block(x + i);
    const Signs s = signs_of(next);
    if (i + 1 < nb) next = iq2_xs_signs(x[i + 1]);
    const __m512i odd = _mm512_zextsi256_si512(grid_avx2::iq2_odd_scales(x[i].scales));
    __m512i sum0 = _mm512_setzero_si512(), sum1 = _mm512_setzero_si512();
    for (int j = 0; j < 4; ++j) {
      const uint16_t* c = x[i].qs + 8 * j;
      const __m512i v = rows8(grid, c[0] & 511u, c[1] & 511u, c[2] & 511u, c[3] & 511u, c[4] & 511u,
                              c[5] & 511u, c[6] & 511u, c[7] & 511u);
      const __m512i p = _mm512_maddubs_epi16(v, negate(y[i].qs + 64 * j, s.mask[j]));
      __m512i& sum = j % 2 ? sum1 : sum0;
      sum = _mm512_dpwssd_epi32(sum, p, step_scales(odd, j, 16));
    }
    const float d = y[i].d * _cvtsh_ss(x[i].d) * 0.125f;
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(sum0, sum1)), _mm512_set1_ps(d), acc);
  }
  return x86::hsum(acc);
}

// Explicit sign bytes: the 64 signs of a step are a mask as they are.
ONECARD_GRID512 inline uint64_t sign_mask(const uint8_t* p) {
  uint64_t m;
  std::memcpy(&m, p, sizeof(m));
  return m;
}

ONECARD_GRID512 float dot_iq2_s(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const quant::BlockIQ2_S*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const uint64_t* grid = quant::kIq2sGrid.data();
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    prefetch_block(x + i);
    const __m512i odd = _mm512_zextsi256_si512(grid_avx2::iq2_odd_scales(x[i].scales));
    __m512i sum0 = _mm512_setzero_si512(), sum1 = _mm512_setzero_si512();
    for (int j = 0; j < 4; ++j) {
      // Row r of group g: qs[4g + r] under bits 2r, 2r + 1 of qh[g].
      const uint8_t* q = x[i].qs + 8 * j;
      const uint32_t h0 = x[i].qh[2 * j], h1 = x[i].qh[2 * j + 1];
      const __m512i v =
          rows8(grid, q[0] | ((h0 << 8) & 0x300), q[1] | ((h0 << 6) & 0x300), q[2] | ((h0 << 4) & 0x300),
                q[3] | ((h0 << 2) & 0x300), q[4] | ((h1 << 8) & 0x300), q[5] | ((h1 << 6) & 0x300),
                q[6] | ((h1 << 4) & 0x300), q[7] | ((h1 << 2) & 0x300));
      const __m512i p =
          _mm512_maddubs_epi16(v, negate(y[i].qs + 64 * j, sign_mask(x[i].qs + quant::kQK_K / 8 + 8 * j)));
      __m512i& sum = j % 2 ? sum1 : sum0;
      sum = _mm512_dpwssd_epi32(sum, p, step_scales(odd, j, 16));
    }
    const float d = y[i].d * _cvtsh_ss(x[i].d) * 0.125f;
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(sum0, sum1)), _mm512_set1_ps(d), acc);
  }
  return x86::hsum(acc);
}

ONECARD_GRID512 float dot_iq3_s(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const quant::BlockIQ3_S*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const uint32_t* grid = quant::kIq3sGrid.data();
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    prefetch_block(x + i);
    // The eight 4-bit scales s (nibble g % 2 of scales[g / 2]) as 2s + 1.
    const __m128i sc = _mm_cvtsi32_si128(static_cast<int>(quant::load_u32(x[i].scales)));
    const __m128i m4 = _mm_set1_epi8(0x0f);
    const __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(sc, m4), _mm_and_si128(_mm_srli_epi16(sc, 4), m4));
    const __m512i odd =
        _mm512_castsi128_si512(_mm_add_epi16(_mm_slli_epi16(_mm_cvtepu8_epi16(nib), 1), _mm_set1_epi16(1)));
    __m512i sum0 = _mm512_setzero_si512(), sum1 = _mm512_setzero_si512();
    for (int j = 0; j < 4; ++j) {
      // Half row l of the step: qs[16j + l] with bit l of qh[2j], qh[2j + 1] as the ninth bit.
      const uint32_t h = x[i].qh[2 * j] | (static_cast<uint32_t>(x[i].qh[2 * j + 1]) << 8);
      const __m512i high = _mm512_and_si512(
          _mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(h << 8)), lanes), _mm512_set1_epi32(256));
      const __m512i low =
          _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].qs + 16 * j)));
      const __m512i v = rows16(grid, _mm512_or_si512(low, high));
      const __m512i p = _mm512_maddubs_epi16(v, negate(y[i].qs + 64 * j, sign_mask(x[i].signs + 8 * j)));
      __m512i& sum = j % 2 ? sum1 : sum0;
      sum = _mm512_dpwssd_epi32(sum, p, step_scales(odd, j, 32));
    }
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(sum0, sum1)),
                          _mm512_set1_ps(y[i].d * _cvtsh_ss(x[i].d)), acc);
  }
  return x86::hsum(acc);
}

// As the AVX2 dot: the levels 16 + 8g without the shift, whose (t - 16) A part comes from the activation
// sums.
ONECARD_GRID512 float dot_iq1_s(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const quant::BlockIQ1_S*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const uint64_t* levels = grid_avx2::tables().iq1_levels;
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    prefetch_block(x + i);
    const __m128i qh = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].qh));
    const __m128i odd =
        _mm_add_epi16(_mm_and_si128(_mm_srli_epi16(qh, 11), _mm_set1_epi16(14)), _mm_set1_epi16(1));
    const __m128i shift =
        _mm_sub_epi16(_mm_set1_epi16(-15), _mm_and_si128(_mm_srli_epi16(qh, 14), _mm_set1_epi16(2)));
    const __m128i weight = _mm_mullo_epi16(odd, shift);
    const __m256i weights =
        _mm256_setr_m128i(_mm_unpacklo_epi16(weight, weight), _mm_unpackhi_epi16(weight, weight));
    __m512i sum0 = _mm512_zextsi256_si512(
        _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].bsums)), weights));
    __m512i sum1 = _mm512_setzero_si512();
    const __m512i odds = _mm512_castsi128_si512(odd);
    for (int j = 0; j < 4; ++j) {
      // Row r of group g: qs[4g + r] under bits 3r .. 3r + 2 of qh[g].
      const uint8_t* q = x[i].qs + 8 * j;
      const uint32_t h0 = x[i].qh[2 * j], h1 = x[i].qh[2 * j + 1];
      const __m512i v =
          rows8(levels, q[0] | ((h0 << 8) & 0x700), q[1] | ((h0 << 5) & 0x700), q[2] | ((h0 << 2) & 0x700),
                q[3] | ((h0 >> 1) & 0x700), q[4] | ((h1 << 8) & 0x700), q[5] | ((h1 << 5) & 0x700),
                q[6] | ((h1 << 2) & 0x700), q[7] | ((h1 >> 1) & 0x700));
      const __m512i p = _mm512_maddubs_epi16(v, _mm512_loadu_si512(y[i].qs + 64 * j));
      __m512i& sum = j % 2 ? sum1 : sum0;
      sum = _mm512_dpwssd_epi32(sum, p, step_scales(odds, j, 32));
    }
    const float d = y[i].d * _cvtsh_ss(x[i].d) * 0.125f;
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(sum0, sum1)), _mm512_set1_ps(d), acc);
  }
  return x86::hsum(acc);
}

// IQ1_M shifts each row of 8 on its own, which Q8_K's sums per 16 cannot carry: the levels include the shift,
// 16 + 8g + 1 less 2 where the row's shift is negative, a 64-bit subtraction under a row mask (no level is
// below 2, so nothing borrows across bytes). Only the zero point 16 meets the activation sums.
ONECARD_GRID512 float dot_iq1_m(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const quant::BlockIQ1_M*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const uint64_t* levels = grid_avx2::tables().iq1_levels;
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    prefetch_block(x + i);
    const __m256i odd = grid_avx2::iq1_m_odd_scales(x[i]);
    const __m256i zero_part = _mm256_slli_epi32(
        _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].bsums)), odd), 4);
    __m512i sum0 = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), zero_part));
    __m512i sum1 = _mm512_setzero_si512();
    const __m512i odds = _mm512_zextsi256_si512(odd);
    for (int j = 0; j < 4; ++j) {
      // Row r of group g: qs[4g + r] under the low three bits of nibble r of qh[2g], qh[2g + 1]; bit 3 of the
      // nibble is the sign of its shift.
      const uint8_t* q = x[i].qs + 8 * j;
      const uint32_t h = quant::load_u32(x[i].qh + 4 * j);
      const uint32_t h0 = h & 0xffff, h1 = h >> 16;
      const __m512i v = rows8(levels, q[0] | ((h0 << 8) & 0x700), q[1] | ((h0 << 4) & 0x700),
                              q[2] | (h0 & 0x700), q[3] | ((h0 >> 4) & 0x700), q[4] | ((h1 << 8) & 0x700),
                              q[5] | ((h1 << 4) & 0x700), q[6] | (h1 & 0x700), q[7] | ((h1 >> 4) & 0x700));
      const __m512i shifted = _mm512_add_epi8(v, _mm512_set1_epi8(1));
      const __m512i lv = _mm512_mask_sub_epi64(shifted, _cvtu32_mask8(_pext_u32(h, 0x88888888u)), shifted,
                                               _mm512_set1_epi8(2));
      const __m512i p = _mm512_maddubs_epi16(lv, _mm512_loadu_si512(y[i].qs + 64 * j));
      __m512i& sum = j % 2 ? sum1 : sum0;
      sum = _mm512_dpwssd_epi32(sum, p, step_scales(odds, j, 16));
    }
    const float d = y[i].d * grid_avx2::iq1_m_scale(x[i]) * 0.125f;
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(sum0, sum1)), _mm512_set1_ps(d), acc);
  }
  return x86::hsum(acc);
}

}  // namespace

VecDotFn vec_dot_grid_avx512(gguf::GgmlType type) {
  switch (type) {
    case gguf::GgmlType::IQ1_S:
      return dot_iq1_s;
    case gguf::GgmlType::IQ1_M:
      return dot_iq1_m;
    case gguf::GgmlType::IQ2_XXS:
      return dot_iq2_xxs;
    case gguf::GgmlType::IQ2_XS:
      return dot_iq2_xs;
    case gguf::GgmlType::IQ2_S:
      return dot_iq2_s;
    case gguf::GgmlType::IQ3_XXS:
      return dot_iq3_xxs;
    case gguf::GgmlType::IQ3_S:
      return dot_iq3_s;
    default:
      return nullptr;
  }
}

}  // namespace onecard::cpu
