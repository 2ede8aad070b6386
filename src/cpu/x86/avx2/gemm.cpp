// The AVX2 batched kernel: 16 interleaved weight rows (two groups of 8) times a few tokens per pass (one
// group times fewer tokens for the tails).
#include "cpu/x86/avx2/gemm.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <utility>
#include <vector>

#include "cpu/isa.h"
#include "cpu/kernels.h"
#include "cpu/scratch.h"
#include "cpu/x86.h"
#include "quant/blocks.h"

namespace onecard::cpu::avx2 {
namespace {

constexpr int kGroups = static_cast<int>(kGemmBlockRows / kLanes);
constexpr int kMaxTokens = 4;    // tokens per pass at most
constexpr int kSpanElems = 256;  // columns interleaved at once (several units of the 32-element formats)
// The largest group_unit_bytes times units per span: 256 columns with both sign-trick operands (Q8_0), or a
// 256-element unit with 16 scales and 16 offsets.
constexpr size_t kMaxGroupSpan = 2 * 256 * kLanes + 2 * 16 * kLanes * 4;

// vpmaddubsw steps whose int16 sums cannot saturate: each adds at most 2 * 127 * (largest |level|) to a lane.
int int16_steps(const IntFormat& f) {
  const int level = f.zero == 128 ? 128 : max_level(f);
  return 32767 / (2 * 127 * level);
}

struct Pass {
  const uint8_t* buf;               // this group's first unit
  size_t unit_bytes;                // one unit of one group
  size_t group_span;                // from this group's units to the next group's
  int span;                         // units
  const uint8_t* act[kMaxTokens];   // each token's activation levels for the first unit
  size_t act_stride;                // bytes from one unit's activation levels to the next
  const uint8_t* sums[kMaxTokens];  // each token's per-sub-block sums for the first unit
  const float* da[kMaxTokens];      // each token's activation scale for the first unit
  float* y[kMaxTokens];             // each token's sums of this group's rows (32-byte aligned)
  bool first;                       // y is written, not accumulated
};

// The int16 sums s16[g][t] of steps [k0, k0 + STEPS) of 4 columns from column c0 of a unit's levels. SIGNED:
// the levels are the sign trick's pairs |w|, w (gemm.h).
template <int G, int T, bool SIGNED, int STEPS>
ONECARD_AVX2 inline void int16_sums(const Pass& p, const uint8_t* unit, size_t act_at, int c0,
                                    __m256i s16[G][T]) {
  for (int k = 0; k < STEPS; ++k) {
    const int c = c0 + 4 * k;
    __m256i w[G], sign_of[G];
    for (int g = 0; g < G; ++g) {
      const auto* v =
          reinterpret_cast<const __m256i*>(unit + g * p.group_span + c * kLanes * (SIGNED ? 2 : 1));
      w[g] = _mm256_load_si256(v);
      if constexpr (SIGNED) sign_of[g] = _mm256_load_si256(v + 1);
    }
    for (int t = 0; t < T; ++t) {
      const __m256i a = _mm256_set1_epi32(static_cast<int32_t>(quant::load_u32(p.act[t] + act_at + c)));
      for (int g = 0; g < G; ++g) {
        __m256i ag = a;
        if constexpr (SIGNED) ag = _mm256_sign_epi8(a, sign_of[g]);
        const __m256i m = _mm256_maddubs_epi16(w[g], ag);
        s16[g][t] = k == 0 ? m : _mm256_add_epi16(s16[g][t], m);
        // Pins each sum to its step: otherwise GCC computes all products of an unrolled sub-block first and
        // spills them (a third slower).
        asm("" : "+x"(s16[g][t]));
      }
    }
  }
}

// Formats with float scales per sub-block: each sub-block's int32 sums are scaled and added in float. STEPS:
// vpmaddubsw results summed in int16 before they are widened. G groups of 8 rows times T tokens per pass.
template <int SUB, int UNIT, bool AFFINE, bool SIGNED, int STEPS>
struct FloatScaleKernel {
  static constexpr int kGroups = 2, kTokens = 3;

