// The product of packed Q2_K, Q4_K and Q6_K rows (packed.h) with up to 6 tokens per pass, AVX-512 VNNI: as
// the batched kernel of gemm.h, weight rows in the 16 lanes and each token's 4 activation bytes broadcast,
// but the levels come from memory nearly ready to use (a mask, a shift or two and a merge per 64-byte load)
// instead of being transposed per call. The scales of a unit's 16 rows are decoded in vectors once per unit,
// for all the passes over its tokens.
#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstring>

#include "cpu/packed.h"
#include "cpu/x86.h"
#include "quant/blocks.h"

namespace onecard::cpu {
namespace {

constexpr int kTokens = 6;
using gemm_detail::kLanes;
constexpr int kAhead = 2;  // units ahead the first pass over a unit prefetches

// Per panel, the 16 rows' float scale s of each sub-block and, for Q2_K and Q4_K, their integer mins, those
// of sub-blocks 2i and 2i + 1 as the 16-bit halves of mins[i], with the factor -dmin that makes them offsets.
struct Scales {
  alignas(64) float s[16][kLanes];
  alignas(64) int32_t mins[8][kLanes];
  alignas(64) float neg_dmin[kLanes];
};

struct Pass {
  const uint8_t* piece[2];      // panel g's piece of this unit
  const Scales* scales[2];      // and its scales
  const uint8_t* act[kTokens];  // each token's activation levels of this unit
  // Q6_K: each token's per-sub-block zero-point shares of this unit (token_side's int32s), copied here so
  // that the kernel reaches them all from one register. The affine formats: each token's per-sub-block
  // activation sums (token_side's floats) as 16-bit integers, two sub-blocks per 32 bits as in Scales::mins.
  alignas(64) uint32_t side[kTokens][16];
  alignas(64) uint32_t sum_pairs[kTokens][8];
  float da[kTokens];     // each token's activation scale of this unit
  float* y[kTokens];     // each token's sums of the block's rows (aligned)
  bool first;            // y is written, not accumulated
  const char* prefetch;  // lines to ask for across the sub-blocks (the unit kAhead ahead), or null
};

ONECARD_AVX512 inline __m512 load_halves(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(p)));
}

// Byte i of each dword of v, as floats (signed bytes when SIGNED).
template <bool SIGNED>
ONECARD_AVX512 inline __m512 byte_of(__m512i v, int i) {
  const __m512i up = _mm512_sllv_epi32(v, _mm512_set1_epi32(24 - 8 * i));
  return _mm512_cvtepi32_ps(SIGNED ? _mm512_srai_epi32(up, 24) : _mm512_srli_epi32(up, 24));
}

ONECARD_AVX512 inline void store_f(const __m512 v, float* out) {
  _mm512_store_ps(out, v);
}

template <int G, int T>
ONECARD_AVX512 inline void finish_unit(const Pass& p, __m512 (&f)[G][T]) {
  for (int t = 0; t < T; ++t) {
    const __m512 da = _mm512_set1_ps(p.da[t]);
    for (int g = 0; g < G; ++g) {
      float* y = p.y[t] + g * kLanes;
      store_f(p.first ? _mm512_mul_ps(f[g][t], da) : _mm512_fmadd_ps(f[g][t], da, _mm512_load_ps(y)), y);
    }
  }
}

// With few tokens (decode) a sub-block's products would form few long dependency chains; they are split in
// two.
template <int G, int T>
inline constexpr int kChains = G* T <= 4 ? 2 : 1;

template <int C, int G, int T>
ONECARD_AVX512 inline __m512i chain_sum(const __m512i (&dot)[C][G][T], int g, int t) {
  return C == 1 ? dot[0][g][t] : _mm512_add_epi32(dot[0][g][t], dot[C - 1][g][t]);
}

// Sub-block `sub`'s share of the lines of G pieces of `piece` bytes.
template <int G, size_t kPiece, int kSubs>
ONECARD_AVX512 inline void prefetch_for(const Pass& p, int sub) {
  constexpr int kLines = static_cast<int>((G * kPiece / 64 + kSubs - 1) / kSubs);
  if (p.prefetch == nullptr) return;
  for (int l = 0; l < kLines; ++l) _mm_prefetch(p.prefetch + 64 * (sub * kLines + l), _MM_HINT_T0);
}

