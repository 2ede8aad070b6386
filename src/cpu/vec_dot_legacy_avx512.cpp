// AVX-512 VNNI row dots of the 32-element formats with Q8_0 activations, built as the AVX2 ones
// (vec_dot_legacy_avx2.cpp: eight blocks reduced together, their fp16 scales widened at once) with vpdpbusd
// giving each block's int32 sums in one step, and the fifth bits of Q5_0/Q5_1 set from a mask. vpdpbusd
// does not saturate, so the unsigned levels go in as they are and the zero point through a second vpdpbusd;
// IQ4_NL keeps the sign trick for its signed values.
#include "cpu/vec_dot.h"
#include "cpu/x86.h"
#include "quant/blocks.h"
#include "quant/iq_tables.h"

namespace onecard::cpu {
namespace {

using quant::BlockQ8_0;

ONECARD_AVX512 __m256i load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

ONECARD_AVX512 uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// Elements 0-15 in the low nibbles of the 16 bytes, 16-31 in the high ones.
ONECARD_AVX512 __m256i nibbles(const uint8_t* qs) {
  const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  return _mm256_and_si256(_mm256_srlv_epi64(q, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
}

// The fifth bit of element j is bit j of qh.
ONECARD_AVX512 __m256i fifth_bits(const uint8_t* qh) {
  return _mm256_maskz_mov_epi8(quant::load_u32(qh), _mm256_set1_epi8(16));
}

// A format: its block size, where its fp16 offset lies (kM < 0: none), and its 32 levels times the
// activations as int32 sums of four (with the zero point already taken off).
template <int kBytes_, int kM_>
struct Layout {
  static constexpr int kBytes = kBytes_;
  static constexpr int kM = kM_;
};

ONECARD_AVX512 __m256i dot4(__m256i q, __m256i av) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, av);
}

ONECARD_AVX512 __m256i minus_zero(__m256i q, __m256i av, int zero) {
  return _mm256_sub_epi32(dot4(q, av), dot4(_mm256_set1_epi8(static_cast<char>(zero)), av));
}

struct Q4_0 : Layout<18, -1> {
  ONECARD_AVX512 static __m256i sums(const uint8_t* b, __m256i av) {
    return minus_zero(nibbles(b + 2), av, 8);
  }
};

struct Q4_1 : Layout<20, 2> {
  ONECARD_AVX512 static __m256i sums(const uint8_t* b, __m256i av) { return dot4(nibbles(b + 4), av); }
};

struct Q5_0 : Layout<22, -1> {
  ONECARD_AVX512 static __m256i sums(const uint8_t* b, __m256i av) {
    return minus_zero(_mm256_or_si256(nibbles(b + 6), fifth_bits(b + 2)), av, 16);
  }
};

struct Q5_1 : Layout<24, 2> {
  ONECARD_AVX512 static __m256i sums(const uint8_t* b, __m256i av) {
    return dot4(_mm256_or_si256(nibbles(b + 8), fifth_bits(b + 4)), av);
  }
};

struct IQ4_NL : Layout<18, -1> {
  ONECARD_AVX512 static __m256i sums(const uint8_t* b, __m256i av) {
    const __m256i lut = _mm256_broadcastsi128_si256(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(quant::kIq4nlValues.data())));
    const __m256i v = _mm256_shuffle_epi8(lut, nibbles(b + 2));
    return dot4(_mm256_abs_epi8(v), _mm256_sign_epi8(av, v));
  }
};

// Eight int32 vectors reduced to two: lanes b and 4 + b of the first hold halves of block b's sum, of the
// second block 4 + b's.
ONECARD_AVX512 void reduce8(const __m256i* v, __m256i& lo, __m256i& hi) {
  lo = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
  hi = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
}

// The fp16 at byte `offset` of eight blocks `stride` bytes apart, widened; one vpinsrw from memory each.
ONECARD_AVX512 __m256 halves8(const uint8_t* p, int stride, int offset) {
  p += offset;
  __m128i h = _mm_cvtsi32_si128(load_u16(p));
  h = _mm_insert_epi16(h, load_u16(p + stride), 1);
  h = _mm_insert_epi16(h, load_u16(p + 2 * stride), 2);
  h = _mm_insert_epi16(h, load_u16(p + 3 * stride), 3);
  h = _mm_insert_epi16(h, load_u16(p + 4 * stride), 4);
  h = _mm_insert_epi16(h, load_u16(p + 5 * stride), 5);
  h = _mm_insert_epi16(h, load_u16(p + 6 * stride), 6);
  h = _mm_insert_epi16(h, load_u16(p + 7 * stride), 7);
  return _mm256_cvtph_ps(h);
}

// acc += the sums (lo, hi) of reduce8 times the scales s of their eight blocks.
ONECARD_AVX512 __m256 scale8(__m256i lo, __m256i hi, __m256 s, __m256 acc) {
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo), _mm256_permute2f128_ps(s, s, 0x00), acc);
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi), _mm256_permute2f128_ps(s, s, 0x11), acc);
}

