// The integer view every int8-path weight format shares: a unit of weights (one activation block: 32 or 256
// elements) is unsigned 8-bit levels q with, per sub-block of 16 or 32 elements, a float scale s and offset
// m, and per format an integer zero point z, so that w = s * (q - z) + m. Signed formats are biased into
// unsigned levels (Q8_0, IQ4_NL, IQ4_XS by 128; Q3_K by 4, Q6_K by 32, Q4_0 by 8, Q5_0 by 16; the signed
// coordinates of the IQ2 and IQ3_XXS grids by 64, of IQ3_S by 16; IQ1's, times 8 with their shift, by 16),
// which makes every level a valid unsigned operand of vpdpbusd; m is non-zero only for the affine formats
// (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K). The dot with activations a = a_d * qa is a_d * sum_b (s_b * (D_b - z A_b) +
// m_b A_b), where D_b = sum q * qa and A_b = sum qa over the sub-block: the bias cancels exactly in integers,
// so only one rounding per sub-block remains.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gguf/types.h"

namespace onecard::cpu {

// How activations are quantized for a weight format: Q8_0 (fp16 scale per 32) for the legacy 32-element
// formats, Q8_K (float scale per 256, sums per 16) for the K and IQ4_XS super-blocks.
enum class ActFormat { Q8_0, Q8_K };

inline constexpr int kMaxUnit = 256;
inline constexpr int kMaxSubBlocks = 16;

struct UnpackedUnit {
  uint8_t q[kMaxUnit];
  float s[kMaxSubBlocks];
  float m[kMaxSubBlocks];
};

using UnpackFn = void (*)(const void* block, UnpackedUnit& out);

struct IntFormat {
  gguf::GgmlType type;
  ActFormat act;
  int unit;           // elements per weight block (= per activation block)
  int sub;            // elements per scale (16 or 32)
  int zero;           // z: the bias of the unsigned levels
  bool affine;        // m is used (otherwise 0); the affine formats all have z = 0
  size_t unit_bytes;  // bytes per weight block
  UnpackFn unpack;

  int subs() const { return unit / sub; }
};

// nullptr for formats without an integer path: F32/F16/BF16 multiply in float, and the rest (Q8_K as a
// weight) is dequantized per row.
const IntFormat* int_format(gguf::GgmlType type);

size_t act_block_bytes(ActFormat f);
int act_block_elems(ActFormat f);
// A Q8_0 row's blocks are followed by, per block, its scale as a float, then the sum of its levels as int32
// (act_q8_0_scales_at, act_q8_0_sums_at): the row dots read them there instead of widening the scale and
// summing the levels again for every weight row. Q8_K rows carry their sums in their blocks.
inline constexpr size_t kActQ8_0Extra = 8;
inline size_t act_row_bytes(ActFormat f, int64_t n) {
  const size_t extra = f == ActFormat::Q8_0 ? kActQ8_0Extra : 0;
  return static_cast<size_t>(n / act_block_elems(f)) * (act_block_bytes(f) + extra);
}
// Byte offsets of those extras in a Q8_0 row of n elements (unaligned).
inline size_t act_q8_0_scales_at(int64_t n) {
  return static_cast<size_t>(n / 32) * 34;
}
inline size_t act_q8_0_sums_at(int64_t n) {
  return static_cast<size_t>(n / 32) * 38;
}
// Quantizes n floats (a multiple of the activation block) with plain max-abs rounding (act_quant.h).
void quantize_act(ActFormat f, const float* x, void* dst, int64_t n);

}  // namespace onecard::cpu
