// AVX2 row dot products: vpmaddubsw multiplies unsigned weight levels with signed activations into int16
// pair sums, vpmaddwd applies the sub-block scale while widening to int32.
#include "cpu/vec_dot.h"
#include "cpu/x86.h"
#include "quant/blocks.h"
#include "quant/iq_tables.h"

namespace onecard::cpu {
namespace {

using quant::BlockQ2_K;
using quant::BlockQ3_K;
using quant::BlockQ4_K;
using quant::BlockQ5_K;
using quant::BlockQ6_K;
using quant::BlockQ8_0;
using quant::BlockQ8_K;
using x86::hsum;

ONECARD_AVX2 __m256i load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// Eight int16 scales in both 128-bit lanes; pair j selects scale 2j for the low lane and 2j + 1 for the high
// one (the two 16-element sub-blocks one 32-byte register of levels covers), group g scale g for both.
ONECARD_AVX2 __m256i scale_pair(__m256i scales, int j) {
  const char lo = static_cast<char>(4 * j), hi = static_cast<char>(4 * j + 2);
  return _mm256_shuffle_epi8(
      scales, _mm256_setr_epi8(lo, lo + 1, lo, lo + 1, lo, lo + 1, lo, lo + 1, lo, lo + 1, lo, lo + 1, lo,
                               lo + 1, lo, lo + 1, hi, hi + 1, hi, hi + 1, hi, hi + 1, hi, hi + 1, hi, hi + 1,
                               hi, hi + 1, hi, hi + 1, hi, hi + 1));
}

ONECARD_AVX2 __m256i scale_group(__m256i scales, int g) {
  const char lo = static_cast<char>(2 * g), hi = static_cast<char>(2 * g + 1);
  return _mm256_shuffle_epi8(
      scales, _mm256_setr_epi8(lo, hi, lo, hi, lo, hi, lo, hi, lo, hi, lo, hi, lo, hi, lo, hi, lo, hi, lo, hi,
                               lo, hi, lo, hi, lo, hi, lo, hi, lo, hi, lo, hi));
}

// Half h (scales 8h .. 8h + 7) of 16 int16 scales, in both lanes.
ONECARD_AVX2 __m256i scale_half(__m256i sc16, int h) {
  return h == 0 ? _mm256_permute2x128_si256(sc16, sc16, 0x00) : _mm256_permute2x128_si256(sc16, sc16, 0x11);
}

// Bit b of every byte of v, moved to bit `to` (the Q3_K level's third bit, the Q5_K level's fifth).
ONECARD_AVX2 __m256i bit_to(__m256i v, int b, int to) {
  const __m256i t = _mm256_and_si256(v, _mm256_set1_epi8(static_cast<char>(1 << b)));
  return b >= to ? _mm256_srli_epi16(t, b - to) : _mm256_slli_epi16(t, to - b);
}

// The eight 6-bit scales of a Q4_K or Q5_K block as int16 in both lanes (for scale_group), and its eight
// mins times the 16 activation sums (each min covers two).
ONECARD_AVX2 __m256i k_scales(const uint8_t* packed, const int16_t* bsums, __m256i& mins) {
  const __m128i sm8 = x86::k_scales_mins_vec(packed);
  const __m128i min_pairs = _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
  mins = _mm256_madd_epi16(load256(bsums), _mm256_cvtepu8_epi16(_mm_shuffle_epi8(sm8, min_pairs)));
  return _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm8));
}

ONECARD_AVX2 float dot_q4_k(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ4_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    x86::prefetch_ahead(x + i, 3);  // 144-byte blocks
    __m256i mins;
    const __m256i sc = k_scales(x[i].scales, y[i].bsums, mins);
    const float d = y[i].d * _cvtsh_ss(x[i].d), dmin = y[i].d * _cvtsh_ss(x[i].dmin);
    acc_min = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(dmin), acc_min);
    __m256i sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i q = load256(x[i].qs + 32 * c);
      const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      const __m256i plo = _mm256_maddubs_epi16(lo, load256(y[i].qs + 64 * c));
      const __m256i phi = _mm256_maddubs_epi16(hi, load256(y[i].qs + 64 * c + 32));
      sum0 = _mm256_add_epi32(sum0, _mm256_madd_epi16(plo, scale_group(sc, 2 * c)));
      sum1 = _mm256_add_epi32(sum1, _mm256_madd_epi16(phi, scale_group(sc, 2 * c + 1)));
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(sum0, sum1)), _mm256_set1_ps(d), acc);
  }
  return hsum(acc) - hsum(acc_min);
}

