// The batched kernel: 16 or 32 interleaved weight rows times up to 6 tokens per pass, AVX-512 VNNI.
#include <algorithm>
#include <cassert>
#include <cstring>
#include <vector>

#include "cpu/scratch.h"
#include "cpu/x86.h"
#include "cpu/x86/avx512/gemm.h"
#include "quant/blocks.h"

namespace onecard::cpu {
namespace {

using gemm_detail::group_unit_bytes;
using gemm_detail::kLanes;

constexpr int kTokens = 6;  // tokens per pass: 2 groups x 6 tokens x 2 (sum, unit) registers
constexpr int kGroups = 2;  // 16-row groups per pass
static_assert(kGroups * kLanes == kGemmBlockRows);
// Columns interleaved at once, several units: each pass then runs over all of them, which spreads its fixed
// costs (pointers, the block sums it loads and stores) thinner. BM_Gemm/Q4_K/128 on a Zen 4 VM: 256 -> 512
// columns +10%, 1024 another 2-3%, though 1024 columns of Q4_K (40 KiB for 32 rows) overflow L1.
constexpr int kSpanElems = 1024;
// The largest group_span: units of 256 elements with 16 scales and 16 offsets, 6144 bytes each (the
// 32-element formats take at most 5120 per 256 elements).
constexpr int kMaxGroupSpan = 6144 * kSpanElems / 256;
// Lines of one span of a block's rows: 32 rows of up to 34 bytes per 32 columns (Q8_0; Q6_K 26.25), each on
// at most two lines more than its length fills.
constexpr int kMaxPrefetchLines = kGroups * kLanes * (kSpanElems / 32 * 34 / 64 + 2);

// One pass: kGroups (or fewer) groups of `span` interleaved units times T tokens.
struct Pass {
  const uint8_t* buf;            // group g's units at g * group_span
  size_t group_span;             // bytes
  size_t unit_bytes;             // one unit of one group
  int span;                      // units
  const uint8_t* act[kTokens];   // each token's activation levels for the first unit
  size_t act_stride;             // bytes from one unit's activation levels to the next
  const uint8_t* sums[kTokens];  // each token's per-sub-block sums for the first unit
  const float* da[kTokens];      // each token's activation scale for the first unit
  float* y[kTokens];             // each token's sums of this block's rows (aligned)
  bool first;                    // y is written, not accumulated
  // Lines to ask for, pf_per_sub of them per sub-block, while the pass computes (see gemm_int).
  const char* const* pf;
  int pf_count;
  int pf_per_sub;
};

// Q4_K's offsets of one unit, -dmin times the sum over sub-blocks of min times the token's activation sum, in
// integers, two sub-blocks per vpdpwssd (gemm.h): in float they took a multiply-add per sub-block besides the
// scale's, on the two pipes vpdpbusd needs.
template <int G, int T>
ONECARD_AVX512 inline void q4_k_offsets(const Pass& p, int uu, const float* m, __m512 (&f)[G][T]) {
  alignas(16) uint32_t pairs[T][4];  // each token's activation sums (token_side's floats) as 16-bit pairs
  for (int t = 0; t < T; ++t) {
    const __m256i a = _mm256_cvtps_epi32(_mm256_loadu_ps(reinterpret_cast<const float*>(p.sums[t]) + uu * 8));
    _mm_store_si128(reinterpret_cast<__m128i*>(pairs[t]), _mm256_cvtepi32_epi16(a));
  }
  __m512i sum[G][T];
  for (int i = 0; i < 4; ++i) {
    for (int t = 0; t < T; ++t) {
      const __m512i a = _mm512_set1_epi32(static_cast<int32_t>(pairs[t][i]));
      for (int g = 0; g < G; ++g) {
        const __m512i mins = _mm512_loadu_si512(m + g * p.group_span / 4 + i * kLanes);
        sum[g][t] = i == 0 ? _mm512_madd_epi16(mins, a) : _mm512_dpwssd_epi32(sum[g][t], mins, a);
      }
    }
  }
  for (int g = 0; g < G; ++g) {
    const __m512 neg_dmin = _mm512_loadu_ps(m + g * p.group_span / 4 + 4 * kLanes);
    for (int t = 0; t < T; ++t) f[g][t] = _mm512_mul_ps(_mm512_cvtepi32_ps(sum[g][t]), neg_dmin);
  }
}

// Q4K: the unit is Q4_K's, with integer mins (q4_k_offsets) in place of float offsets.
template <int G, int T, int SUB, int UNIT, bool AFFINE, bool Q4K>
ONECARD_AVX512 void pass_kernel(const Pass& p) {
  constexpr int kSubs = UNIT / SUB;
  __m512 acc[G][T];
  for (int uu = 0; uu < p.span; ++uu) {
    const uint8_t* unit = p.buf + uu * p.unit_bytes;
    const auto* s = reinterpret_cast<const float*>(unit + UNIT * kLanes);
    const float* m = s + kSubs * kLanes;
    __m512 f[G][T];
    if constexpr (Q4K) q4_k_offsets(p, uu, m, f);
    for (int b = 0; b < kSubs; ++b) {
      for (int i = (uu * kSubs + b) * p.pf_per_sub, end = std::min(p.pf_count, i + p.pf_per_sub); i < end;
           ++i) {
        _mm_prefetch(p.pf[i], _MM_HINT_T0);
      }
      __m512i dot[G][T];
      for (int t = 0; t < T; ++t) {
        const __m512i start =
            AFFINE
                ? _mm512_setzero_si512()
                : _mm512_set1_epi32(static_cast<int32_t>(quant::load_u32(p.sums[t] + (uu * kSubs + b) * 4)));
        for (int g = 0; g < G; ++g) dot[g][t] = start;
      }
      for (int k = 0; k < SUB / 4; ++k) {
        const int c = b * SUB + 4 * k;
        __m512i w[G];
        for (int g = 0; g < G; ++g) w[g] = _mm512_loadu_si512(unit + g * p.group_span + c * kLanes);
        for (int t = 0; t < T; ++t) {
          const __m512i a =
              _mm512_set1_epi32(static_cast<int32_t>(quant::load_u32(p.act[t] + uu * p.act_stride + c)));
          for (int g = 0; g < G; ++g) dot[g][t] = _mm512_dpbusd_epi32(dot[g][t], w[g], a);
        }
      }
      for (int g = 0; g < G; ++g) {
        const __m512 sv = _mm512_loadu_ps(s + g * p.group_span / 4 + b * kLanes);
        for (int t = 0; t < T; ++t) {
          const __m512 v = _mm512_cvtepi32_ps(dot[g][t]);
          f[g][t] = b == 0 && !Q4K ? _mm512_mul_ps(v, sv) : _mm512_fmadd_ps(v, sv, f[g][t]);
        }
      }
      if constexpr (AFFINE && !Q4K) {
        for (int g = 0; g < G; ++g) {
          const __m512 mv = _mm512_loadu_ps(m + g * p.group_span / 4 + b * kLanes);
          for (int t = 0; t < T; ++t) {
            float asum;
            std::memcpy(&asum, p.sums[t] + (uu * kSubs + b) * 4, 4);
            f[g][t] = _mm512_fmadd_ps(mv, _mm512_set1_ps(asum), f[g][t]);
          }
        }
      }
    }
    for (int t = 0; t < T; ++t) {
      const __m512 da = _mm512_set1_ps(p.da[t][uu]);
      for (int g = 0; g < G; ++g)
        acc[g][t] = uu == 0 ? _mm512_mul_ps(f[g][t], da) : _mm512_fmadd_ps(f[g][t], da, acc[g][t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    for (int g = 0; g < G; ++g) {
      float* y = p.y[t] + g * kLanes;
      _mm512_store_ps(y, p.first ? acc[g][t] : _mm512_add_ps(acc[g][t], _mm512_load_ps(y)));
    }
  }
}

using PassFn = void (*)(const Pass&);

template <int G, int SUB, int UNIT, bool AFFINE, bool Q4K>
PassFn by_tokens(int t) {
  switch (t) {
    case 1:
      return pass_kernel<G, 1, SUB, UNIT, AFFINE, Q4K>;
    case 2:
      return pass_kernel<G, 2, SUB, UNIT, AFFINE, Q4K>;
    case 3:
      return pass_kernel<G, 3, SUB, UNIT, AFFINE, Q4K>;
    case 4:
      return pass_kernel<G, 4, SUB, UNIT, AFFINE, Q4K>;
    case 5:
      return pass_kernel<G, 5, SUB, UNIT, AFFINE, Q4K>;
    default:
      return pass_kernel<G, 6, SUB, UNIT, AFFINE, Q4K>;
  }
}

template <int SUB, int UNIT, bool AFFINE, bool Q4K = false>
PassFn by_groups(int g, int t) {
  return g == 1 ? by_tokens<1, SUB, UNIT, AFFINE, Q4K>(t) : by_tokens<2, SUB, UNIT, AFFINE, Q4K>(t);
}

PassFn pass_fn(const IntFormat& f, int g, int t) {
  if (f.unit == 32) return f.affine ? by_groups<32, 32, true>(g, t) : by_groups<32, 32, false>(g, t);
  if (f.type == gguf::GgmlType::Q4_K) return by_groups<32, 256, true, true>(g, t);
  if (f.sub == 32) return f.affine ? by_groups<32, 256, true>(g, t) : by_groups<32, 256, false>(g, t);
  return f.affine ? by_groups<16, 256, true>(g, t) : by_groups<16, 256, false>(g, t);
}

ONECARD_AVX512 void prefetch_lines(const uint8_t* p, int64_t lines) {
  for (int64_t l = 0; l < lines; ++l) _mm_prefetch(reinterpret_cast<const char*>(p) + 64 * l, _MM_HINT_T1);
}

// The lines of the next span of units (from unit u) of rows [rb, rb + rows), into lines; returns their count.
// They lie in as many places as there are rows, too many streams for the hardware prefetcher, which is why
// they are asked for one by one.
int next_lines(const IntFormat& f, const Matrix& w, int64_t rb, int64_t rows, int64_t u, int64_t units,
               const char** lines) {
  if (u >= units) return 0;
  const int64_t span = std::min<int64_t>(std::max(1, kSpanElems / f.unit), units - u);
  const size_t len = static_cast<size_t>(span) * f.unit_bytes;
  int n = 0;
  for (int64_t r = rb; r < rb + rows; ++r) {
    const auto* piece = reinterpret_cast<const char*>(w.row(r) + u * f.unit_bytes);
    const auto first = reinterpret_cast<uintptr_t>(piece) & ~uintptr_t{63};
    for (uintptr_t l = first; l < reinterpret_cast<uintptr_t>(piece) + len; l += 64) {
      lines[n++] = reinterpret_cast<const char*>(l);
    }
  }
  assert(n <= kMaxPrefetchLines);
  return n;
}

}  // namespace

float* gemm_detail::block_sums(int64_t count) {
  thread_local std::vector<float> sums;
  float* p = grow(sums, static_cast<size_t>(count * kGroups * kLanes) + kLanes);
  return p + (16 - reinterpret_cast<uintptr_t>(p) / 4 % 16) % 16;
}

ONECARD_AVX512 void gemm_detail::store_rows(const float* acc, int64_t count, int64_t rows, float* y,
                                            int64_t ldy) {
  const auto low = static_cast<__mmask16>(rows >= kLanes ? 0xffff : (1u << rows) - 1);
  const auto high = static_cast<__mmask16>(rows <= kLanes ? 0 : (1u << (rows - kLanes)) - 1);
  for (int64_t t = 0; t < count; ++t) {
    const float* a = acc + t * kGroups * kLanes;
    _mm512_mask_storeu_ps(y + t * ldy, low, _mm512_load_ps(a));
    _mm512_mask_storeu_ps(y + t * ldy + kLanes, high, _mm512_load_ps(a + kLanes));
  }
}

void gemm_int(const IntFormat& f, const Matrix& w, int64_t r0, int64_t nr, GemmTokens tokens, float* y,
              int64_t ldy, const uint8_t* prefetch, size_t prefetch_bytes) {
  if (nr <= 0 || tokens.count <= 0) return;
  const int64_t n = w.cols, units = n / f.unit, blocks = (nr + kGroups * kLanes - 1) / (kGroups * kLanes);
  const int span_max = std::max(1, kSpanElems / f.unit);
  const size_t unit_bytes = group_unit_bytes(f), group_span = unit_bytes * static_cast<size_t>(span_max);
  alignas(64) static thread_local uint8_t buf[kGroups * kMaxGroupSpan];
  float* acc = gemm_detail::block_sums(tokens.count);
  assert(group_span <= kMaxGroupSpan);
  const size_t act_stride = act_block_bytes(f.act), act_levels = f.act == ActFormat::Q8_0 ? 2 : 4;
  const size_t scales_at = static_cast<size_t>(n / f.sub) * 4;
  thread_local const char* pf[kMaxPrefetchLines];

  // The prefetch range is spread evenly over the spans of every block.
  const int64_t spans = (units + span_max - 1) / span_max, steps = blocks * spans;
  const auto lines = static_cast<int64_t>((prefetch_bytes + 63) / 64);
  const int64_t per_step = (lines + steps - 1) / std::max<int64_t>(1, steps);

  for (int64_t blk = 0, step = 0; blk < blocks; ++blk) {
    const int64_t rb = r0 + blk * kGroups * kLanes, rows = std::min<int64_t>(kGroups * kLanes, r0 + nr - rb);
    const int groups = static_cast<int>((rows + kLanes - 1) / kLanes);
    const int last_valid = static_cast<int>(rows - (groups - 1) * kLanes);
    for (int64_t u0 = 0; u0 < units; u0 += span_max, ++step) {
      const int span = static_cast<int>(std::min<int64_t>(span_max, units - u0));
      const int64_t first_line = std::min(lines, step * per_step);
      prefetch_lines(prefetch + 64 * first_line, std::min(per_step, lines - first_line));
      const int pf_count = next_lines(f, w, rb, rows, u0 + span_max, units, pf);
      for (int g = 0; g < groups; ++g) {
        const uint8_t* row0 = w.row(rb + g * kLanes);
        const int valid = g == groups - 1 ? last_valid : kLanes;
        for (int uu = 0; uu < span; ++uu) {
          uint8_t* out = buf + g * group_span + uu * unit_bytes;
          gemm_detail::interleave_unit(f, row0, w.row_bytes, valid, u0 + uu, out);
        }
      }
      Pass p{};
      p.buf = buf;
      p.group_span = group_span;
      p.unit_bytes = unit_bytes;
      p.span = span;
      p.act_stride = act_stride;
      p.first = u0 == 0;
      p.pf = pf;
      p.pf_count = pf_count;
      // Spread over the passes of this step, a few lines per sub-block.
      const int64_t subs_in_step = ((tokens.count + kTokens - 1) / kTokens) * span * f.subs();
      p.pf_per_sub = static_cast<int>((pf_count + subs_in_step - 1) / subs_in_step);
      for (int64_t t0 = 0; t0 < tokens.count; t0 += kTokens) {
        const int nt = static_cast<int>(std::min<int64_t>(kTokens, tokens.count - t0));
        for (int t = 0; t < nt; ++t) {
          p.act[t] = tokens.act[t0 + t] + u0 * act_stride + act_levels;
          p.sums[t] = tokens.side[t0 + t] + u0 * f.subs() * 4;
          p.da[t] = reinterpret_cast<const float*>(tokens.side[t0 + t] + scales_at) + u0;
          p.y[t] = acc + (t0 + t) * kGroups * kLanes;
        }
        pass_fn(f, groups, nt)(p);
        const int asked = std::min(p.pf_count, p.pf_per_sub * span * f.subs());
        p.pf += asked;
        p.pf_count -= asked;
      }
    }
    gemm_detail::store_rows(acc, tokens.count, rows, y + (rb - r0), ldy);
  }
}

}  // namespace onecard::cpu
