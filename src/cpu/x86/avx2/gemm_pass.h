// One pass of the AVX2-family batched kernel (gemm.h): a span of interleaved units of one or two groups times
// a few tokens. The driver (gemm.cpp) is shared; the passes are compiled once per dot-product instruction
// (gemm_passes.h), vpmaddubsw for AVX2 and vpdpbusd for AVX-VNNI.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu/int_format.h"

namespace onecard::cpu::avx2 {

inline constexpr int kMaxTokens = 4;  // tokens per pass at most

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

using PassFn = void (*)(const Pass&);

// A family's passes for 1 to `tokens` tokens: every[t] takes all `groups` groups of a block at once (each
// broadcast activation feeds one vpmaddubsw per group), one[t] a single group (a block's last, partial one).
struct Passes {
  int groups, tokens;
  PassFn every[kMaxTokens + 1];
  PassFn one[kMaxTokens + 1];
};

// The passes for a format with vpmaddubsw (AVX2; x86/avx2/gemm_maddubs.cpp) and with vpdpbusd on ymm
// (AVX-VNNI; x86/avxvnni/gemm_vnni.cpp).
Passes maddubs_passes(const IntFormat& f);
Passes vnni_passes(const IntFormat& f);

}  // namespace onecard::cpu::avx2