  template <int G, int T>
  static ONECARD_AVX2 void pass(const Pass& p) {
    constexpr int kSubs = UNIT / SUB, kSteps = SUB / 4, kLevelBytes = UNIT * kLanes * (SIGNED ? 2 : 1);
    static_assert(kSteps % STEPS == 0);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[G][T];
    for (int g = 0; g < G; ++g)
      for (int t = 0; t < T; ++t)
        acc[g][t] = p.first ? _mm256_setzero_ps() : _mm256_load_ps(p.y[t] + g * kLanes);
    for (int uu = 0; uu < p.span; ++uu) {
      const uint8_t* unit = p.buf + uu * p.unit_bytes;
      for (int b = 0; b < kSubs; ++b) {
        __m256i dot[G][T];
        for (int g = 0; g < G; ++g) {
          for (int t = 0; t < T; ++t) {
            dot[g][t] = AFFINE || SIGNED ? _mm256_setzero_si256()
                                         : _mm256_set1_epi32(static_cast<int32_t>(
                                               quant::load_u32(p.sums[t] + (uu * kSubs + b) * 4)));
          }
        }
        for (int k0 = 0; k0 < kSteps; k0 += STEPS) {
          __m256i s16[G][T];
          int16_sums<G, T, SIGNED, STEPS>(p, unit, uu * p.act_stride, b * SUB + 4 * k0, s16);
          for (int g = 0; g < G; ++g)
            for (int t = 0; t < T; ++t)
              dot[g][t] = _mm256_add_epi32(dot[g][t], _mm256_madd_epi16(s16[g][t], ones));
        }
        for (int g = 0; g < G; ++g) {
          const auto* s = reinterpret_cast<const float*>(unit + g * p.group_span + kLevelBytes);
          const __m256 sv = _mm256_load_ps(s + b * kLanes);
          for (int t = 0; t < T; ++t) {
            const __m256 scale = _mm256_mul_ps(sv, _mm256_set1_ps(p.da[t][uu]));
            acc[g][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[g][t]), scale, acc[g][t]);
          }
          if constexpr (AFFINE) {
            const __m256 mv = _mm256_load_ps(s + kSubs * kLanes + b * kLanes);
            for (int t = 0; t < T; ++t) {
              float asum;
              std::memcpy(&asum, p.sums[t] + (uu * kSubs + b) * 4, 4);
              acc[g][t] = _mm256_fmadd_ps(mv, _mm256_set1_ps(asum * p.da[t][uu]), acc[g][t]);
            }
          }
        }
      }
    }
    for (int g = 0; g < G; ++g)
      for (int t = 0; t < T; ++t) _mm256_store_ps(p.y[t] + g * kLanes, acc[g][t]);
  }
};

// The int_scales formats (256-element units, Q8_K activations): vpmaddwd multiplies the int16 sums by each
// row's integer sub-block scale, so int32 sums run over the whole unit and meet floats once, as d times the
// activation scale. The offsets multiply the activation sums of sub-block pairs, which Q8_K keeps per 16.
template <int SUB, bool AFFINE, int STEPS>
struct IntScaleKernel {
  // Measured: a third token pays for the sub-16 formats, while Q4_K's long int16 runs lose with it.
  static constexpr int kGroups = 2, kTokens = SUB == 16 ? 3 : 2;

  // Token t's activation sums of sub-blocks 2j and 2j + 1 as an int16 pair in every lane.
  template <int T>
  struct ActPairs {
    __m256i packed[T];  // sub-32 formats: the 8 sums as int16, pairs j at dwords 0, 1, 4, 5
    const uint8_t* bsums[T];