ONECARD_AVX2 float dot_q2_k(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ2_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m128i m4 = _mm_set1_epi8(0x0f);
  __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    x86::prefetch_ahead(x + i, 2);  // 84-byte blocks
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales));
    // The mins (high nibbles) times the 16 activation sums, at once.
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), m4));
    const __m256i msum = _mm256_madd_epi16(load256(y[i].bsums), mins);
    const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(sc8, m4));
    __m256i sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i q = load256(x[i].qs + 32 * h);
      const __m256i sh = scale_half(sc16, h);
      for (int j = 0; j < 4; ++j) {
        // Bits 2j of the 32 bytes are elements 128h + 32j .. +31: sub-blocks 8h + 2j and 8h + 2j + 1.
        const __m256i lv = _mm256_and_si256(j == 0 ? q : _mm256_srli_epi16(q, 2 * j), m3);
        const __m256i p = _mm256_maddubs_epi16(lv, load256(y[i].qs + 128 * h + 32 * j));
        const __m256i ps = _mm256_madd_epi16(p, scale_pair(sh, j));
        if (j % 2 == 0) {
          sum0 = _mm256_add_epi32(sum0, ps);
        } else {
          sum1 = _mm256_add_epi32(sum1, ps);
        }
      }
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(sum0, sum1)),
                          _mm256_set1_ps(y[i].d * _cvtsh_ss(x[i].d)), acc);
    acc_min =
        _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(y[i].d * _cvtsh_ss(x[i].dmin)), acc_min);
  }
  return hsum(acc) - hsum(acc_min);
}

// The 16 six-bit scales of a Q3_K block, minus 32, as int16: the low nibbles of bytes 0-7 are scales 0-7,
// their high nibbles 8-15; scale k's top two bits are bits 2 (k / 4) of byte 8 + k % 4.
ONECARD_AVX2 __m256i q3_k_scales(const uint8_t* s) {
  const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(s));
  const __m128i m4 = _mm_set1_epi8(0x0f);
  const __m128i low = _mm_unpacklo_epi64(_mm_and_si128(v, m4), _mm_and_si128(_mm_srli_epi16(v, 4), m4));
  const __m128i top = _mm_and_si128(
      _mm_srlv_epi32(_mm_set1_epi32(static_cast<int>(quant::load_u32(s + 8))), _mm_setr_epi32(0, 2, 4, 6)),
      _mm_set1_epi8(3));
  const __m128i six = _mm_or_si128(low, _mm_slli_epi16(top, 4));
  return _mm256_sub_epi16(_mm256_cvtepu8_epi16(six), _mm256_set1_epi16(32));
}

ONECARD_AVX2 float dot_q3_k(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ3_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m3 = _mm256_set1_epi8(3);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    x86::prefetch_ahead(x + i, 2);  // 110-byte blocks
    const __m256i sc16 = q3_k_scales(x[i].scales);
    // The zero point 4 of the levels, exactly: 4 * sum_k scale_k * (activation sum of sub-block k).
    const __m256i zero_point = _mm256_slli_epi32(_mm256_madd_epi16(load256(y[i].bsums), sc16), 2);
    const __m256i hm = load256(x[i].hmask);
    __m256i sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i q = load256(x[i].qs + 32 * h);
      const __m256i sh = scale_half(sc16, h);
      for (int j = 0; j < 4; ++j) {
        // Elements 128h + 32j .. +31 (sub-blocks 8h + 2j and 8h + 2j + 1): two bits from qs, the third is bit
        // 4h + j of hmask's bytes.
        const __m256i low = _mm256_and_si256(j == 0 ? q : _mm256_srli_epi16(q, 2 * j), m3);
        const __m256i lv = _mm256_or_si256(low, bit_to(hm, 4 * h + j, 2));
        const __m256i p = _mm256_maddubs_epi16(lv, load256(y[i].qs + 128 * h + 32 * j));
        const __m256i ps = _mm256_madd_epi16(p, scale_pair(sh, j));
        if (j % 2 == 0) {
          sum0 = _mm256_add_epi32(sum0, ps);
        } else {
          sum1 = _mm256_add_epi32(sum1, ps);
        }
      }
    }
    const __m256i total = _mm256_sub_epi32(_mm256_add_epi32(sum0, sum1), zero_point);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(total), _mm256_set1_ps(y[i].d * _cvtsh_ss(x[i].d)), acc);
  }
  return hsum(acc);
}