// An affine format's d (fp16 at `at`), and -dmin (at + 32) into out.
ONECARD_AVX512 inline __m512 load_d_dmin(const uint8_t* piece, int at, Scales& out) {
  store_f(_mm512_sub_ps(_mm512_setzero_ps(), load_halves(piece + at + 32)), out.neg_dmin);
  return load_halves(piece + at);
}
// The scales of sub-blocks b..b + 3 from the bytes of the lanes of sc, and their mins, pairwise, from mn.
ONECARD_AVX512 inline void store_scales_mins(__m512 d, __m512i sc, __m512i mn, Scales& out, int b) {
  for (int i = 0; i < 4; ++i) store_f(_mm512_mul_ps(byte_of<false>(sc, i), d), out.s[b + i]);
  const __m512i low = _mm512_set1_epi32(0xff), high = _mm512_set1_epi32(0xff0000);
  _mm512_store_si512(out.mins[b / 2], _mm512_or_si512(_mm512_and_si512(mn, low),
                                                      _mm512_and_si512(_mm512_slli_epi32(mn, 8), high)));
  _mm512_store_si512(out.mins[b / 2 + 1], _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(mn, 16), low),
                                                          _mm512_and_si512(_mm512_srli_epi32(mn, 8), high)));
}

// Each format gives the weights' shape per unit (kSubs sub-blocks of kSteps 4-column steps, affine or with a
// zero point), decodes a panel's scales once per unit, and loads the 16 rows' levels of step k of sub-block
// b, with the offset of the matching 4 activation bytes.

// Q4_K: w = s * q + m per 32-element sub-block, s = d * scale and m = -dmin * min (6 bits each).
struct Q4K {
  static constexpr int kSubs = 8, kSteps = 8;
  static constexpr size_t kPiece = 2304;
  static constexpr bool kAffine = true;

  ONECARD_AVX512 static void scales(const uint8_t* piece, Scales& out) {
    const __m512 d = load_d_dmin(piece, 2048, out);
    const __m512i v0 = _mm512_load_si512(piece + 2112), v1 = _mm512_load_si512(piece + 2176),
                  v2 = _mm512_load_si512(piece + 2240);
    const __m512i c3f = _mm512_set1_epi32(0x3f3f3f3f), c0f = _mm512_set1_epi32(0x0f0f0f0f),
                  c30 = _mm512_set1_epi32(0x30303030);
    // Four 6-bit values per lane in each: the scales and mins of sub-blocks 0-3 and 4-7
    // (x86::k_scales_mins_vec).
    const __m512i sc[2] = {
        _mm512_and_si512(v0, c3f),
        _mm512_or_si512(_mm512_and_si512(v2, c0f), _mm512_and_si512(_mm512_srli_epi32(v0, 2), c30))};
    const __m512i mn[2] = {_mm512_and_si512(v1, c3f),
                           _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(v2, 4), c0f),
                                           _mm512_and_si512(_mm512_srli_epi32(v1, 2), c30))};
    for (int h = 0; h < 2; ++h) store_scales_mins(d, sc[h], mn[h], out, 4 * h);
  }

  ONECARD_AVX512 static __m512i levels(const uint8_t* piece, int b, int k) {
    const __m512i v = _mm512_load_si512(piece + ((b / 2) * 8 + k) * 64);
    return _mm512_and_si512(b % 2 == 0 ? v : _mm512_srli_epi16(v, 4), _mm512_set1_epi8(0x0f));
  }
  static constexpr int column(int b, int k) { return 32 * b + 4 * k; }
};

// Q2_K: w = s * q + m per 16-element sub-block, s = d * (scale & 15) and m = -dmin * (scale >> 4). Element
// 128n + 32j + 16h + l is bits 2j, 2j + 1 of qs[32n + 16h + l], in sub-block 8n + 2j + h.
struct Q2K {
  static constexpr int kSubs = 16, kSteps = 4;
  static constexpr size_t kPiece = 1344;
  static constexpr bool kAffine = true;

  ONECARD_AVX512 static void scales(const uint8_t* piece, Scales& out) {
    const __m512 d = load_d_dmin(piece, 1280, out);
    const __m512i c0f = _mm512_set1_epi32(0x0f0f0f0f);
    for (int v = 0; v < 4; ++v) {
      const __m512i sc = _mm512_load_si512(piece + 1024 + 64 * v);
      const __m512i lo = _mm512_and_si512(sc, c0f), hi = _mm512_and_si512(_mm512_srli_epi32(sc, 4), c0f);
      store_scales_mins(d, lo, hi, out, 4 * v);
    }
  }

  ONECARD_AVX512 static __m512i levels(const uint8_t* piece, int b, int k) {
    const int n = b / 8, j = (b % 8) / 2, h = b % 2;
    const __m512i v = _mm512_load_si512(piece + (8 * n + 4 * h + k) * 64);
    return _mm512_and_si512(_mm512_srlv_epi16(v, _mm512_set1_epi16(static_cast<int16_t>(2 * j))),
                            _mm512_set1_epi8(3));
  }
  static constexpr int column(int b, int k) {
    return 128 * (b / 8) + 32 * ((b % 8) / 2) + 16 * (b % 2) + 4 * k;
  }
};