    ONECARD_AVX2 ActPairs(const Pass& p, size_t act_at) {
      for (int t = 0; t < T; ++t) {
        bsums[t] = p.act[t] + act_at + offsetof(quant::BlockQ8_K, bsums) - offsetof(quant::BlockQ8_K, qs);
        if constexpr (SUB == 32) {
          const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bsums[t]));
          const __m256i sums = _mm256_madd_epi16(b, _mm256_set1_epi16(1));
          packed[t] = _mm256_packs_epi32(sums, sums);
        }
      }
    }
    ONECARD_AVX2 __m256i at(int t, int j) const {
      if constexpr (SUB == 16)
        return _mm256_set1_epi32(static_cast<int32_t>(quant::load_u32(bsums[t] + 4 * j)));
      const int dword = j < 2 ? j : j + 2;
      return _mm256_permutevar8x32_epi32(packed[t], _mm256_set1_epi32(dword));
    }
  };

  template <int G, int T>
  static ONECARD_AVX2 void pass(const Pass& p) {
    constexpr int kSubs = 256 / SUB, kSteps = SUB / 4;
    static_assert(kSteps % STEPS == 0);
    for (int uu = 0; uu < p.span; ++uu) {
      const uint8_t* unit = p.buf + uu * p.unit_bytes;
      const auto* scales = reinterpret_cast<const __m256i*>(unit + 256 * kLanes);
      const size_t act_at = uu * p.act_stride;
      __m256i dot[G][T], off[G][T];
      for (int g = 0; g < G; ++g)
        for (int t = 0; t < T; ++t) dot[g][t] = off[g][t] = _mm256_setzero_si256();
      for (int b = 0; b < kSubs; ++b) {
        for (int k0 = 0; k0 < kSteps; k0 += STEPS) {
          __m256i s16[G][T];
          int16_sums<G, T, false, STEPS>(p, unit, act_at, b * SUB + 4 * k0, s16);
          for (int g = 0; g < G; ++g) {
            const __m256i sc = _mm256_load_si256(scales + g * p.group_span / 32 + b);
            for (int t = 0; t < T; ++t)
              dot[g][t] = _mm256_add_epi32(dot[g][t], _mm256_madd_epi16(s16[g][t], sc));
          }
        }
      }
      const ActPairs<T> pairs(p, act_at);
      for (int j = 0; j < kSubs / 2; ++j) {
        for (int t = 0; t < T; ++t) {
          const __m256i a = pairs.at(t, j);
          for (int g = 0; g < G; ++g) {
            const __m256i o = _mm256_load_si256(scales + g * p.group_span / 32 + kSubs + 1 + j);
            off[g][t] = _mm256_add_epi32(off[g][t], _mm256_madd_epi16(o, a));
          }
        }
      }
      for (int g = 0; g < G; ++g) {
        const auto* f = reinterpret_cast<const float*>(scales + g * p.group_span / 32 + kSubs);
        const __m256 d = _mm256_load_ps(f);
        for (int t = 0; t < T; ++t) {
          float* y = p.y[t] + g * kLanes;
          const __m256 da = _mm256_set1_ps(p.da[t][uu]);
          __m256 acc = p.first && uu == 0 ? _mm256_setzero_ps() : _mm256_load_ps(y);
          if constexpr (AFFINE) {
            const __m256 dmin = _mm256_load_ps(f + (1 + kSubs / 2) * kLanes);
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[g][t]), _mm256_mul_ps(d, da), acc);
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(off[g][t]), _mm256_mul_ps(dmin, da), acc);
          } else {
            const __m256i sum = _mm256_add_epi32(dot[g][t], off[g][t]);
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(d, da), acc);
          }
          _mm256_store_ps(y, acc);
        }
      }
    }
  }
};

using PassFn = void (*)(const Pass&);

// A family's passes: `full` takes `groups` groups times `tokens` tokens; tail[t] one group times t tokens.
struct Passes {
  int groups, tokens;
  PassFn full;
  PassFn tail[kMaxTokens + 1];
};

template <class K, int... T>
Passes passes_of(std::integer_sequence<int, T...>) {
  static_assert(K::kTokens <= kMaxTokens && K::kGroups <= kGroups);
  return Passes{K::kGroups,
                K::kTokens,
                K::template pass<K::kGroups, K::kTokens>,
                {nullptr, K::template pass<1, T + 1>...}};
}

template <class K>
Passes passes_of() {
  return passes_of<K>(std::make_integer_sequence<int, K::kTokens>{});
}

// The kernels of the formats there are: for each sub-block shape, the int16 step counts that occur.
template <int SUB, int UNIT, bool AFFINE>
Passes by_steps(int steps) {
  constexpr int kSteps = SUB / 4;
  if (steps >= kSteps) return passes_of<FloatScaleKernel<SUB, UNIT, AFFINE, false, kSteps>>();
  if (steps >= 4) return passes_of<FloatScaleKernel<SUB, UNIT, AFFINE, false, 4>>();
  if constexpr (!AFFINE) {
    if (steps >= 2) return passes_of<FloatScaleKernel<SUB, UNIT, false, false, 2>>();
    return passes_of<FloatScaleKernel<SUB, UNIT, false, false, 1>>();
  }
  assert(false && "an affine format's levels fit 4 int16 steps");
  return {};
}

// Q4_K (sub-blocks of 32 in int16), Q2_K and Q3_K (of 16), Q6_K (2 steps of its 4).
Passes int_scale_passes(const IntFormat& f, int steps) {
  if (f.sub == 32) {
    assert(f.affine && steps >= 8);
    return passes_of<IntScaleKernel<32, true, 8>>();
  }
  if (steps >= 4)
    return f.affine ? passes_of<IntScaleKernel<16, true, 4>>() : passes_of<IntScaleKernel<16, false, 4>>();
  assert(!f.affine && steps >= 2);
  return passes_of<IntScaleKernel<16, false, 2>>();
}