ONECARD_AVX2 float dot_q5_k(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ5_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    x86::prefetch_ahead(x + i, 3);  // 176-byte blocks
    __m256i mins;
    const __m256i sc = k_scales(x[i].scales, y[i].bsums, mins);
    const float d = y[i].d * _cvtsh_ss(x[i].d), dmin = y[i].d * _cvtsh_ss(x[i].dmin);
    acc_min = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(dmin), acc_min);
    const __m256i qh = load256(x[i].qh);
    __m256i sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      // Sub-blocks 2c (low nibbles) and 2c + 1 (high nibbles); their fifth bits are bits 2c and 2c + 1 of qh.
      const __m256i q = load256(x[i].qs + 32 * c);
      const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), bit_to(qh, 2 * c, 4));
      const __m256i hi =
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), bit_to(qh, 2 * c + 1, 4));
      const __m256i plo = _mm256_maddubs_epi16(lo, load256(y[i].qs + 64 * c));
      const __m256i phi = _mm256_maddubs_epi16(hi, load256(y[i].qs + 64 * c + 32));
      sum0 = _mm256_add_epi32(sum0, _mm256_madd_epi16(plo, scale_group(sc, 2 * c)));
      sum1 = _mm256_add_epi32(sum1, _mm256_madd_epi16(phi, scale_group(sc, 2 * c + 1)));
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(sum0, sum1)), _mm256_set1_ps(d), acc);
  }
  return hsum(acc) - hsum(acc_min);
}

// The eight 6-bit scales of an IQ4_XS block, minus 32, as int16 in both lanes: the low four bits are nibble g
// of scales_l, the high two bits 2g of scales_h.
ONECARD_AVX2 __m256i iq4_xs_scales(const quant::BlockIQ4_XS& b) {
  const __m256i low =
      _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(quant::load_u32(b.scales_l))),
                                         _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)),
                       _mm256_set1_epi32(15));
  const __m256i high = _mm256_and_si256(
      _mm256_srlv_epi32(_mm256_set1_epi32(b.scales_h), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)),
      _mm256_set1_epi32(3));
  const __m256i ls =
      _mm256_sub_epi32(_mm256_or_si256(low, _mm256_slli_epi32(high, 4)), _mm256_set1_epi32(32));
  const __m128i s16 = _mm_packs_epi32(_mm256_castsi256_si128(ls), _mm256_extracti128_si256(ls, 1));
  return _mm256_broadcastsi128_si256(s16);
}