// Per block: s (D - z A) + m A, times the activation scale, with D = sum q a and A = sum a.
template <class F>
ONECARD_AVX512 float dot_legacy(const IntFormat&, int64_t n, const void* w, const void* a) {
  constexpr bool kAffine = F::kM >= 0;
  const auto* x = static_cast<const uint8_t*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const int64_t nb = n / quant::kQK;
  const __m256i ones8 = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps(), acc_m = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= nb; i += 8) {
    const uint8_t* b = x + i * F::kBytes;
    x86::prefetch_ahead(b, 3);  // eight blocks: at most 192 bytes
    __m256i d[8], s[8];
    for (int k = 0; k < 8; ++k) {
      const __m256i av = load256(y[i + k].qs);
      d[k] = F::sums(b + k * F::kBytes, av);
      if constexpr (kAffine) s[k] = dot4(ones8, av);
    }
    const __m256 ad = halves8(reinterpret_cast<const uint8_t*>(y + i), sizeof(BlockQ8_0), 0);
    __m256i lo, hi;
    reduce8(d, lo, hi);
    acc = scale8(lo, hi, _mm256_mul_ps(halves8(b, F::kBytes, 0), ad), acc);
    if constexpr (kAffine) {
      reduce8(s, lo, hi);
      acc_m = scale8(lo, hi, _mm256_mul_ps(halves8(b, F::kBytes, F::kM), ad), acc_m);
    }
  }
  for (; i < nb; ++i) {
    const uint8_t* b = x + i * F::kBytes;
    const __m256i av = load256(y[i].qs);
    const float ad = _cvtsh_ss(y[i].d);
    const __m256 dq = _mm256_cvtepi32_ps(F::sums(b, av));
    acc = _mm256_fmadd_ps(dq, _mm256_set1_ps(_cvtsh_ss(load_u16(b)) * ad), acc);
    if constexpr (kAffine) {
      const __m256 sa = _mm256_cvtepi32_ps(dot4(ones8, av));
      acc_m = _mm256_fmadd_ps(sa, _mm256_set1_ps(_cvtsh_ss(load_u16(b + F::kM)) * ad), acc_m);
    }
  }
  return x86::hsum(_mm256_add_ps(acc, acc_m));
}

}  // namespace

VecDotFn vec_dot_legacy_avx512(gguf::GgmlType type) {
  switch (type) {
    case gguf::GgmlType::Q4_0:
      return dot_legacy<Q4_0>;
    case gguf::GgmlType::Q4_1:
      return dot_legacy<Q4_1>;
    case gguf::GgmlType::Q5_0:
      return dot_legacy<Q5_0>;
    case gguf::GgmlType::Q5_1:
      return dot_legacy<Q5_1>;
    case gguf::GgmlType::IQ4_NL:
      return dot_legacy<IQ4_NL>;
    default:
      return nullptr;
  }
}

}  // namespace onecard::cpu
