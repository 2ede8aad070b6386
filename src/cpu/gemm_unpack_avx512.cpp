// AVX-512 unpacking of the formats MoE batches spend their time on. At 16 tokens per expert each weight
// feeds only 16 multiply-adds, so unpacking must cost a few instructions per 64 weights; these produce the
// same layout and values as the generic unpack_rows.
#include "cpu/gemm.h"
#include "cpu/x86.h"
#include "quant/blocks.h"

namespace onecard::cpu {
namespace {

using quant::BlockQ4_K;
using quant::BlockQ6_K;
using quant::BlockQ8_0;

constexpr int kPrefetchAhead = 2048;  // bytes
ONECARD_AVX512 void q4_k_row(const BlockQ4_K* x, int64_t units, UnpackedRow out) {
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  for (int64_t i = 0; i < units; ++i) {
    // Weights come from memory once per batch; asking for lines well ahead keeps more requests in flight
    // than the hardware prefetcher does inside this short, busy loop.
    _mm_prefetch(reinterpret_cast<const char*>(x + i) + kPrefetchAhead, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(x + i) + kPrefetchAhead + 64, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(x + i) + kPrefetchAhead + 128, _MM_HINT_T0);
    for (int c = 0; c < 4; ++c) {
      const __m512i q =
          _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + 32 * c)));
      const __m512i v = _mm512_and_si512(_mm512_mask_srli_epi16(q, 0xffff0000u, q, 4), m4);
      _mm512_storeu_si512(out.levels + i * 256 + 64 * c, v);
    }
    // Scales times d in the low half, mins times -dmin in the high half: s and m of the 8 sub-blocks.
    const __m512 scm = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(x86::k_scales_mins_avx512(x[i].scales)));
    const __m512 f =
        _mm512_insertf32x8(_mm512_set1_ps(_cvtsh_ss(x[i].d)), _mm256_set1_ps(-_cvtsh_ss(x[i].dmin)), 1);
    const __m512 sv = _mm512_mul_ps(scm, f);
    _mm256_storeu_ps(out.s + 8 * i, _mm512_castps512_ps256(sv));
    _mm256_storeu_ps(out.m + 8 * i, _mm512_extractf32x8_ps(sv, 1));
  }
}

ONECARD_AVX512 void q6_k_row(const BlockQ6_K* x, int64_t units, UnpackedRow out) {
  const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
  for (int64_t i = 0; i < units; ++i) {
    for (int h = 0; h < 2; ++h) {
      const __m512i ql = _mm512_loadu_si512(x[i].ql + 64 * h);
      const __m512i qh =
          _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qh + 32 * h)));
      const __m512i h01 = _mm512_mask_srli_epi16(qh, 0xffff0000u, qh, 2);
      const __m512i h23 = _mm512_srli_epi16(h01, 4);
      const __m512i q01 =
          _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_slli_epi16(h01, 4), m30));
      const __m512i q23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                          _mm512_and_si512(_mm512_slli_epi16(h23, 4), m30));
      _mm512_storeu_si512(out.levels + i * 256 + 128 * h, q01);
      _mm512_storeu_si512(out.levels + i * 256 + 128 * h + 64, q23);
    }
    const __m512 sc = _mm512_cvtepi32_ps(
        _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales))));
    _mm512_storeu_ps(out.s + 16 * i, _mm512_mul_ps(sc, _mm512_set1_ps(_cvtsh_ss(x[i].d))));
  }
}

ONECARD_AVX512 void q8_0_row(const BlockQ8_0* x, int64_t units, UnpackedRow out) {
  for (int64_t i = 0; i < units; ++i) {
    // Signed levels + 128: the unsigned levels of the integer view.
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.levels + 32 * i),
                        _mm256_xor_si256(q, _mm256_set1_epi8(static_cast<char>(0x80))));
    out.s[i] = _cvtsh_ss(x[i].d);
  }
}

}  // namespace

bool unpack_rows_avx512(const IntFormat& f, const Matrix& w, int64_t r0, int64_t nr, uint8_t* buf) {
  const int64_t n = w.cols, units = n / f.unit;
  for (int64_t r = 0; r < nr; ++r) {
    const UnpackedRow out = unpacked_row(f, n, nr, buf, r);
    const void* src = w.row(r0 + r);
    switch (f.type) {
      case gguf::GgmlType::Q4_K:
        q4_k_row(static_cast<const BlockQ4_K*>(src), units, out);
        break;
      case gguf::GgmlType::Q6_K:
        q6_k_row(static_cast<const BlockQ6_K*>(src), units, out);
        break;
      case gguf::GgmlType::Q8_0:
        q8_0_row(static_cast<const BlockQ8_0*>(src), units, out);
        break;
      default:
        return false;
    }
  }
  return true;
}

}  // namespace onecard::cpu
