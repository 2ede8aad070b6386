// AVX-512 latent-attention products. Scores: blocks of 4 heads x 4 cache rows, each 16-column slice of a row
// converted once and multiplied with the 4 heads' queries into 16 independent accumulators. Sums: 16 output
// columns of 8 heads held in registers while every cache row of the page adds its slice times each head's
// weight.
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

LatentKernels latent_avx512(bool bf16) {
  return bf16 ? LatentKernels{scores<uint16_t>, sum<uint16_t>} : LatentKernels{scores<float>, sum<float>};
}

}  // namespace onecard::cpu
