// The product of packed Q4_K rows (packed_q4k.h) with up to 6 tokens per pass, AVX-512 VNNI: as the batched
// kernel of gemm.h, weight rows in the 16 lanes and each token's 4 activation bytes broadcast, but the levels
// come from memory ready to use (one mask, or a shift and a mask, per 64-byte load) instead of being
// transposed per call.
#include <algorithm>
#include <vector>

#include "cpu/packed_q4k.h"
#include "cpu/scratch.h"
#include "cpu/x86.h"

namespace onecard::cpu {
namespace {

constexpr int kTokens = 6;
constexpr int kSubs = 8;
constexpr int kLanes = 16;
constexpr int kAhead = 2;  // units ahead the pass prefetches

// Per panel and sub-block, the 16 rows' float scales s = d * sc and offsets m = -dmin * min.
struct Scales {
  alignas(64) float s[kSubs][kLanes];
  alignas(64) float m[kSubs][kLanes];
};

ONECARD_AVX512 void unpack_scales(const uint8_t* piece, Scales& out) {
  const __m512 d = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(piece + 2048)));
  const __m512 neg_dmin =
      _mm512_sub_ps(_mm512_setzero_ps(),
                    _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(piece + 2080))));
  const __m512i v0 = _mm512_load_si512(piece + 2112), v1 = _mm512_load_si512(piece + 2176),
                v2 = _mm512_load_si512(piece + 2240);
  const __m512i c3f = _mm512_set1_epi32(0x3f3f3f3f), c0f = _mm512_set1_epi32(0x0f0f0f0f),
                c30 = _mm512_set1_epi32(0x30303030), cff = _mm512_set1_epi32(0xff);
  // Four 6-bit values per lane in each: the scales and mins of sub-blocks 0-3 and 4-7 (x86::k_scales_mins).
  const __m512i sc[2] = {
      _mm512_and_si512(v0, c3f),
      _mm512_or_si512(_mm512_and_si512(v2, c0f), _mm512_and_si512(_mm512_srli_epi32(v0, 2), c30))};
  const __m512i mn[2] = {_mm512_and_si512(v1, c3f),
                         _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(v2, 4), c0f),
                                         _mm512_and_si512(_mm512_srli_epi32(v1, 2), c30))};
  for (int h = 0; h < 2; ++h) {
    for (int i = 0; i < 4; ++i) {
      const __m512i shift = _mm512_set1_epi32(8 * i);
      const __m512 s = _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srlv_epi32(sc[h], shift), cff));
      const __m512 m = _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srlv_epi32(mn[h], shift), cff));
      _mm512_store_ps(out.s[4 * h + i], _mm512_mul_ps(s, d));
      _mm512_store_ps(out.m[4 * h + i], _mm512_mul_ps(m, neg_dmin));
    }
  }
}

struct Pass {
  const uint8_t* piece[2];      // panel g's piece of this unit
  const Scales* scales[2];      // and its scales
  const uint8_t* act[kTokens];  // each token's activation levels of this unit
  const float* asum[kTokens];   // each token's activation sums per sub-block of this unit
  float da[kTokens];            // each token's activation scale of this unit
  float* y[kTokens];            // each token's sums of the block's rows (aligned)
  bool first;                   // y is written, not accumulated
  const char* prefetch;         // lines to ask for, per_sub of them per sub-block
  int per_sub;
};

