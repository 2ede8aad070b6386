// AVX-512 latent-attention products. Scores: blocks of 4 heads x 4 cache rows, each 16-column slice of a row
// converted once and multiplied with the 4 heads' queries into 16 independent accumulators; with AVX512-BF16
// the same blocks over 32-column slices by vdpbf16ps, the bf16 rows as they lie and the queries (bf16
// values, latent_attention.h) converted exactly. Sums: 16 output columns of 8 heads held in registers while
// every cache row of the page adds its slice times each head's weight.
#include "cpu/latent_attention.h"
#include "cpu/x86.h"

namespace onecard::cpu {
namespace {

ONECARD_AVX512 inline __m512 load16(const float* p, __mmask16 k) {
  return _mm512_maskz_loadu_ps(k, p);
}
ONECARD_AVX512 inline __m512 load16(const uint16_t* p, __mmask16 k) {
  const __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

ONECARD_AVX512 inline __mmask16 first(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1);
}

template <class T, int NH, int NP>
ONECARD_AVX512 void score_block(const float* q, int64_t ldq, const T* r, int64_t width, float scale, float* s,
                                int64_t lds) {
  __m512 acc[NH][NP];
  for (int j = 0; j < NH; ++j)
    for (int p = 0; p < NP; ++p) acc[j][p] = _mm512_setzero_ps();
  // width > 0: a loop that runs at least once lets GCC keep acc in registers only (with a for loop it also
  // stores every accumulator to the stack on every iteration).
  int64_t c = 0;
  do {
    const __mmask16 k = first(width - c);
    __m512 rv[NP];
    for (int p = 0; p < NP; ++p) rv[p] = load16(r + p * width + c, k);
    for (int j = 0; j < NH; ++j) {
      const __m512 qv = load16(q + j * ldq + c, k);
      for (int p = 0; p < NP; ++p) acc[j][p] = _mm512_fmadd_ps(qv, rv[p], acc[j][p]);
    }
    c += 16;
  } while (c < width);
  for (int j = 0; j < NH; ++j)
    for (int p = 0; p < NP; ++p) s[j * lds + p] = _mm512_reduce_add_ps(acc[j][p]) * scale;
}

template <class T>
ONECARD_AVX512 void scores(const float* q, int g, int64_t ldq, const void* rows, int64_t m, int64_t width,
                           float scale, float* s, int64_t lds) {
  const auto* r = static_cast<const T*>(rows);
  int j = 0;
  for (; j + 4 <= g; j += 4) {
    int64_t p = 0;
    for (; p + 4 <= m; p += 4)
      score_block<T, 4, 4>(q + j * ldq, ldq, r + p * width, width, scale, s + j * lds + p, lds);
    for (; p < m; ++p)
      score_block<T, 4, 1>(q + j * ldq, ldq, r + p * width, width, scale, s + j * lds + p, lds);
  }
  for (; j < g; ++j) {
    int64_t p = 0;
    for (; p + 4 <= m; p += 4)
      score_block<T, 1, 4>(q + j * ldq, ldq, r + p * width, width, scale, s + j * lds + p, lds);
    for (; p < m; ++p)
      score_block<T, 1, 1>(q + j * ldq, ldq, r + p * width, width, scale, s + j * lds + p, lds);
  }
}

#define ONECARD_AVX512_BF16 \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512bf16")))

ONECARD_AVX512_BF16 inline __mmask32 first32(int64_t n) {
  return n >= 32 ? static_cast<__mmask32>(0xffffffffu) : static_cast<__mmask32>((1u << n) - 1);
}

// Columns [c, c + 32) of a query (masked by k) as bf16, exactly: the values are bf16 already.
ONECARD_AVX512_BF16 inline __m512bh query32(const float* q, __mmask32 k) {
  const __m512 lo = _mm512_maskz_loadu_ps(static_cast<__mmask16>(k), q);
  const __m512 hi = _mm512_maskz_loadu_ps(static_cast<__mmask16>(k >> 16), q + 16);
  return _mm512_cvtne2ps_pbh(hi, lo);
}

template <int NH, int NP>
ONECARD_AVX512_BF16 void score_block_bf16dot(const float* q, int64_t ldq, const uint16_t* r, int64_t width,
                                             float scale, float* s, int64_t lds) {
  __m512 acc[NH][NP];
  for (int j = 0; j < NH; ++j)
    for (int p = 0; p < NP; ++p) acc[j][p] = _mm512_setzero_ps();
  int64_t c = 0;
  do {
    const __mmask32 k = first32(width - c);
    __m512bh rv[NP];
    for (int p = 0; p < NP; ++p) rv[p] = (__m512bh)_mm512_maskz_loadu_epi16(k, r + p * width + c);
    for (int j = 0; j < NH; ++j) {
      const __m512bh qv = query32(q + j * ldq + c, k);
      for (int p = 0; p < NP; ++p) acc[j][p] = _mm512_dpbf16_ps(acc[j][p], qv, rv[p]);
    }
    c += 32;
  } while (c < width);
  for (int j = 0; j < NH; ++j)
    for (int p = 0; p < NP; ++p) s[j * lds + p] = _mm512_reduce_add_ps(acc[j][p]) * scale;
}

ONECARD_AVX512_BF16 void scores_bf16dot(const float* q, int g, int64_t ldq, const void* rows, int64_t m,
                                        int64_t width, float scale, float* s, int64_t lds) {
  const auto* r = static_cast<const uint16_t*>(rows);
  int j = 0;
  for (; j + 4 <= g; j += 4) {
    int64_t p = 0;
    for (; p + 4 <= m; p += 4)
      score_block_bf16dot<4, 4>(q + j * ldq, ldq, r + p * width, width, scale, s + j * lds + p, lds);
    for (; p < m; ++p)
      score_block_bf16dot<4, 1>(q + j * ldq, ldq, r + p * width, width, scale, s + j * lds + p, lds);
  }
  for (; j < g; ++j) {
    int64_t p = 0;
    for (; p + 4 <= m; p += 4)
      score_block_bf16dot<1, 4>(q + j * ldq, ldq, r + p * width, width, scale, s + j * lds + p, lds);
    for (; p < m; ++p)
      score_block_bf16dot<1, 1>(q + j * ldq, ldq, r + p * width, width, scale, s + j * lds + p, lds);
  }
}

template <class T, int NH>
ONECARD_AVX512 void sum_block(const float* w, int64_t ldw, const T* r, int64_t m, int64_t width, int64_t n,
                              float* o, int64_t ldo) {
  for (int64_t c = 0; c < n; c += 16) {
    const __mmask16 k = first(n - c);
    __m512 acc[NH];
    for (int j = 0; j < NH; ++j) acc[j] = _mm512_maskz_loadu_ps(k, o + j * ldo + c);
    for (int64_t p = 0; p < m; ++p) {
      const __m512 v = load16(r + p * width + c, k);
      for (int j = 0; j < NH; ++j) acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(w[j * ldw + p]), v, acc[j]);
    }
    for (int j = 0; j < NH; ++j) _mm512_mask_storeu_ps(o + j * ldo + c, k, acc[j]);
  }
}

template <class T>
ONECARD_AVX512 void sum(const float* w, int64_t ldw, int g, const void* rows, int64_t m, int64_t width,
                        int64_t n, float* o, int64_t ldo) {
  const auto* r = static_cast<const T*>(rows);
  int j = 0;
  for (; j + 8 <= g; j += 8) sum_block<T, 8>(w + j * ldw, ldw, r, m, width, n, o + j * ldo, ldo);
  for (; j < g; ++j) sum_block<T, 1>(w + j * ldw, ldw, r, m, width, n, o + j * ldo, ldo);
}

}  // namespace

LatentKernels latent_avx512(bool bf16, bool bf16_dot) {
  if (!bf16) return LatentKernels{scores<float>, sum<float>};
  if (bf16_dot) return LatentKernels{scores_bf16dot, sum<uint16_t>, true};
  return LatentKernels{scores<uint16_t>, sum<uint16_t>};
}

}  // namespace onecard::cpu