Passes passes_for(const IntFormat& f) {
  const int steps = int16_steps(f);
  if (int_scales(f)) return int_scale_passes(f, steps);
  if (f.zero == 128) {
    return f.unit == 32 ? passes_of<FloatScaleKernel<32, 32, false, true, 1>>()
                        : passes_of<FloatScaleKernel<32, 256, false, true, 1>>();
  }
  if (f.unit == 32) return f.affine ? by_steps<32, 32, true>(steps) : by_steps<32, 32, false>(steps);
  if (f.sub == 32) return f.affine ? by_steps<32, 256, true>(steps) : by_steps<32, 256, false>(steps);
  return f.affine ? by_steps<16, 256, true>(steps) : by_steps<16, 256, false>(steps);
}

// This thread's buffer for one block's sums times `count` tokens, kGemmBlockRows floats per token, 32-byte
// aligned: sums accumulate there per span, since y's rows may lie a multiple of 4 KiB apart.
float* block_sums(int64_t count) {
  thread_local std::vector<float> sums;
  float* p = grow(sums, static_cast<size_t>(count * kGemmBlockRows) + kLanes);
  return p + (kLanes - reinterpret_cast<uintptr_t>(p) / 4 % kLanes) % kLanes;
}

ONECARD_AVX2 void prefetch_lines(const uint8_t* p, int64_t lines) {
  for (int64_t l = 0; l < lines; ++l) _mm_prefetch(reinterpret_cast<const char*>(p) + 64 * l, _MM_HINT_T1);
}

// The file's rows [r0, ..) of w. Their units lie in as many streams as rows, more than the hardware
// prefetcher follows, so the next span's lines are asked for a few at a time between the passes over the
// span before.
class FileRows final : public UnitSource {
 public:
  FileRows(const IntFormat& f, const Matrix& w, int64_t r0)
      : f_(f), unpack_(kernels(Isa::Avx2).unpack[f.type]), w_(w), r0_(r0) {}

  void interleave(int64_t blk, int g, int valid, int64_t u, uint8_t* out) const override {
    interleave_unit(f_, unpack_, w_.row(r0_ + blk * kGemmBlockRows + g * kLanes), w_.row_bytes, valid, u,
                    out);
  }
  int lines(int64_t blk, int64_t rows, int64_t u, int64_t span, const char** out, int max) const override {
    int count = 0;
    const size_t len = static_cast<size_t>(span) * f_.unit_bytes;
    const int64_t rb = r0_ + blk * kGemmBlockRows;
    for (int64_t r = rb; r < rb + rows; ++r) {
      const auto* piece = reinterpret_cast<const char*>(w_.row(r) + u * f_.unit_bytes);
      const auto first = reinterpret_cast<uintptr_t>(piece) & ~uintptr_t{63};
      for (uintptr_t l = first; l < reinterpret_cast<uintptr_t>(piece) + len && count < max; l += 64) {
        out[count++] = reinterpret_cast<const char*>(l);
      }
    }
    return count;
  }

 private:
  const IntFormat& f_;
  UnpackFn unpack_;
  const Matrix& w_;
  int64_t r0_;
};

// The lines of the next span (UnitSource::lines), asked for a few at a time.
struct NextSpan {
  static constexpr int kMaxLines = static_cast<int>(kGemmBlockRows) * 6;  // 16 rows of at most 272 bytes
  const char* lines[kMaxLines];
  int count = 0, asked = 0;

  ONECARD_AVX2 void ask(int n) {
    for (const int end = std::min(count, asked + n); asked < end; ++asked)
      _mm_prefetch(lines[asked], _MM_HINT_T0);
  }
};

}  // namespace

void gemm_int(const IntFormat& f, const Matrix& w, int64_t r0, int64_t nr, GemmTokens tokens, float* y,
              int64_t ldy, const uint8_t* prefetch, size_t prefetch_bytes) {
  gemm_source(f, FileRows(f, w, r0), nr, w.cols, tokens, y, ldy, prefetch, prefetch_bytes);
}

