// AVX2 row dots of the grid formats, each block decoded in registers (grid_avx2.h). The grid magnitudes are
// unsigned and small (at most 62), so vpmaddubsw takes them as they are with the signs moved onto the
// activations (vpsignb; Q8_K activations lie in [-127, 127]), and its int16 pair sums cannot saturate. The
// sub-block scales d (2s + 1) / 2^k of the reference are applied as the odd integers 2s + 1 by vpmaddwd, so
// that a block's sum is exact in int32 and the float steps are one per block: the reference's sums, rounded
// less.
#include "cpu/grid_avx2.h"

namespace onecard::cpu {
namespace {

using quant::BlockQ8_K;
using x86::hsum;

ONECARD_AVX2 __m256i load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// Group g's 32 products of signed grid values and activations, as int16 pair sums.
ONECARD_AVX2 __m256i signed_products(grid_avx2::Group v, const int8_t* q8) {
  return _mm256_maddubs_epi16(v.grid, _mm256_sign_epi8(load256(q8), v.sign));
}

// The scale of each half of group g of a format with a scale per 16 (odd[k] for elements 16k .. 16k + 15).
ONECARD_AVX2 __m256i halves(const int16_t* odd, int g) {
  return _mm256_setr_m128i(_mm_set1_epi16(odd[2 * g]), _mm_set1_epi16(odd[2 * g + 1]));
}

// The lines a block occupies, asked for ahead (x86.h).
template <class Block>
void prefetch_block(const Block* p) {
  x86::prefetch_ahead(p, sizeof(Block) > 64 ? 2 : 1);
}

// The sign bytes of the 7-bit sign indices in v's bytes (bit 7 clear): bit 7 set where the seven bits have
// odd parity (kIqSigns). The shifts carry bits of higher bytes into bits 4-7, never into bit 0.
ONECARD_AVX2 __m256i with_parity(__m256i v) {
  __m256i p = _mm256_xor_si256(v, _mm256_srli_epi32(v, 4));
  p = _mm256_xor_si256(p, _mm256_srli_epi32(p, 2));
  p = _mm256_xor_si256(p, _mm256_srli_epi32(p, 1));
  return _mm256_or_si256(
      v, _mm256_and_si256(_mm256_slli_epi32(p, 7), _mm256_set1_epi8(static_cast<char>(0x80))));
}

// The four sign bytes of each 32-bit sign word (bits 7r .. 7r + 6: row r) in w's dword lanes. The 7-bit sign
// formats take these for a whole block in vectors, a block ahead of its products (the chain is long), and
// spread them per group like explicit sign bytes: faster than 32 loads of +-1 rows and their inserts.
ONECARD_AVX2 __m256i word_sign_bytes(__m256i w) {
  const __m256i m = _mm256_set1_epi32(0x7f);
  __m256i v = _mm256_and_si256(w, m);
  v = _mm256_or_si256(v, _mm256_and_si256(_mm256_slli_epi32(w, 1), _mm256_slli_epi32(m, 8)));
  v = _mm256_or_si256(v, _mm256_and_si256(_mm256_slli_epi32(w, 2), _mm256_slli_epi32(m, 16)));
  v = _mm256_or_si256(v, _mm256_and_si256(_mm256_slli_epi32(w, 3), _mm256_slli_epi32(m, 24)));
  return with_parity(v);
}

// IQ2_XXS's sign words (the high half of each group's 8 bytes) in dword lanes g0, g4, g1, g5, g2, g6, g3, g7.
ONECARD_AVX2 __m256i iq2_xxs_words(const quant::BlockIQ2_XXS& b) {
  return _mm256_blend_epi32(_mm256_srli_epi64(load256(b.qs), 32), load256(b.qs + 16), 0xaa);
}

// The lane of group g in iq2_xxs_words.
constexpr int iq2_xxs_lane(int g) {
  return g < 4 ? 2 * g : 2 * g - 7;
}

ONECARD_AVX2 float dot_iq2_xxs(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const quant::BlockIQ2_XXS*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const int64_t nb = n / quant::kQK_K;
  __m256 acc = _mm256_setzero_ps();
  __m256i next = nb > 0 ? word_sign_bytes(iq2_xxs_words(x[0])) : _mm256_setzero_si256();
  for (int64_t i = 0; i < nb; ++i) {
    prefetch_block(x + i);
    alignas(32) uint8_t signs[32];
    _mm256_store_si256(reinterpret_cast<__m256i*>(signs), next);
    if (i + 1 < nb) next = word_sign_bytes(iq2_xxs_words(x[i + 1]));
    // The scale s is the top 4 bits of the word: 2s + 1 its top five, or 1.
    alignas(32) int32_t odd[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(odd),
                       _mm256_or_si256(_mm256_srli_epi32(iq2_xxs_words(x[i]), 27), _mm256_set1_epi32(1)));
    __m256i sum = _mm256_setzero_si256();
    for (int g = 0; g < 8; ++g) {
      const int lane = iq2_xxs_lane(g);
      const auto* q = reinterpret_cast<const uint8_t*>(x[i].qs) + 8 * g;
      const grid_avx2::Group v = {grid_avx2::rows64(quant::kIq2xxsGrid.data(), q[0], q[1], q[2], q[3]),
                                  grid_avx2::byte_signs(signs + 4 * lane)};
      const __m256i scale = _mm256_set1_epi16(static_cast<int16_t>(odd[lane]));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(signed_products(v, y[i].qs + 32 * g), scale));
    }
    // Scale d (0.5 + s) / 4 = d (2s + 1) / 8.
    const float d = y[i].d * _cvtsh_ss(x[i].d) * 0.125f;
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(d), acc);
  }
  return hsum(acc);
}
// The sign bytes of IQ2_XS's 32 codes (the sign index is a code's top 7 bits), in element order.
ONECARD_AVX2 __m256i iq2_xs_signs(const quant::BlockIQ2_XS& b) {
  const __m256i lo = _mm256_srli_epi16(load256(b.qs), 9), hi = _mm256_srli_epi16(load256(b.qs + 16), 9);
  return _mm256_permute4x64_epi64(with_parity(_mm256_packus_epi16(lo, hi)), 0xd8);
}

