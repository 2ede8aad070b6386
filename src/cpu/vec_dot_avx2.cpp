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

ONECARD_AVX2 float dot_q4_k(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ4_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  // Each min covers two 16-element activation sums: repeat it for both.
  const __m128i min_pairs = _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
  __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    alignas(16) uint8_t sm[16];
    x86::k_scales_mins(x[i].scales, sm);
    const __m128i sm8 = _mm_load_si128(reinterpret_cast<const __m128i*>(sm));
    const __m256i mins =
        _mm256_madd_epi16(load256(y[i].bsums), _mm256_cvtepu8_epi16(_mm_shuffle_epi8(sm8, min_pairs)));
    const float d = y[i].d * _cvtsh_ss(x[i].d), dmin = y[i].d * _cvtsh_ss(x[i].dmin);
    acc_min = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(dmin), acc_min);
    __m256i sum = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i q = load256(x[i].qs + 32 * c);
      const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      const __m256i plo = _mm256_maddubs_epi16(lo, load256(y[i].qs + 64 * c));
      const __m256i phi = _mm256_maddubs_epi16(hi, load256(y[i].qs + 64 * c + 32));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(plo, _mm256_set1_epi16(sm[2 * c])));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(phi, _mm256_set1_epi16(sm[2 * c + 1])));
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(d), acc);
  }
  return hsum(acc) - hsum(acc_min);
}

ONECARD_AVX2 float dot_q2_k(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ2_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m3 = _mm256_set1_epi8(3);
  __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    const uint8_t* sc = x[i].scales;
    // The mins (high nibbles) times the 16 activation sums, at once.
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(sc));
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), _mm_set1_epi8(0x0f)));
    const __m256i msum = _mm256_madd_epi16(load256(y[i].bsums), mins);
    acc_min =
        _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(y[i].d * _cvtsh_ss(x[i].dmin)), acc_min);
    __m256i sum = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i q = load256(x[i].qs + 32 * h);
      for (int j = 0; j < 4; ++j) {
        // Bits 2j of the 32 bytes are elements 128h + 32j .. +31: sub-blocks k and k + 1.
        const int k = 8 * h + 2 * j;
        const __m256i lv = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
        const __m256i p = _mm256_maddubs_epi16(lv, load256(y[i].qs + 128 * h + 32 * j));
        const __m256i s = _mm256_setr_m128i(_mm_set1_epi16(sc[k] & 15), _mm_set1_epi16(sc[k + 1] & 15));
        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, s));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(y[i].d * _cvtsh_ss(x[i].d)), acc);
  }
  return hsum(acc) - hsum(acc_min);
}

ONECARD_AVX2 float dot_q3_k(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ3_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    alignas(16) int16_t sc[16];
    for (int k = 0; k < 16; ++k) sc[k] = static_cast<int16_t>(quant::q3k_scale(k, x[i].scales) - 32);
    // The zero point 4 of the levels, exactly: 4 * sum_k scale_k * (activation sum of sub-block k).
    const __m256i zero_point = _mm256_slli_epi32(
        _mm256_madd_epi16(load256(y[i].bsums), _mm256_load_si256(reinterpret_cast<const __m256i*>(sc))), 2);
    const __m256i hm = load256(x[i].hmask);
    __m256i sum = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i q = load256(x[i].qs + 32 * h);
      for (int j = 0; j < 4; ++j) {
        // Elements 128h + 32j .. +31 (sub-blocks k and k + 1): two bits from qs, the third is bit 4h + j of
        // hmask's bytes.
        const int k = 8 * h + 2 * j;
        const __m256i high = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + j), one), 2);
        const __m256i lv = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3), high);
        const __m256i p = _mm256_maddubs_epi16(lv, load256(y[i].qs + 128 * h + 32 * j));
        const __m256i s = _mm256_setr_m128i(_mm_set1_epi16(sc[k]), _mm_set1_epi16(sc[k + 1]));
        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, s));
      }
    }
    const __m256i total = _mm256_sub_epi32(sum, zero_point);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(total), _mm256_set1_ps(y[i].d * _cvtsh_ss(x[i].d)), acc);
  }
  return hsum(acc);
}

