// AVX2 row dots of the 32-element formats with Q8_0 activations (the switch at the end lists them): a block's
// 32 levels in one register, vpmaddubsw with the activations, and the zero point and offset applied through
// the activations' sum. vpmaddubsw adds two products into a saturating int16, so the unsigned levels must
// stay below 129 (2 * 128 * 127 fits): the 4- and 5-bit levels do; IQ4_NL's, biased by 128 for vpdpbusd,
// would not, so its signed values go in with the sign trick of the Q8_0 dot (|w| times a with w's sign) and
// no zero point.
#include "cpu/vec_dot.h"
#include "cpu/x86.h"
#include "quant/blocks.h"
#include "quant/iq_tables.h"

namespace onecard::cpu {
namespace {

using quant::BlockQ4_0;
using quant::BlockQ4_1;
using quant::BlockQ5_0;
using quant::BlockQ5_1;
using quant::BlockQ8_0;

// Elements 0-15 in the low nibbles of the 16 bytes, 16-31 in the high ones.
ONECARD_AVX2 __m256i nibbles(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m4 = _mm_set1_epi8(0x0f);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
}

// The fifth bit of element j is bit j of qh: byte j takes byte j / 8 of the word and keeps bit j % 8.
ONECARD_AVX2 __m256i fifth_bits(const uint8_t* qh) {
  const __m256i word = _mm256_set1_epi32(static_cast<int>(quant::load_u32(qh)));
  const __m256i spread =
      _mm256_shuffle_epi8(word, _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2,
                                                 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(16));
}

struct Levels {
  __m256i q;
  float d, m;  // m: the offset, 0 for the formats with a zero point
};

ONECARD_AVX2 Levels q4_0(const uint8_t* p) {
  const auto& b = *reinterpret_cast<const BlockQ4_0*>(p);
  return {nibbles(b.qs), _cvtsh_ss(b.d), 0.0f};
}

ONECARD_AVX2 Levels q4_1(const uint8_t* p) {
  const auto& b = *reinterpret_cast<const BlockQ4_1*>(p);
  return {nibbles(b.qs), _cvtsh_ss(b.d), _cvtsh_ss(b.m)};
}

ONECARD_AVX2 Levels q5_0(const uint8_t* p) {
  const auto& b = *reinterpret_cast<const BlockQ5_0*>(p);
  return {_mm256_or_si256(nibbles(b.qs), fifth_bits(b.qh)), _cvtsh_ss(b.d), 0.0f};
}

ONECARD_AVX2 Levels q5_1(const uint8_t* p) {
  const auto& b = *reinterpret_cast<const BlockQ5_1*>(p);
  return {_mm256_or_si256(nibbles(b.qs), fifth_bits(b.qh)), _cvtsh_ss(b.d), _cvtsh_ss(b.m)};
}

// Signed values (no bias): the caller multiplies them with the sign trick.
ONECARD_AVX2 Levels iq4_nl(const uint8_t* p) {
  const auto& b = *reinterpret_cast<const quant::BlockIQ4_NL*>(p);
  const __m256i lut = _mm256_broadcastsi128_si256(
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(quant::kIq4nlValues.data())));
  return {_mm256_shuffle_epi8(lut, nibbles(b.qs)), _cvtsh_ss(b.d), 0.0f};
}

// Per block: s (D - z A) + m A, times the activation scale, with D = sum q a and A = sum a per lane. kSigned:
// the levels are signed values, D is taken with the sign trick and z is 0.
template <Levels (*kLevels)(const uint8_t*), bool kSigned = false>
ONECARD_AVX2 float dot_legacy(const IntFormat& f, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const uint8_t*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  const __m256 zero = _mm256_set1_ps(kSigned ? 0.0f : static_cast<float>(f.zero));
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK; ++i) {
    x86::prefetch_ahead(x + i * f.unit_bytes, 1);
    const Levels l = kLevels(x + i * f.unit_bytes);
    const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs));
    const __m256i pairs = kSigned ? _mm256_maddubs_epi16(_mm256_abs_epi8(l.q), _mm256_sign_epi8(av, l.q))
                                  : _mm256_maddubs_epi16(l.q, av);
    const __m256 dq = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones16));
    const __m256 sa = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(ones8, av), ones16));
    const float da = _cvtsh_ss(y[i].d);
    // s (D - z A) + m A = s D + (m - z s) A
    const __m256 sum = _mm256_fmadd_ps(sa, _mm256_set1_ps(l.m),
                                       _mm256_mul_ps(_mm256_set1_ps(l.d), _mm256_fnmadd_ps(zero, sa, dq)));
    acc = _mm256_fmadd_ps(sum, _mm256_set1_ps(da), acc);
  }
  return x86::hsum(acc);
}

}  // namespace

VecDotFn vec_dot_legacy_avx2(gguf::GgmlType type) {
  switch (type) {
    case gguf::GgmlType::Q4_0:
      return dot_legacy<q4_0>;
    case gguf::GgmlType::Q4_1:
      return dot_legacy<q4_1>;
    case gguf::GgmlType::Q5_0:
      return dot_legacy<q5_0>;
    case gguf::GgmlType::Q5_1:
      return dot_legacy<q5_1>;
    case gguf::GgmlType::IQ4_NL:
      return dot_legacy<iq4_nl, true>;
    default:
      return nullptr;
  }
}

}  // namespace onecard::cpu