ONECARD_AVX2 float dot_iq2_xs(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const quant::BlockIQ2_XS*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const int64_t nb = n / quant::kQK_K;
  __m256 acc = _mm256_setzero_ps();
  __m256i next = nb > 0 ? iq2_xs_signs(x[0]) : _mm256_setzero_si256();
  for (int64_t i = 0; i < nb; ++i) {
    prefetch_block(x + i);
    alignas(32) uint8_t signs[32];
    _mm256_store_si256(reinterpret_cast<__m256i*>(signs), next);
    if (i + 1 < nb) next = iq2_xs_signs(x[i + 1]);
    alignas(32) int16_t odd[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(odd), grid_avx2::iq2_odd_scales(x[i].scales));
    __m256i sum = _mm256_setzero_si256();
    for (int g = 0; g < 8; ++g) {
      const uint16_t* c = x[i].qs + 4 * g;
      const grid_avx2::Group v = {
          grid_avx2::rows64(quant::kIq2xsGrid.data(), c[0] & 511u, c[1] & 511u, c[2] & 511u, c[3] & 511u),
          grid_avx2::byte_signs(signs + 4 * g)};
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(signed_products(v, y[i].qs + 32 * g), halves(odd, g)));
    }
    const float d = y[i].d * _cvtsh_ss(x[i].d) * 0.125f;
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(d), acc);
  }
  return hsum(acc);
}
ONECARD_AVX2 float dot_iq2_s(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const quant::BlockIQ2_S*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    prefetch_block(x + i);
    alignas(32) int16_t odd[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(odd), grid_avx2::iq2_odd_scales(x[i].scales));
    __m256i sum = _mm256_setzero_si256();
    for (int g = 0; g < 8; ++g) {
      const __m256i p = signed_products(grid_avx2::iq2_s(x[i], g), y[i].qs + 32 * g);
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, halves(odd, g)));
    }
    const float d = y[i].d * _cvtsh_ss(x[i].d) * 0.125f;
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(d), acc);
  }
  return hsum(acc);
}

// IQ3_XXS's sign words follow its 64 grid indices, group g's in dword lane g.
ONECARD_AVX2 __m256i iq3_xxs_words(const quant::BlockIQ3_XXS& b) {
  return load256(b.qs + quant::kQK_K / 4);
}

ONECARD_AVX2 float dot_iq3_xxs(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const quant::BlockIQ3_XXS*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const int64_t nb = n / quant::kQK_K;
  __m256 acc = _mm256_setzero_ps();
  __m256i next = nb > 0 ? word_sign_bytes(iq3_xxs_words(x[0])) : _mm256_setzero_si256();
  for (int64_t i = 0; i < nb; ++i) {
    prefetch_block(x + i);
    alignas(32) uint8_t signs[32];
    _mm256_store_si256(reinterpret_cast<__m256i*>(signs), next);
    if (i + 1 < nb) next = word_sign_bytes(iq3_xxs_words(x[i + 1]));
    alignas(32) int32_t odd[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(odd),
                       _mm256_or_si256(_mm256_srli_epi32(iq3_xxs_words(x[i]), 27), _mm256_set1_epi32(1)));
    __m256i sum = _mm256_setzero_si256();
    for (int g = 0; g < 8; ++g) {
      const __m256i idx =
          _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x[i].qs + 8 * g)));
      const grid_avx2::Group v = {grid_avx2::rows32(quant::kIq3xxsGrid.data(), idx),
                                  grid_avx2::byte_signs(signs + 4 * g)};
      const __m256i scale = _mm256_set1_epi16(static_cast<int16_t>(odd[g]));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(signed_products(v, y[i].qs + 32 * g), scale));
    }
    // Scale d (0.5 + s) / 2 = d (2s + 1) / 4.
    const float d = y[i].d * _cvtsh_ss(x[i].d) * 0.25f;
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(d), acc);
  }
  return hsum(acc);
}
ONECARD_AVX2 float dot_iq3_s(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const quant::BlockIQ3_S*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    prefetch_block(x + i);
    __m256i sum = _mm256_setzero_si256();
    for (int g = 0; g < 8; ++g) {
      const int s = (x[i].scales[g / 2] >> (4 * (g % 2))) & 15;
      const __m256i p = signed_products(grid_avx2::iq3_s(x[i], g), y[i].qs + 32 * g);
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, _mm256_set1_epi16(static_cast<int16_t>(2 * s + 1))));
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(y[i].d * _cvtsh_ss(x[i].d)), acc);
  }
  return hsum(acc);
}