// Q6_K: w = s * (q - 32) per 16-element sub-block, s = d * scale (signed 8 bits), q = 4 low bits from ql and
// 2 high bits from qh. Element 128h + 32i + l has its low bits in ql[64h + 32(i & 1) + l] (high nibble when
// i >= 2) and its high bits in qh[32h + l], bits 2i and 2i + 1.
struct Q6K {
  static constexpr int kSubs = 16, kSteps = 4;
  static constexpr size_t kPiece = 3392;
  static constexpr bool kAffine = false;

  ONECARD_AVX512 static void scales(const uint8_t* piece, Scales& out) {
    const __m512 d = load_halves(piece + 3328);
    for (int v = 0; v < 4; ++v) {
      const __m512i sc = _mm512_load_si512(piece + 3072 + 64 * v);
      for (int i = 0; i < 4; ++i) store_f(_mm512_mul_ps(byte_of<true>(sc, i), d), out.s[4 * v + i]);
    }
  }

  ONECARD_AVX512 static __m512i levels(const uint8_t* piece, int b, int kk) {
    const int h = b / 8, i = (b % 8) / 2, k = 4 * (b % 2) + kk;
    const __m512i ql = _mm512_load_si512(piece + (16 * h + 8 * (i & 1) + k) * 64);
    const __m512i qh = _mm512_load_si512(piece + 2048 + (8 * h + k) * 64);
    const __m512i lo = i >= 2 ? _mm512_srli_epi16(ql, 4) : ql;
    // Bits 2i, 2i + 1 of qh moved to bits 4, 5 (16-bit shifts: what crosses bytes is masked off).
    const __m512i hi = _mm512_and_si512(i == 0   ? _mm512_slli_epi16(qh, 4)
                                        : i == 1 ? _mm512_slli_epi16(qh, 2)
                                        : i == 2 ? qh
                                                 : _mm512_srli_epi16(qh, 2),
                                        _mm512_set1_epi8(0x30));
    return _mm512_ternarylogic_epi32(_mm512_set1_epi8(0x0f), lo, hi, 0xca);  // 0x0f ? lo : hi
  }
  static constexpr int column(int b, int kk) {
    return 128 * (b / 8) + 32 * ((b % 8) / 2) + 16 * (b % 2) + 4 * kk;
  }
};

// The affine formats' offsets: -dmin times the sum over sub-blocks of min times the token's activation sum,
// in integers, two sub-blocks per vpdpwssd (with one float multiply-add per sub-block, as the scales take,
// the offsets would cost a fifth of a Q4_K pass: both compete with vpdpbusd for the same two pipes).
template <class F, int G, int T>
ONECARD_AVX512 inline void offsets(const Pass& p, __m512 (&f)[G][T]) {
  __m512i sum[G][T];
  for (int i = 0; i < F::kSubs / 2; ++i) {
    for (int t = 0; t < T; ++t) {
      const __m512i a = _mm512_set1_epi32(static_cast<int32_t>(p.sum_pairs[t][i]));
      for (int g = 0; g < G; ++g) {
        const __m512i m = _mm512_load_si512(p.scales[g]->mins[i]);
        sum[g][t] = i == 0 ? _mm512_madd_epi16(m, a) : _mm512_dpwssd_epi32(sum[g][t], m, a);
      }
    }
  }
  for (int g = 0; g < G; ++g) {
    const __m512 neg_dmin = _mm512_load_ps(p.scales[g]->neg_dmin);
    for (int t = 0; t < T; ++t) f[g][t] = _mm512_mul_ps(_mm512_cvtepi32_ps(sum[g][t]), neg_dmin);
  }
}

// A token's activation sums of kSubs sub-blocks (token_side's floats, integers) as 16-bit pairs (sum_pairs).
template <int kSubs>
ONECARD_AVX512 inline void sum_pairs(const uint8_t* side, uint32_t* out) {
  const __m512 v = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << kSubs) - 1), side);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(v)));
}

