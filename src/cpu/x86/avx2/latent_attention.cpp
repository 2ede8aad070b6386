// AVX2 latent-attention products. Scores: blocks of 2 heads x 4 cache rows, each 8-column slice of a row
// converted once and multiplied with both heads' queries into 8 independent accumulators. Sums: 8 output
// columns of 8 heads held in registers while every cache row of the page adds its slice times each head's
// weight. Columns past the last multiple of 8 go one at a time.
#include "cpu/latent_attention.h"
#include "base/half.h"
#include "cpu/x86.h"

namespace onecard::cpu {
namespace {

ONECARD_AVX2 inline __m256 load8(const float* p) {
  return _mm256_loadu_ps(p);
}
ONECARD_AVX2 inline __m256 load8(const uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}
inline float value(const float* r, int64_t i) {
  return r[i];
}
inline float value(const uint16_t* r, int64_t i) {
  return bf16_to_fp32(r[i]);
}

template <class T, int NH, int NP>
ONECARD_AVX2 void score_block(const float* q, int64_t ldq, const T* r, int64_t width, float scale, float* s,
                              int64_t lds) {
  __m256 acc[NH][NP];
  for (int j = 0; j < NH; ++j)
    for (int p = 0; p < NP; ++p) acc[j][p] = _mm256_setzero_ps();
  const int64_t whole = width / 8 * 8;
  // A loop that runs at least once: with a plain for loop GCC also stores every accumulator to the stack on
  // every iteration.
  if (whole > 0) {
    int64_t c = 0;
    do {
      __m256 rv[NP];
      for (int p = 0; p < NP; ++p) rv[p] = load8(r + p * width + c);
      for (int j = 0; j < NH; ++j) {
        const __m256 qv = _mm256_loadu_ps(q + j * ldq + c);
        for (int p = 0; p < NP; ++p) acc[j][p] = _mm256_fmadd_ps(qv, rv[p], acc[j][p]);
      }
      c += 8;
    } while (c < whole);
  }
  for (int j = 0; j < NH; ++j) {
    for (int p = 0; p < NP; ++p) {
      float v = x86::hsum(acc[j][p]);
      for (int64_t c = whole; c < width; ++c) v += q[j * ldq + c] * value(r + p * width, c);
      s[j * lds + p] = v * scale;
    }
  }
}

template <class T>
ONECARD_AVX2 void scores(const float* q, int g, int64_t ldq, const void* rows, int64_t m, int64_t width,
                         float scale, float* s, int64_t lds) {
  const auto* r = static_cast<const T*>(rows);
  int j = 0;
  for (; j + 2 <= g; j += 2) {
    int64_t p = 0;
    for (; p + 4 <= m; p += 4)
      score_block<T, 2, 4>(q + j * ldq, ldq, r + p * width, width, scale, s + j * lds + p, lds);
    for (; p < m; ++p)
      score_block<T, 2, 1>(q + j * ldq, ldq, r + p * width, width, scale, s + j * lds + p, lds);
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
ONECARD_AVX2 void sum_block(const float* w, int64_t ldw, const T* r, int64_t m, int64_t width, int64_t n,
                            float* o, int64_t ldo) {
  const int64_t whole = n / 8 * 8;
  for (int64_t c = 0; c < whole; c += 8) {
    __m256 acc[NH];
    for (int j = 0; j < NH; ++j) acc[j] = _mm256_loadu_ps(o + j * ldo + c);
    for (int64_t p = 0; p < m; ++p) {
      const __m256 v = load8(r + p * width + c);
      for (int j = 0; j < NH; ++j) acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(w[j * ldw + p]), v, acc[j]);
    }
    for (int j = 0; j < NH; ++j) _mm256_storeu_ps(o + j * ldo + c, acc[j]);
  }
  for (int j = 0; j < NH; ++j) {
    for (int64_t p = 0; p < m; ++p) {
      for (int64_t c = whole; c < n; ++c) o[j * ldo + c] += w[j * ldw + p] * value(r + p * width, c);
    }
  }
}

template <class T>
ONECARD_AVX2 void sum(const float* w, int64_t ldw, int g, const void* rows, int64_t m, int64_t width,
                      int64_t n, float* o, int64_t ldo) {
  const auto* r = static_cast<const T*>(rows);
  int j = 0;
  for (; j + 8 <= g; j += 8) sum_block<T, 8>(w + j * ldw, ldw, r, m, width, n, o + j * ldo, ldo);
  for (; j < g; ++j) sum_block<T, 1>(w + j * ldw, ldw, r, m, width, n, o + j * ldo, ldo);
}

}  // namespace

LatentKernels latent_avx2(bool bf16) {
  return bf16 ? LatentKernels{scores<uint16_t>, sum<uint16_t>} : LatentKernels{scores<float>, sum<float>};
}

}  // namespace onecard::cpu
