// AVX-512 VNNI row dot products for the formats decode spends its time in. Nibbles are widened in registers
// and multiplied with vpmaddubsw; vpdpwssd then applies the sub-block scales and accumulates in one step.
#include "cpu/unpack_avx512.h"
#include "cpu/vec_dot.h"
#include "cpu/x86.h"
#include "quant/blocks.h"

namespace onecard::cpu {
namespace {

using quant::BlockQ4_K;
using quant::BlockQ6_K;
using quant::BlockQ8_K;
using x86::hsum;
using x86::prefetch_ahead;

// vpermw indices that spread 16 int16 scales over the 32 pair sums of one 64-element register: for span s
// (elements per scale, in pairs), lane l of register c takes scale first + l / s.
struct ScaleIndex {
  int16_t lanes[4][32];
  constexpr ScaleIndex(int pairs_per_scale, int scales_per_register, int first) : lanes{} {
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        lanes[c][l] = static_cast<int16_t>(first + c * scales_per_register + l / pairs_per_scale);
      }
    }
  }
};
constexpr ScaleIndex kQ4kScale(16, 2, 0);  // 32-element sub-blocks: 2 per register
constexpr ScaleIndex kQ6kScale(8, 4, 0);   // 16-element sub-blocks: 4 per register
// Each Q4_K min (int16 lanes 8..15 of the scale vector) covers two 16-element activation sums.
constexpr ScaleIndex kQ4kMin(2, 0, 8);

ONECARD_AVX512 __m512i load_index(const int16_t* p) {
  return _mm512_loadu_si512(p);
}

ONECARD_AVX512 float dot_q4_k(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ4_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const __m512i idx[4] = {load_index(kQ4kScale.lanes[0]), load_index(kQ4kScale.lanes[1]),
                          load_index(kQ4kScale.lanes[2]), load_index(kQ4kScale.lanes[3])};
  const __m256i min_idx = _mm512_castsi512_si256(load_index(kQ4kMin.lanes[0]));
  __m512 acc = _mm512_setzero_ps();
  __m256 acc_min = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    prefetch_ahead(x + i, 3);  // 144-byte blocks: three lines cover one wherever it starts
    const __m256i sm16 = _mm256_cvtepu8_epi16(x86::k_scales_mins_vec(x[i].scales));
    const __m512i sc = _mm512_castsi256_si512(sm16);
    const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].bsums));
    const __m256i mins = _mm256_madd_epi16(bsums, _mm256_permutexvar_epi16(min_idx, sm16));
    // d and dmin (adjacent fp16) widened together, times the activation scale.
    int32_t d_dmin;
    std::memcpy(&d_dmin, &x[i].d, 4);
    const __m128 dd = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(d_dmin)), _mm_set1_ps(y[i].d));
    acc_min = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_broadcastss_ps(_mm_movehdup_ps(dd)), acc_min);
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    for (int c = 0; c < 4; ++c) {
      // Bytes 0-31: low nibbles (sub-block 2c), bytes 32-63: high nibbles (2c + 1).
      const __m512i q =
          _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + 32 * c)));
      const __m512i wq = _mm512_and_si512(_mm512_mask_srli_epi16(q, 0xffff0000u, q, 4), m4);
      const __m512i p = _mm512_maddubs_epi16(wq, _mm512_loadu_si512(y[i].qs + 64 * c));
      const __m512i s = _mm512_permutexvar_epi16(idx[c], sc);
      if (c % 2 == 0) {
        s0 = _mm512_dpwssd_epi32(s0, p, s);
      } else {
        s1 = _mm512_dpwssd_epi32(s1, p, s);
      }
    }
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), _mm512_broadcastss_ps(dd), acc);
  }
  return hsum(acc) - hsum(acc_min);
}

ONECARD_AVX512 float dot_q6_k(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ6_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
  const __m512i idx[4] = {load_index(kQ6kScale.lanes[0]), load_index(kQ6kScale.lanes[1]),
                          load_index(kQ6kScale.lanes[2]), load_index(kQ6kScale.lanes[3])};
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    prefetch_ahead(x + i, 4);  // 210-byte blocks: four lines cover one wherever it starts
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales)));
    const __m512i sc = _mm512_castsi256_si512(sc16);
    // The -32 zero point, exactly: 32 * sum_k scale_k * (activation sum of sub-block k).
    const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].bsums));
    const __m512i zero_point = _mm512_zextsi256_si512(_mm256_slli_epi32(_mm256_madd_epi16(bsums, sc16), 5));
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m512i ql = _mm512_loadu_si512(x[i].ql + 64 * h);
      const __m512i qh =
          _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qh + 32 * h)));
      // High bits of quarters 0 and 1 (shifts 0 and 2), then of quarters 2 and 3 (shifts 4 and 6).
      const __m512i h01 = _mm512_mask_srli_epi16(qh, 0xffff0000u, qh, 2);
      const __m512i h23 = _mm512_srli_epi16(h01, 4);
      const __m512i q01 =
          _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_slli_epi16(h01, 4), m30));
      const __m512i q23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                          _mm512_and_si512(_mm512_slli_epi16(h23, 4), m30));
      const __m512i p01 = _mm512_maddubs_epi16(q01, _mm512_loadu_si512(y[i].qs + 128 * h));
      const __m512i p23 = _mm512_maddubs_epi16(q23, _mm512_loadu_si512(y[i].qs + 128 * h + 64));
      s0 = _mm512_dpwssd_epi32(s0, p01, _mm512_permutexvar_epi16(idx[2 * h], sc));
      s1 = _mm512_dpwssd_epi32(s1, p23, _mm512_permutexvar_epi16(idx[2 * h + 1], sc));
    }
    const __m512i total = _mm512_sub_epi32(_mm512_add_epi32(s0, s1), zero_point);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(total), _mm512_set1_ps(y[i].d * _cvtsh_ss(x[i].d)), acc);
  }
  return hsum(acc);
}

}  // namespace

VecDotFn vec_dot_avx512(gguf::GgmlType type) {
  switch (type) {
    case gguf::GgmlType::Q4_K:
      return dot_q4_k;
    case gguf::GgmlType::Q6_K:
      return dot_q6_k;
    // The AVX2 row dots of these (vec_dot_avx2.cpp) beat the AVX-512 ones on the unpacking, which spend
    // more per block than 512-bit registers save: the table keeps them.
    case gguf::GgmlType::Q2_K:
    case gguf::GgmlType::Q3_K:
    case gguf::GgmlType::Q5_K:
    case gguf::GgmlType::IQ4_XS:
      return nullptr;
    default: {
      const VecDotFn legacy = vec_dot_legacy_avx512(type);
      return legacy != nullptr ? legacy : vec_dot_unpacked_avx512(type);
    }
  }
}

}  // namespace onecard::cpu
