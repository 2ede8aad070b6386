// The passes of the AVX2-family batched kernel (gemm_pass.h), included once per dot-product instruction by a
// file that first defines ONECARD_GEMM_TARGET (the functions' target attribute) and, in the namespace it
// includes this in, `constexpr bool kVnni`: false multiplies with vpmaddubsw, summing in int16 as long as no
// sum can saturate and widening with vpmaddwd; true with vpdpbusd, whose sums are int32 from the start.
// No include guard and no includes: it is included inside a namespace, after the includes of
// gemm_maddubs.cpp, and each including file compiles its own copy.
#ifndef ONECARD_GEMM_TARGET
#error "define ONECARD_GEMM_TARGET before including gemm_passes.h"
#endif

// vpmaddubsw steps whose int16 sums cannot saturate: each adds at most 2 * 127 * (largest |level|) to a lane.
int int16_steps(const IntFormat& f) {
  const int level = f.zero == 128 ? 128 : max_level(f);
  return 32767 / (2 * 127 * level);
}

// The weight vectors of groups [0, G) at column c of a unit's levels and, SIGNED, their sign operands.
template <int G, bool SIGNED>
ONECARD_GEMM_TARGET inline void load_step(const Pass& p, const uint8_t* unit, int c, __m256i w[G],
                                          __m256i sign_of[G]) {
  for (int g = 0; g < G; ++g) {
    const auto* v = reinterpret_cast<const __m256i*>(unit + g * p.group_span + c * kLanes * (SIGNED ? 2 : 1));
    w[g] = _mm256_load_si256(v);
    if constexpr (SIGNED) sign_of[g] = _mm256_load_si256(v + 1);
  }
}

// Token t's 4 activation bytes at `at`, in every lane.
ONECARD_GEMM_TARGET inline __m256i broadcast_act(const Pass& p, int t, size_t at) {
  return _mm256_set1_epi32(static_cast<int32_t>(quant::load_u32(p.act[t] + at)));
}

// The int16 sums s16[g][t] of steps [k0, k0 + STEPS) of 4 columns from column c0 of a unit's levels. SIGNED:
// the levels are the sign trick's pairs |w|, w (gemm.h).
template <int G, int T, bool SIGNED, int STEPS>
ONECARD_GEMM_TARGET inline void int16_sums(const Pass& p, const uint8_t* unit, size_t act_at, int c0,
                                           __m256i s16[G][T]) {
  for (int k = 0; k < STEPS; ++k) {
    const int c = c0 + 4 * k;
    __m256i w[G], sign_of[G];
    load_step<G, SIGNED>(p, unit, c, w, sign_of);
    for (int t = 0; t < T; ++t) {
      const __m256i a = broadcast_act(p, t, act_at + c);
      for (int g = 0; g < G; ++g) {
        const __m256i ag = SIGNED ? _mm256_sign_epi8(a, sign_of[g]) : a;
        const __m256i m = _mm256_maddubs_epi16(w[g], ag);
        s16[g][t] = k == 0 ? m : _mm256_add_epi16(s16[g][t], m);
        // Pins each sum to its step: otherwise GCC computes all products of an unrolled sub-block first and
        // spills them (a third slower).
        asm("" : "+x"(s16[g][t]));
      }
    }
  }
}