// The IQ1 levels are 16 + 8g + t with t = +-1 the shift, z = 16: a sub-block's D - z A is the dot with the
// levels 16 + 8g (S) plus (t - 16) A, A its activation sum (Q8_K's bsums per 16).
ONECARD_AVX2 float dot_iq1_s(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const quant::BlockIQ1_S*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const grid_avx2::Tables& t = grid_avx2::tables();
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    prefetch_block(x + i);
    // Per group: the odd scale 2s + 1 (bits 12-14 of qh) and t - 16 = -15 or, with bit 15 set, -17.
    const __m128i qh = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].qh));
    const __m128i odd =
        _mm_add_epi16(_mm_and_si128(_mm_srli_epi16(qh, 11), _mm_set1_epi16(14)), _mm_set1_epi16(1));
    const __m128i shift =
        _mm_sub_epi16(_mm_set1_epi16(-15), _mm_and_si128(_mm_srli_epi16(qh, 14), _mm_set1_epi16(2)));
    const __m128i weight = _mm_mullo_epi16(odd, shift);
    // Each group's weight for both of its 16-element activation sums.
    const __m256i weights =
        _mm256_setr_m128i(_mm_unpacklo_epi16(weight, weight), _mm_unpackhi_epi16(weight, weight));
    __m256i sum = _mm256_madd_epi16(load256(y[i].bsums), weights);
    alignas(16) int16_t odds[8];
    _mm_store_si128(reinterpret_cast<__m128i*>(odds), odd);
    for (int g = 0; g < 8; ++g) {
      const __m256i p = _mm256_maddubs_epi16(grid_avx2::iq1_s(x[i], g, t), load256(y[i].qs + 32 * g));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, _mm256_set1_epi16(odds[g])));
    }
    // Scale d (2s + 1) / 8.
    const float d = y[i].d * _cvtsh_ss(x[i].d) * 0.125f;
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(d), acc);
  }
  return hsum(acc);
}

// IQ1_M shifts each row of 8 on its own, which Q8_K's sums per 16 cannot carry: the levels include the shift,
// and only the zero point 16 meets the activation sums.
ONECARD_AVX2 float dot_iq1_m(const IntFormat&, int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const quant::BlockIQ1_M*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const grid_avx2::Tables& t = grid_avx2::tables();
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / quant::kQK_K; ++i) {
    prefetch_block(x + i);
    const __m256i odd = grid_avx2::iq1_m_odd_scales(x[i]);
    __m256i sum = _mm256_slli_epi32(_mm256_madd_epi16(load256(y[i].bsums), odd), 4);
    sum = _mm256_sub_epi32(_mm256_setzero_si256(), sum);
    alignas(32) int16_t odds[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(odds), odd);
    for (int g = 0; g < 8; ++g) {
      const __m256i p = _mm256_maddubs_epi16(grid_avx2::iq1_m(x[i], g, t), load256(y[i].qs + 32 * g));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, halves(odds, g)));
    }
    const float d = y[i].d * grid_avx2::iq1_m_scale(x[i]) * 0.125f;
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(d), acc);
  }
  return hsum(acc);
}

}  // namespace

VecDotFn vec_dot_grid_avx2(gguf::GgmlType type) {
  switch (type) {
    case gguf::GgmlType::IQ1_S:
      return dot_iq1_s;
    case gguf::GgmlType::IQ1_M:
      return dot_iq1_m;
    case gguf::GgmlType::IQ2_XXS:
      return dot_iq2_xxs;
    case gguf::GgmlType::IQ2_XS:
      return dot_iq2_xs;
    case gguf::GgmlType::IQ2_S:
      return dot_iq2_s;
    case gguf::GgmlType::IQ3_XXS:
      return dot_iq3_xxs;
    case gguf::GgmlType::IQ3_S:
      return dot_iq3_s;
    default:
      return nullptr;
  }
}

}  // namespace onecard::cpu