template <int G, int T>
ONECARD_AVX512 void pass_kernel(const Pass& p) {
  const __m512i low = _mm512_set1_epi8(0x0f);
  __m512 f[G][T];
  for (int b = 0; b < kSubs; ++b) {
    for (int l = 0; l < p.per_sub; ++l) _mm_prefetch(p.prefetch + 64 * (b * p.per_sub + l), _MM_HINT_T0);
    __m512i dot[G][T];
    for (int t = 0; t < T; ++t) {
      for (int g = 0; g < G; ++g) dot[g][t] = _mm512_setzero_si512();
    }
    for (int k = 0; k < 8; ++k) {
      __m512i w[G];
      for (int g = 0; g < G; ++g) {
        const __m512i v = _mm512_load_si512(p.piece[g] + ((b / 2) * 8 + k) * 64);
        w[g] = _mm512_and_si512(b % 2 == 0 ? v : _mm512_srli_epi16(v, 4), low);
      }
      for (int t = 0; t < T; ++t) {
        const __m512i a = _mm512_set1_epi32(static_cast<int32_t>(quant::load_u32(p.act[t] + 32 * b + 4 * k)));
        for (int g = 0; g < G; ++g) dot[g][t] = _mm512_dpbusd_epi32(dot[g][t], w[g], a);
      }
    }
    for (int g = 0; g < G; ++g) {
      const __m512 sv = _mm512_load_ps(p.scales[g]->s[b]), mv = _mm512_load_ps(p.scales[g]->m[b]);
      for (int t = 0; t < T; ++t) {
        const __m512 v = _mm512_cvtepi32_ps(dot[g][t]);
        f[g][t] = b == 0 ? _mm512_mul_ps(v, sv) : _mm512_fmadd_ps(v, sv, f[g][t]);
        f[g][t] = _mm512_fmadd_ps(mv, _mm512_set1_ps(p.asum[t][b]), f[g][t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    const __m512 da = _mm512_set1_ps(p.da[t]);
    for (int g = 0; g < G; ++g) {
      float* y = p.y[t] + g * kLanes;
      _mm512_store_ps(y,
                      p.first ? _mm512_mul_ps(f[g][t], da) : _mm512_fmadd_ps(f[g][t], da, _mm512_load_ps(y)));
    }
  }
}

using PassFn = void (*)(const Pass&);

template <int G>
PassFn by_tokens(int t) {
  switch (t) {
    case 1:
      return pass_kernel<G, 1>;
    case 2:
      return pass_kernel<G, 2>;
    case 3:
      return pass_kernel<G, 3>;
    case 4:
      return pass_kernel<G, 4>;
    case 5:
      return pass_kernel<G, 5>;
    default:
      return pass_kernel<G, 6>;
  }
}

}  // namespace

void gemm_q4k_packed(const PackedQ4K& p, int64_t b, GemmTokens tokens, float* y, int64_t ldy) {
  if (tokens.count <= 0) return;
  const int groups = p.panels(b);
  const int64_t rows = std::min(kPackedBlockRows, p.rows - b * kPackedBlockRows), units = p.units();
  const size_t unit_stride = groups * kPackedPieceBytes;
  const uint8_t* block = p.block(b);
  thread_local std::vector<float> acc_buf;
  float* acc = grow(acc_buf, static_cast<size_t>(tokens.count * 2 * kLanes) + kLanes);
  acc += (16 - reinterpret_cast<uintptr_t>(acc) / 4 % 16) % 16;  // 64-byte aligned
  alignas(64) static thread_local Scales scales[2];
  constexpr size_t act_stride = sizeof(quant::BlockQ8_K), levels_at = offsetof(quant::BlockQ8_K, qs);
  const size_t da_at = static_cast<size_t>(units * kSubs) * 4;
  const PassFn full = groups == 2 ? by_tokens<2>(kTokens) : by_tokens<1>(kTokens);
  const int per_sub = static_cast<int>((unit_stride / 64 + kSubs - 1) / kSubs);

  for (int64_t u = 0; u < units; ++u) {
    Pass ps{};
    for (int g = 0; g < groups; ++g) {
      ps.piece[g] = block + u * unit_stride + g * kPackedPieceBytes;
      unpack_scales(ps.piece[g], scales[g]);
      ps.scales[g] = &scales[g];
    }
    ps.first = u == 0;
    // The stream runs on into the next block, which is usually this thread's next task.
    ps.prefetch = reinterpret_cast<const char*>(block + (u + kAhead) * unit_stride);
    ps.per_sub = per_sub;
    for (int64_t t0 = 0; t0 < tokens.count; t0 += kTokens) {
      const int nt = static_cast<int>(std::min<int64_t>(kTokens, tokens.count - t0));
      for (int t = 0; t < nt; ++t) {
        const uint8_t* side = tokens.side[t0 + t];
        ps.act[t] = tokens.act[t0 + t] + u * act_stride + levels_at;
        ps.asum[t] = reinterpret_cast<const float*>(side) + u * kSubs;
        ps.da[t] = reinterpret_cast<const float*>(side + da_at)[u];
        ps.y[t] = acc + (t0 + t) * 2 * kLanes;
      }
      (nt == kTokens ? full : groups == 2 ? by_tokens<2>(nt) : by_tokens<1>(nt))(ps);
      ps.per_sub = 0;  // the first pass asked for the lines
    }
  }
  gemm_detail::store_rows(acc, tokens.count, rows, y, ldy);
}

}  // namespace onecard::cpu
