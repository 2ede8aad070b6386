// AVX2 and AVX-512 float rows: F16 widened with vcvtph2ps, BF16 by a 16-bit shift, both exact; fp32 FMA.
#include "base/half.h"
#include "cpu/float_dot.h"
#include "cpu/x86.h"

namespace onecard::cpu {
namespace {

using gguf::GgmlType;

struct Avx2Loads {
  ONECARD_AVX2 static __m256 f32(const void* p) { return _mm256_loadu_ps(static_cast<const float*>(p)); }
  ONECARD_AVX2 static __m256 f16(const void* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(static_cast<const __m128i*>(p)));
  }
  ONECARD_AVX2 static __m256 bf16(const void* p) {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(static_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }
};

struct Avx512Loads {
  ONECARD_AVX512 static __m512 f32(const void* p) { return _mm512_loadu_ps(p); }
  ONECARD_AVX512 static __m512 f16(const void* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(static_cast<const __m256i*>(p)));
  }
  ONECARD_AVX512 static __m512 bf16(const void* p) {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(static_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  }
};

// The elements past the last full vector, widened one at a time.
float widen(GgmlType type, const void* w, int64_t c) {
  if (type == GgmlType::F32) return static_cast<const float*>(w)[c];
  const uint16_t h = static_cast<const uint16_t*>(w)[c];
  return type == GgmlType::F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
}

template <GgmlType T>
constexpr int kElemBytes = T == GgmlType::F32 ? 4 : 2;

template <GgmlType T, int NT>
ONECARD_AVX2 void avx2_rows(const void* w, const float* x, int64_t ldx, int64_t n, float* out) {
  const auto* wb = static_cast<const uint8_t*>(w);
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) {
    const void* p = wb + c * kElemBytes<T>;
    const __m256 wv = T == GgmlType::F32   ? Avx2Loads::f32(p)
                      : T == GgmlType::F16 ? Avx2Loads::f16(p)
                                           : Avx2Loads::bf16(p);
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + t * ldx + c), acc[t]);
  }
  for (int t = 0; t < NT; ++t) {
    float tail = 0;
    for (int64_t k = c; k < n; ++k) tail += widen(T, w, k) * x[t * ldx + k];
    out[t] = x86::hsum(acc[t]) + tail;
  }
}

template <GgmlType T, int NT>
ONECARD_AVX512 void avx512_rows(const void* w, const float* x, int64_t ldx, int64_t n, float* out) {
  const auto* wb = static_cast<const uint8_t*>(w);
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 16 <= n; c += 16) {
    const void* p = wb + c * kElemBytes<T>;
    // Once per line, as the quantized row dots do (x86::prefetch_ahead).
    if (c % (64 / kElemBytes<T>) == 0) x86::prefetch_ahead(p, 1);
    const __m512 wv = T == GgmlType::F32   ? Avx512Loads::f32(p)
                      : T == GgmlType::F16 ? Avx512Loads::f16(p)
                                           : Avx512Loads::bf16(p);
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + t * ldx + c), acc[t]);
  }
  for (int t = 0; t < NT; ++t) {
    float tail = 0;
    for (int64_t k = c; k < n; ++k) tail += widen(T, w, k) * x[t * ldx + k];
    out[t] = x86::hsum(acc[t]) + tail;
  }
}

template <GgmlType T>
void avx2_dot(const void* w, const float* x, int64_t ldx, int nt, int64_t n, float* out) {
  switch (nt) {
    case 1:
      return avx2_rows<T, 1>(w, x, ldx, n, out);
    case 2:
      return avx2_rows<T, 2>(w, x, ldx, n, out);
    case 3:
      return avx2_rows<T, 3>(w, x, ldx, n, out);
    default:
      return avx2_rows<T, 4>(w, x, ldx, n, out);
  }
}

template <GgmlType T>
void avx512_dot(const void* w, const float* x, int64_t ldx, int nt, int64_t n, float* out) {
  switch (nt) {
    case 1:
      return avx512_rows<T, 1>(w, x, ldx, n, out);
    case 2:
      return avx512_rows<T, 2>(w, x, ldx, n, out);
    case 3:
      return avx512_rows<T, 3>(w, x, ldx, n, out);
    default:
      return avx512_rows<T, 4>(w, x, ldx, n, out);
  }
}

}  // namespace

FloatDotFn float_dot_avx2(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
      return avx2_dot<GgmlType::F32>;
    case GgmlType::F16:
      return avx2_dot<GgmlType::F16>;
    case GgmlType::BF16:
      return avx2_dot<GgmlType::BF16>;
    default:
      return nullptr;
  }
}

FloatDotFn float_dot_avx512(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
      return avx512_dot<GgmlType::F32>;
    case GgmlType::F16:
      return avx512_dot<GgmlType::F16>;
    case GgmlType::BF16:
      return avx512_dot<GgmlType::BF16>;
    default:
      return nullptr;
  }
}

}  // namespace onecard::cpu