// One pass: G panels times T tokens over one unit. Affine formats start from their offsets (offsets); the
// others start each sub-block's integer sum at the zero point's share (token_side).
template <class F, int G, int T>
ONECARD_AVX512 void pass(const Pass& p) {
  __m512 f[G][T];
  if constexpr (F::kAffine) offsets<F>(p, f);
  for (int b = 0; b < F::kSubs; ++b) {
    prefetch_for<G, F::kPiece, F::kSubs>(p, b);
    __m512i dot[kChains<G, T>][G][T];
    for (int t = 0; t < T; ++t) {
      const __m512i start =
          F::kAffine ? _mm512_setzero_si512() : _mm512_set1_epi32(static_cast<int32_t>(p.side[t][b]));
      for (int g = 0; g < G; ++g) {
        dot[0][g][t] = start;
        for (int c = 1; c < kChains<G, T>; ++c) dot[c][g][t] = _mm512_setzero_si512();
      }
    }
    for (int k = 0; k < F::kSteps; ++k) {
      __m512i w[G];
      for (int g = 0; g < G; ++g) w[g] = F::levels(p.piece[g], b, k);
      for (int t = 0; t < T; ++t) {
        const __m512i a =
            _mm512_set1_epi32(static_cast<int32_t>(quant::load_u32(p.act[t] + F::column(b, k))));
        for (int g = 0; g < G; ++g) {
          __m512i& d = dot[k % kChains<G, T>][g][t];
          d = _mm512_dpbusd_epi32(d, w[g], a);
        }
      }
    }
    for (int g = 0; g < G; ++g) {
      const __m512 sv = _mm512_load_ps(p.scales[g]->s[b]);
      for (int t = 0; t < T; ++t) {
        const __m512 v = _mm512_cvtepi32_ps(chain_sum(dot, g, t));
        f[g][t] = !F::kAffine && b == 0 ? _mm512_mul_ps(v, sv) : _mm512_fmadd_ps(v, sv, f[g][t]);
      }
    }
  }
  finish_unit(p, f);
}

using PassFn = void (*)(const Pass&);

template <class F, int G>
PassFn by_tokens(int t) {
  switch (t) {
    case 1:
      return pass<F, G, 1>;
    case 2:
      return pass<F, G, 2>;
    case 3:
      return pass<F, G, 3>;
    case 4:
      return pass<F, G, 4>;
    case 5:
      return pass<F, G, 5>;
    default:
      return pass<F, G, 6>;
  }
}

template <class F>
void gemm_block(const PackedMatrix& p, int64_t b, GemmTokens tokens, float* y, int64_t ldy) {
  const int groups = p.panels(b);
  const int64_t rows = std::min(kPackedBlockRows, p.rows - b * kPackedBlockRows), units = p.units();
  const size_t piece = p.piece(), unit_stride = groups * piece;
  assert(piece == F::kPiece);
  const uint8_t* block = p.block(b);
  float* acc = gemm_detail::block_sums(tokens.count);
  alignas(64) static thread_local Scales scales[2];
  constexpr size_t act_stride = sizeof(quant::BlockQ8_K), levels_at = offsetof(quant::BlockQ8_K, qs);
  const size_t da_at = static_cast<size_t>(units * F::kSubs) * 4;
  auto pass_for = [groups](int nt) { return groups == 2 ? by_tokens<F, 2>(nt) : by_tokens<F, 1>(nt); };
  // As many passes as kTokens allows, of balanced sizes: a pass of one or two tokens leaves most of the
  // arithmetic units waiting.
  const int64_t passes = (tokens.count + kTokens - 1) / kTokens;

  for (int64_t u = 0; u < units; ++u) {
    Pass ps{};
    for (int g = 0; g < groups; ++g) {
      ps.piece[g] = block + u * unit_stride + g * piece;
      F::scales(ps.piece[g], scales[g]);
      ps.scales[g] = &scales[g];
    }
    ps.first = u == 0;
    // The stream runs on into the next block, which is usually this thread's next task.
    ps.prefetch = reinterpret_cast<const char*>(block + (u + kAhead) * unit_stride);
    for (int64_t t0 = 0, left = passes; t0 < tokens.count; --left) {
      const int nt = static_cast<int>((tokens.count - t0 + left - 1) / left);
      for (int t = 0; t < nt; ++t) {
        ps.act[t] = tokens.act[t0 + t] + u * act_stride + levels_at;
        const uint8_t* side = tokens.side[t0 + t] + u * F::kSubs * 4;
        if constexpr (F::kAffine) {
          sum_pairs<F::kSubs>(side, ps.sum_pairs[t]);
        } else {
          std::memcpy(ps.side[t], side, F::kSubs * 4);
        }
        std::memcpy(&ps.da[t], tokens.side[t0 + t] + da_at + u * 4, 4);
        ps.y[t] = acc + (t0 + t) * 2 * kLanes;
      }
      pass_for(nt)(ps);
      ps.prefetch = nullptr;  // the first pass asked for the lines
      t0 += nt;
    }
  }
  gemm_detail::store_rows(acc, tokens.count, rows, y, ldy);
}

}  // namespace

void gemm_packed(const PackedMatrix& p, int64_t b, GemmTokens tokens, float* y, int64_t ldy) {
  if (tokens.count <= 0) return;
  if (p.type == gguf::GgmlType::Q4_K) {
    gemm_block<Q4K>(p, b, tokens, y, ldy);
  } else if (p.type == gguf::GgmlType::Q2_K) {
    gemm_block<Q2K>(p, b, tokens, y, ldy);
  } else {
    gemm_block<Q6K>(p, b, tokens, y, ldy);
  }
}

}  // namespace onecard::cpu
