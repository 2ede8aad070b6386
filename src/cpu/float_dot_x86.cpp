// AVX2 and AVX-512 float rows: F16 widened with vcvtph2ps, BF16 by a 16-bit shift, both exact; fp32 FMA.
#include "base/half.h"
#include "cpu/float_dot.h"
#include "cpu/x86.h"

namespace onecard::cpu {
namespace {

using gguf::GgmlType;

struct Avx2Loads {
  ONECARD_AVX2 static __m256 zero() { return _mm256_setzero_ps(); }
  ONECARD_AVX2 static __m256 add(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
  ONECARD_AVX2 static __m256 fma(__m256 w, const float* x, __m256 acc) {
    return _mm256_fmadd_ps(w, _mm256_loadu_ps(x), acc);
  }
  template <GgmlType T>
  ONECARD_AVX2 static __m256 load(const void* p) {
    return T == GgmlType::F32 ? f32(p) : T == GgmlType::F16 ? f16(p) : bf16(p);
  }
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
  ONECARD_AVX512 static __m512 zero() { return _mm512_setzero_ps(); }
  ONECARD_AVX512 static __m512 add(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
  ONECARD_AVX512 static __m512 fma(__m512 w, const float* x, __m512 acc) {
    return _mm512_fmadd_ps(w, _mm512_loadu_ps(x), acc);
  }
  template <GgmlType T>
  ONECARD_AVX512 static __m512 load(const void* p) {
    return T == GgmlType::F32 ? f32(p) : T == GgmlType::F16 ? f16(p) : bf16(p);
  }
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

// With few tokens, one accumulator per token would leave the loop waiting on the FMA latency (4 cycles per
// vector: F16 and BF16 rows then read at about half the memory's speed), so each token gets kChains
// independent ones, added at the end.
template <int NT>
constexpr int kChains = NT == 1   ? 4
                        : NT == 2 ? 2
                                  : 1;

template <GgmlType T, int NT>
ONECARD_AVX2 void avx2_rows(const void* w, const float* x, int64_t ldx, int64_t n, float* out) {
  using L = Avx2Loads;
  using V = __m256;
  constexpr int kW = 8, kC = kChains<NT>, kStep = kW * kC;
  // Once per line (x86::prefetch_ahead_l2): a step reads kStepBytes.
  constexpr int kStepBytes = kStep * kElemBytes<T>;
  constexpr int kEvery = kStepBytes >= 64 ? 1 : 64 / kStepBytes;
  constexpr int kLines = kStepBytes >= 64 ? kStepBytes / 64 : 1;
  const auto* wb = static_cast<const uint8_t*>(w);
  V acc[NT][kC];
  for (int t = 0; t < NT; ++t)
    for (int j = 0; j < kC; ++j) acc[t][j] = L::zero();
  int64_t c = 0;
  for (int64_t step = 0; c + kStep <= n; c += kStep, ++step) {
    if (step % kEvery == 0) x86::prefetch_ahead_l2(wb + c * kElemBytes<T>, kLines);
    for (int j = 0; j < kC; ++j) {
      const V wv = L::template load<T>(wb + (c + kW * j) * kElemBytes<T>);
      for (int t = 0; t < NT; ++t) acc[t][j] = L::fma(wv, x + t * ldx + c + kW * j, acc[t][j]);
    }
  }
  for (; c + kW <= n; c += kW) {
    const V wv = L::template load<T>(wb + c * kElemBytes<T>);
    for (int t = 0; t < NT; ++t) acc[t][0] = L::fma(wv, x + t * ldx + c, acc[t][0]);
  }
  for (int t = 0; t < NT; ++t) {
    float tail = 0;
    for (int64_t k = c; k < n; ++k) tail += widen(T, w, k) * x[t * ldx + k];
    for (int j = 1; j < kC; ++j) acc[t][0] = L::add(acc[t][0], acc[t][j]);
    out[t] = x86::hsum(acc[t][0]) + tail;
  }
}

template <GgmlType T, int NT>
ONECARD_AVX512 void avx512_rows(const void* w, const float* x, int64_t ldx, int64_t n, float* out) {
  using L = Avx512Loads;
  using V = __m512;
  constexpr int kW = 16, kC = kChains<NT>, kStep = kW * kC;
  // Once per line (x86::prefetch_ahead_l2): a step reads kStepBytes.
  constexpr int kStepBytes = kStep * kElemBytes<T>;
  constexpr int kEvery = kStepBytes >= 64 ? 1 : 64 / kStepBytes;
  constexpr int kLines = kStepBytes >= 64 ? kStepBytes / 64 : 1;
  const auto* wb = static_cast<const uint8_t*>(w);
  V acc[NT][kC];
  for (int t = 0; t < NT; ++t)
    for (int j = 0; j < kC; ++j) acc[t][j] = L::zero();
  int64_t c = 0;
  for (int64_t step = 0; c + kStep <= n; c += kStep, ++step) {
    if (step % kEvery == 0) x86::prefetch_ahead_l2(wb + c * kElemBytes<T>, kLines);
    for (int j = 0; j < kC; ++j) {
      const V wv = L::template load<T>(wb + (c + kW * j) * kElemBytes<T>);
      for (int t = 0; t < NT; ++t) acc[t][j] = L::fma(wv, x + t * ldx + c + kW * j, acc[t][j]);
    }
  }
  for (; c + kW <= n; c += kW) {
    const V wv = L::template load<T>(wb + c * kElemBytes<T>);
    for (int t = 0; t < NT; ++t) acc[t][0] = L::fma(wv, x + t * ldx + c, acc[t][0]);
  }
  for (int t = 0; t < NT; ++t) {
    float tail = 0;
    for (int64_t k = c; k < n; ++k) tail += widen(T, w, k) * x[t * ldx + k];
    for (int j = 1; j < kC; ++j) acc[t][0] = L::add(acc[t][0], acc[t][j]);
    out[t] = x86::hsum(acc[t][0]) + tail;
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