ONECARD_AVX2 float dot_q5_k(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ5_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
  // Each min covers two 16-element activation sums: repeat it for both.
  const __m128i min_pairs = _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
  __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    alignas(16) uint8_t sm[16];
    x86::k_scales_mins(x[i].scales, sm);
    const __m128i sm8 = _mm_load_si128(reinterpret_cast<const __m128i*>(sm));
    const __m256i mins =
        _mm256_madd_epi16(load256(y[i].bsums), _mm256_cvtepu8_epi16(_mm_shuffle_epi8(sm8, min_pairs)));
    const float d = y[i].d * _cvtsh_ss(x[i].d), dmin = y[i].d * _cvtsh_ss(x[i].dmin);
    acc_min = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(dmin), acc_min);
    const __m256i qh = load256(x[i].qh);
    __m256i sum = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      // Sub-blocks 2c (low nibbles) and 2c + 1 (high nibbles); their fifth bits are bits 2c and 2c + 1 of qh.
      const __m256i q = load256(x[i].qs + 32 * c);
      const __m256i h_lo = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4);
      const __m256i h_hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4);
      const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), h_lo);
      const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), h_hi);
      const __m256i plo = _mm256_maddubs_epi16(lo, load256(y[i].qs + 64 * c));
      const __m256i phi = _mm256_maddubs_epi16(hi, load256(y[i].qs + 64 * c + 32));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(plo, _mm256_set1_epi16(sm[2 * c])));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(phi, _mm256_set1_epi16(sm[2 * c + 1])));
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(d), acc);
  }
  return hsum(acc) - hsum(acc_min);
}

// The signed grid values of IQ4_XS (IQ4_NL's), multiplied with the sign trick: biased by 128 as the integer
// view stores them, two products would saturate vpmaddubsw's int16 sums.
ONECARD_AVX2 float dot_iq4_xs(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const quant::BlockIQ4_XS*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m256i lut = _mm256_broadcastsi128_si256(
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(quant::kIq4nlValues.data())));
  const __m128i m4 = _mm_set1_epi8(0x0f);
  const __m256i ones16 = _mm256_set1_epi16(1);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    __m256i sum = _mm256_setzero_si256();
    for (int g = 0; g < 8; ++g) {
      const int ls = ((x[i].scales_l[g / 2] >> (4 * (g % 2))) & 15) | (((x[i].scales_h >> (2 * g)) & 3) << 4);
      // Elements 32g .. 32g + 15 in the low nibbles of 16 bytes, the next 16 in the high ones.
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].qs + 16 * g));
      const __m256i v = _mm256_shuffle_epi8(
          lut, _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4)));
      const __m256i av = load256(y[i].qs + 32 * g);
      const __m256i p =
          _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(v), _mm256_sign_epi8(av, v)), ones16);
      sum = _mm256_add_epi32(sum, _mm256_mullo_epi32(p, _mm256_set1_epi32(ls - 32)));
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(y[i].d * _cvtsh_ss(x[i].d)), acc);
  }
  return hsum(acc);
}

ONECARD_AVX2 float dot_q6_k(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ6_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    const int8_t* sc = x[i].scales;
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
    // The -32 zero point, exactly: 32 * sum_k scale_k * (activation sum of sub-block k).
    const __m256i zero_point = _mm256_slli_epi32(_mm256_madd_epi16(load256(y[i].bsums), sc16), 5);
    __m256i sum = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
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
        const int k = 8 * h + 2 * j;  // the first of the two 16-element sub-blocks of this quarter
        const __m256i p = _mm256_maddubs_epi16(q[j], load256(y[i].qs + 128 * h + 32 * j));
        const __m256i s = _mm256_setr_m128i(_mm_set1_epi16(sc[k]), _mm_set1_epi16(sc[k + 1]));
        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, s));
      }
    }
    const __m256i total = _mm256_sub_epi32(sum, zero_point);
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
    default: {
      const VecDotFn legacy = vec_dot_legacy_avx2(type);
      return legacy != nullptr ? legacy : vec_dot_unpacked_avx2(type);
    }
  }
}

}  // namespace onecard::cpu