// The signed grid values of IQ4_XS (IQ4_NL's), multiplied with the sign trick: biased by 128 as the integer
// view stores them, two products would saturate vpmaddubsw's int16 sums. |w a| <= 127 * 127, so a pair sum
// fits int16 and vpmaddwd applies the group's scale while widening.
ONECARD_AVX2 float dot_iq4_xs(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const quant::BlockIQ4_XS*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m256i lut = _mm256_broadcastsi128_si256(
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(quant::kIq4nlValues.data())));
  const __m256i m4 = _mm256_set1_epi8(0x0f), high_lane = _mm256_setr_epi64x(0, 0, 4, 4);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    x86::prefetch_ahead(x + i, 3);  // 136-byte blocks
    const __m256i sc = iq4_xs_scales(x[i]);
    __m256i sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256();
    for (int g = 0; g < 8; ++g) {
      // Elements 32g .. 32g + 15 in the low nibbles of 16 bytes, the next 16 in the high ones.
      const __m256i q =
          _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].qs + 16 * g)));
      const __m256i v = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srlv_epi64(q, high_lane), m4));
      const __m256i av = load256(y[i].qs + 32 * g);
      const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(v), _mm256_sign_epi8(av, v));
      const __m256i ps = _mm256_madd_epi16(p, scale_group(sc, g));
      if (g % 2 == 0) {
        sum0 = _mm256_add_epi32(sum0, ps);
      } else {
        sum1 = _mm256_add_epi32(sum1, ps);
      }
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(sum0, sum1)),
                          _mm256_set1_ps(y[i].d * _cvtsh_ss(x[i].d)), acc);
  }
  return hsum(acc);
}

ONECARD_AVX2 float dot_q6_k(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ6_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    x86::prefetch_ahead(x + i, 4);  // 210-byte blocks
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales)));
    // The -32 zero point, exactly: 32 * sum_k scale_k * (activation sum of sub-block k).
    const __m256i zero_point = _mm256_slli_epi32(_mm256_madd_epi16(load256(y[i].bsums), sc16), 5);
    __m256i sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i sh = scale_half(sc16, h);
      const __m256i ql0 = load256(x[i].ql + 64 * h), ql1 = load256(x[i].ql + 64 * h + 32);
      const __m256i qh = load256(x[i].qh + 32 * h);
      // Quarter j of this half: low nibbles of ql0/ql1 for j < 2, high nibbles for j >= 2; high bits at 2j.
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30)),
          _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                          _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30)),
      };
      for (int j = 0; j < 4; ++j) {
        // Sub-blocks 8h + 2j and 8h + 2j + 1.
        const __m256i p = _mm256_maddubs_epi16(q[j], load256(y[i].qs + 128 * h + 32 * j));
        const __m256i ps = _mm256_madd_epi16(p, scale_pair(sh, j));
        if (j % 2 == 0) {
          sum0 = _mm256_add_epi32(sum0, ps);
        } else {
          sum1 = _mm256_add_epi32(sum1, ps);
        }
      }
    }
    const __m256i total = _mm256_sub_epi32(_mm256_add_epi32(sum0, sum1), zero_point);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(total), _mm256_set1_ps(y[i].d * _cvtsh_ss(x[i].d)), acc);
  }
  return hsum(acc);
}

ONECARD_AVX2 float dot_q8_0(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ8_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const int64_t nb = n / quant::kQK;
  const __m256i ones = _mm256_set1_epi16(1);
  // |w| * (a * sign(w)) = w * a, with |w| unsigned so that -128 stays exact.
  auto block = [&](int64_t i, __m256 acc) ONECARD_AVX2 {
    const __m256i wq = load256(x[i].qs), aq = load256(y[i].qs);
    const __m256i p =
        _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(wq), _mm256_sign_epi8(aq, wq)), ones);
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(x[i].d) * _cvtsh_ss(y[i].d));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), d, acc);
  };
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    acc0 = block(i, acc0);
    acc1 = block(i + 1, acc1);
  }
  if (i < nb) acc0 = block(i, acc0);
  return hsum(_mm256_add_ps(acc0, acc1));
}

}  // namespace

VecDotFn vec_dot_avx2(gguf::GgmlType type) {
  switch (type) {
    case gguf::GgmlType::Q2_K:
      return dot_q2_k;
    case gguf::GgmlType::Q3_K:
      return dot_q3_k;
    case gguf::GgmlType::Q4_K:
      return dot_q4_k;
    case gguf::GgmlType::Q5_K:
      return dot_q5_k;
    case gguf::GgmlType::Q6_K:
      return dot_q6_k;
    case gguf::GgmlType::Q8_0:
      return dot_q8_0;
    case gguf::GgmlType::IQ4_XS:
      return dot_iq4_xs;
    default:
      return vec_dot_legacy_avx2(type);
  }
}

}  // namespace onecard::cpu