// The int32 sums dot[g][t] += steps [0, STEPS) of 4 columns from column c0 of a unit's levels, by vpdpbusd,
// which adds its four products into int32 and so needs no widening.
template <int G, int T, bool SIGNED, int STEPS>
ONECARD_GEMM_TARGET inline void int32_sums(const Pass& p, const uint8_t* unit, size_t act_at, int c0,
                                           __m256i dot[G][T]) {
  if constexpr (kVnni) {
    for (int k = 0; k < STEPS; ++k) {
      const int c = c0 + 4 * k;
      __m256i w[G], sign_of[G];
      load_step<G, SIGNED>(p, unit, c, w, sign_of);
      for (int t = 0; t < T; ++t) {
        const __m256i a = broadcast_act(p, t, act_at + c);
        for (int g = 0; g < G; ++g) {
          const __m256i ag = SIGNED ? _mm256_sign_epi8(a, sign_of[g]) : a;
          dot[g][t] = _mm256_dpbusd_avx_epi32(dot[g][t], w[g], ag);
        }
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
  static ONECARD_GEMM_TARGET void pass(const Pass& p) {
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
        if constexpr (kVnni) {
          int32_sums<G, T, SIGNED, kSteps>(p, unit, uu * p.act_stride, b * SUB, dot);
        } else {
          for (int k0 = 0; k0 < kSteps; k0 += STEPS) {
            __m256i s16[G][T];
            int16_sums<G, T, SIGNED, STEPS>(p, unit, uu * p.act_stride, b * SUB + 4 * k0, s16);
            for (int g = 0; g < G; ++g)
              for (int t = 0; t < T; ++t)
                dot[g][t] = _mm256_add_epi32(dot[g][t], _mm256_madd_epi16(s16[g][t], ones));
          }
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
  static constexpr int kGroups = 2, kTokens = SUB == 16 || kVnni ? 3 : 2;

  // Token t's activation sums of sub-blocks 2j and 2j + 1 as an int16 pair in every lane.
  template <int T>
  struct ActPairs {
    __m256i packed[T];  // sub-32 formats: the 8 sums as int16, pairs j at dwords 0, 1, 4, 5
    const uint8_t* bsums[T];

    ONECARD_GEMM_TARGET ActPairs(const Pass& p, size_t act_at) {
      for (int t = 0; t < T; ++t) {
        bsums[t] = p.act[t] + act_at + offsetof(quant::BlockQ8_K, bsums) - offsetof(quant::BlockQ8_K, qs);
        if constexpr (SUB == 32) {
          const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bsums[t]));
          const __m256i sums = _mm256_madd_epi16(b, _mm256_set1_epi16(1));
          packed[t] = _mm256_packs_epi32(sums, sums);
        }
      }
    }
    ONECARD_GEMM_TARGET __m256i at(int t, int j) const {
      if constexpr (SUB == 16)
        return _mm256_set1_epi32(static_cast<int32_t>(quant::load_u32(bsums[t] + 4 * j)));
      const int dword = j < 2 ? j : j + 2;
      return _mm256_permutevar8x32_epi32(packed[t], _mm256_set1_epi32(dword));
    }
  };

  template <int G, int T>
  static ONECARD_GEMM_TARGET void pass(const Pass& p) {
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
        if constexpr (kVnni) {
          // The sub-block's int32 sums times the scale, which the unit holds in both int16 halves.
          __m256i sub[G][T];
          for (int g = 0; g < G; ++g)
            for (int t = 0; t < T; ++t) sub[g][t] = _mm256_setzero_si256();
          int32_sums<G, T, false, kSteps>(p, unit, act_at, b * SUB, sub);
          for (int g = 0; g < G; ++g) {
            const __m256i sc = _mm256_srai_epi32(_mm256_load_si256(scales + g * p.group_span / 32 + b), 16);
            for (int t = 0; t < T; ++t)
              dot[g][t] = _mm256_add_epi32(dot[g][t], _mm256_mullo_epi32(sub[g][t], sc));
          }
        } else {
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
      }
      const ActPairs<T> pairs(p, act_at);
      for (int j = 0; j < kSubs / 2; ++j) {
        for (int t = 0; t < T; ++t) {
          const __m256i a = pairs.at(t, j);
          for (int g = 0; g < G; ++g) {
            const __m256i o = _mm256_load_si256(scales + g * p.group_span / 32 + kSubs + 1 + j);
            if constexpr (kVnni) {
              off[g][t] = _mm256_dpwssd_avx_epi32(off[g][t], o, a);
            } else {
              off[g][t] = _mm256_add_epi32(off[g][t], _mm256_madd_epi16(o, a));
            }
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

template <class K, int... T>
Passes passes_of(std::integer_sequence<int, T...>) {
  static_assert(K::kTokens <= kMaxTokens && K::kGroups <= static_cast<int>(kGemmBlockRows / kLanes));
  return Passes{K::kGroups,
                K::kTokens,
                {nullptr, K::template pass<K::kGroups, T + 1>...},
                {nullptr, K::template pass<1, T + 1>...}};
}

template <class K>
Passes passes_of() {
  return passes_of<K>(std::make_integer_sequence<int, K::kTokens>{});
}

// The kernels of the formats there are: for each sub-block shape, the int16 step counts that occur (with
// vpdpbusd only the one that sums a whole sub-block).
template <int SUB, int UNIT, bool AFFINE>
Passes by_steps(int steps) {
  constexpr int kSteps = SUB / 4;
  if (steps >= kSteps) return passes_of<FloatScaleKernel<SUB, UNIT, AFFINE, false, kSteps>>();
  if constexpr (!kVnni) {
    if (steps >= 4) return passes_of<FloatScaleKernel<SUB, UNIT, AFFINE, false, 4>>();
    if constexpr (!AFFINE) {
      if (steps >= 2) return passes_of<FloatScaleKernel<SUB, UNIT, false, false, 2>>();
      return passes_of<FloatScaleKernel<SUB, UNIT, false, false, 1>>();
    }
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
  assert(!kVnni && !f.affine && steps >= 2);
  if constexpr (!kVnni) return passes_of<IntScaleKernel<16, false, 2>>();
  return {};
}

Passes passes_for(const IntFormat& f) {
  // vpdpbusd never saturates: one kernel per shape, its steps all in int32.
  const int steps = kVnni ? 32 : int16_steps(f);
  if (int_scales(f)) return int_scale_passes(f, steps);
  if (f.zero == 128) {
    return f.unit == 32 ? passes_of<FloatScaleKernel<32, 32, false, true, 1>>()
                        : passes_of<FloatScaleKernel<32, 256, false, true, 1>>();
  }
  if (f.unit == 32) return f.affine ? by_steps<32, 32, true>(steps) : by_steps<32, 32, false>(steps);
  if (f.sub == 32) return f.affine ? by_steps<32, 256, true>(steps) : by_steps<32, 256, false>(steps);
  return f.affine ? by_steps<16, 256, true>(steps) : by_steps<16, 256, false>(steps);
}
