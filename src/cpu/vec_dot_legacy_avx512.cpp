// AVX-512 VNNI row dots of the 32-element formats with Q8_0 activations, built as the AVX2 ones
// (vec_dot_legacy_avx2.cpp: eight blocks reduced together, their fp16 scales widened at once) with vpdpbusd
// giving each block's int32 sums in one step, and the fifth bits of Q5_0/Q5_1 set from a mask. vpdpbusd
// does not saturate, so every format's levels go in unsigned (IQ4_NL's biased by 128) and the zero point
// comes off the eight blocks' sums at once, through the activation sums kept in the row's extras.
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

// A format: its block size, where its fp16 offset lies (kM < 0: none), log2 of its zero point (kZeroShift <
// 0: none), and its 32 levels times the activations as int32 sums of four.
template <int kBytes_, int kM_, int kZeroShift_>
struct Layout {
  static constexpr int kBytes = kBytes_;
  static constexpr int kM = kM_;
  static constexpr int kZeroShift = kZeroShift_;
};

ONECARD_AVX512 __m256i dot4(__m256i q, __m256i av) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, av);
}

struct Q4_0 : Layout<18, -1, 3> {
  ONECARD_AVX512 static __m256i sums(const uint8_t* b, __m256i av) { return dot4(nibbles(b + 2), av); }
};

struct Q4_1 : Layout<20, 2, -1> {
  ONECARD_AVX512 static __m256i sums(const uint8_t* b, __m256i av) { return dot4(nibbles(b + 4), av); }
};

struct Q5_0 : Layout<22, -1, 4> {
  ONECARD_AVX512 static __m256i sums(const uint8_t* b, __m256i av) {
    return dot4(_mm256_or_si256(nibbles(b + 6), fifth_bits(b + 2)), av);
  }
};

struct Q5_1 : Layout<24, 2, -1> {
  ONECARD_AVX512 static __m256i sums(const uint8_t* b, __m256i av) {
    return dot4(_mm256_or_si256(nibbles(b + 8), fifth_bits(b + 4)), av);
  }
};

struct IQ4_NL : Layout<18, -1, 7> {
  ONECARD_AVX512 static __m256i sums(const uint8_t* b, __m256i av) {
    const __m256i lut = _mm256_xor_si256(_mm256_broadcastsi128_si256(_mm_loadu_si128(
                                             reinterpret_cast<const __m128i*>(quant::kIq4nlValues.data()))),
                                         _mm256_set1_epi8(static_cast<char>(0x80)));
    return dot4(_mm256_shuffle_epi8(lut, nibbles(b + 2)), av);
  }
};

// Signed levels biased by 128 (the top bit flipped) to be unsigned operands.
struct Q8_0 : Layout<34, -1, 7> {
  ONECARD_AVX512 static __m256i sums(const uint8_t* b, __m256i av) {
    return dot4(_mm256_xor_si256(load256(b + 2), _mm256_set1_epi8(static_cast<char>(0x80))), av);
  }
};

// Eight vectors of int32 partial sums reduced to one: lane k holds the sum of v[k].
ONECARD_AVX512 __m256i reduce8(const __m256i* v) {
  // Lanes b and 4 + b of lo hold halves of block b's sum, of hi halves of block 4 + b's.
  const __m256i lo = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
  const __m256i hi = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31));
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

ONECARD_AVX512 int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 1)));
}

ONECARD_AVX512 float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

// Per block: s (D - z A) + m A, times the activation scale, with D = sum q a and A = sum a; A and the
// activation scales as floats come from the row's extras (int_format.h).
template <class F>
ONECARD_AVX512 float dot_legacy(const IntFormat&, int64_t n, const void* w, const void* a) {
  constexpr bool kAffine = F::kM >= 0;
  const auto* x = static_cast<const uint8_t*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const auto* ad = static_cast<const uint8_t*>(a) + act_q8_0_scales_at(n);
  const auto* as = static_cast<const uint8_t*>(a) + act_q8_0_sums_at(n);
  const int64_t nb = n / quant::kQK;
  __m256 acc = _mm256_setzero_ps(), acc_m = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= nb; i += 8) {
    const uint8_t* b = x + i * F::kBytes;
    x86::prefetch_ahead(b, (8 * F::kBytes + 63) / 64);  // a line per 64 bytes of the eight blocks
    __m256i d[8];
    for (int k = 0; k < 8; ++k) d[k] = F::sums(b + k * F::kBytes, load256(y[i + k].qs));
    __m256i dz = reduce8(d);
    const __m256i asum = load256(as + 4 * i);
    if constexpr (F::kZeroShift >= 0) dz = _mm256_sub_epi32(dz, _mm256_slli_epi32(asum, F::kZeroShift));
    const __m256 da = _mm256_loadu_ps(reinterpret_cast<const float*>(ad + 4 * i));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dz), _mm256_mul_ps(halves8(b, F::kBytes, 0), da), acc);
    if constexpr (kAffine) {
      acc_m =
          _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(asum), da), halves8(b, F::kBytes, F::kM), acc_m);
    }
  }
  float tail = 0;
  for (; i < nb; ++i) {
    const uint8_t* b = x + i * F::kBytes;
    int32_t asum;
    std::memcpy(&asum, as + 4 * i, 4);
    int32_t dz = hsum_epi32(F::sums(b, load256(y[i].qs)));
    if constexpr (F::kZeroShift >= 0) dz -= asum << F::kZeroShift;
    float block = _cvtsh_ss(load_u16(b)) * static_cast<float>(dz);
    if constexpr (kAffine) block += _cvtsh_ss(load_u16(b + F::kM)) * static_cast<float>(asum);
    tail += load_f32(ad + 4 * i) * block;
  }
  return x86::hsum(_mm256_add_ps(acc, acc_m)) + tail;
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
    case gguf::GgmlType::Q8_0:
      return dot_legacy<Q8_0>;
    case gguf::GgmlType::IQ4_NL:
      return dot_legacy<IQ4_NL>;
    default:
      return nullptr;
  }
}

}  // namespace onecard::cpu