void gemm_source(const IntFormat& f, const UnitSource& src, int64_t nr, int64_t n, GemmTokens tokens,
                 float* y, int64_t ldy, const uint8_t* prefetch, size_t prefetch_bytes) {
  if (nr <= 0 || tokens.count <= 0) return;
  const int64_t units = n / f.unit, blocks = (nr + kGemmBlockRows - 1) / kGemmBlockRows;
  const int span_max = std::max(1, kSpanElems / f.unit);
  const size_t unit_bytes = group_unit_bytes(f), group_span = unit_bytes * static_cast<size_t>(span_max);
  assert(group_span <= kMaxGroupSpan);
  alignas(32) static thread_local uint8_t buf[kGroups * kMaxGroupSpan];
  float* acc = block_sums(tokens.count);
  const Passes k = passes_for(f);
  const size_t act_stride = act_block_bytes(f.act), act_levels = f.act == ActFormat::Q8_0 ? 2 : 4;
  const size_t scales_at = static_cast<size_t>(n / f.sub) * 4;

  // The prefetch range is spread evenly over the spans of every block.
  const int64_t spans = (units + span_max - 1) / span_max, steps = blocks * spans;
  const auto lines = static_cast<int64_t>((prefetch_bytes + 63) / 64);
  const int64_t per_step = (lines + steps - 1) / std::max<int64_t>(1, steps);

  for (int64_t blk = 0, step = 0; blk < blocks; ++blk) {
    const int64_t rb = blk * kGemmBlockRows, rows = std::min<int64_t>(kGemmBlockRows, nr - rb);
    const int groups = static_cast<int>((rows + kLanes - 1) / kLanes);
    const int last_valid = static_cast<int>(rows - (groups - 1) * kLanes);
    for (int64_t u0 = 0; u0 < units; u0 += span_max, ++step) {
      const int span = static_cast<int>(std::min<int64_t>(span_max, units - u0));
      const int64_t first_line = std::min(lines, step * per_step);
      prefetch_lines(prefetch + 64 * first_line, std::min(per_step, lines - first_line));
      for (int g = 0; g < groups; ++g) {
        const int valid = g == groups - 1 ? last_valid : kLanes;
        for (int uu = 0; uu < span; ++uu)
          src.interleave(blk, g, valid, u0 + uu, buf + g * group_span + uu * unit_bytes);
      }
      // The span after this one: the next of this block, or the first of the next block.
      thread_local NextSpan next;
      next.count = next.asked = 0;
      if (u0 + span_max < units) {
        next.count = src.lines(blk, rows, u0 + span_max, std::min<int64_t>(span_max, units - u0 - span_max),
                               next.lines, NextSpan::kMaxLines);
      } else if (blk + 1 < blocks) {
        next.count = src.lines(blk + 1, std::min<int64_t>(kGemmBlockRows, nr - rb - kGemmBlockRows), 0,
                               std::min<int64_t>(span_max, units), next.lines, NextSpan::kMaxLines);
      }
      const int64_t passes = groups * ((tokens.count + k.tokens - 1) / k.tokens);
      const int per_pass = static_cast<int>((next.count + passes - 1) / passes);
      Pass p{};
      p.unit_bytes = unit_bytes;
      p.group_span = group_span;
      p.span = span;
      p.act_stride = act_stride;
      p.first = u0 == 0;
      for (int g = 0; g < groups;) {
        // Both groups of a block in one pass where the family takes two and all its tokens are there.
        const int gp = k.groups == 2 && g + 1 < groups ? 2 : 1;
        for (int64_t t0 = 0; t0 < tokens.count; t0 += k.tokens) {
          const int nt = static_cast<int>(std::min<int64_t>(k.tokens, tokens.count - t0));
          for (int t = 0; t < nt; ++t) {
            p.act[t] = tokens.act[t0 + t] + u0 * act_stride + act_levels;
            p.sums[t] = tokens.side[t0 + t] + u0 * f.subs() * 4;
            p.da[t] = reinterpret_cast<const float*>(tokens.side[t0 + t] + scales_at) + u0;
          }
          next.ask(per_pass);
          // A full pass covers the gp groups at once, the token tail one group at a time.
          const bool full = gp == k.groups && nt == k.tokens;
          for (int gi = g; gi < g + gp; gi += full ? gp : 1) {
            p.buf = buf + gi * group_span;
            for (int t = 0; t < nt; ++t) p.y[t] = acc + (t0 + t) * kGemmBlockRows + gi * kLanes;
            (full ? k.full : k.tail[nt])(p);
          }
        }
        g += gp;
      }
    }
    for (int64_t t = 0; t < tokens.count; ++t) {
      std::copy(acc + t * kGemmBlockRows, acc + t * kGemmBlockRows + rows, y + t * ldy + rb);
    }
  }
}

}  // namespace onecard::cpu::avx2
