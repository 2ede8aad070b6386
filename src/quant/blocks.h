// The GGUF block formats as packed structs, byte for byte as they lie in a file. Every struct has alignment 1
// so that a block may be read from any address (mmapped rows of odd-sized blocks, test buffers); compilers
// emit unaligned loads for the multi-byte fields. Half-precision fields hold raw IEEE fp16 bits.
#pragma once

#include <cstdint>
#include <cstring>

namespace onecard::quant {

inline constexpr int kQK = 32;     // elements of a block of the legacy formats (Q4_0 .. Q8_1, IQ4_NL)
inline constexpr int kQK_K = 256;  // elements of a super-block of the K and IQ formats

// Four bytes of a block (bit fields, sign words) as one little-endian word, from any address.
inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

#pragma pack(push, 1)

// x = d * (q - 8), q in [0, 15]; element j in the low nibble of qs[j], element j + 16 in its high nibble.
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQK / 2];
};

// x = d * q + m, q in [0, 15], nibbles as in Q4_0.
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK / 2];
};

// x = d * (q - 16), q in [0, 31]: nibbles as in Q4_0, the fifth bit of element j is bit j of qh
// (little-endian).
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};

// x = d * q + m, q in [0, 31], bits as in Q5_0.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};

// x = d * q, q in [-127, 127].
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];
};

// Q8_0 plus s = d * sum(q), the activation format that pairs with Q4_1 and Q5_1 weights.
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[kQK];
};

// 16 sub-blocks of 16: x = d * (scales[k] & 15) * q - dmin * (scales[k] >> 4), q in [0, 3].
// Element e: byte 32 * (e / 128) + e % 32 of qs, bits 2 * ((e % 128) / 32) and up.
struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  uint16_t d;
  uint16_t dmin;
};

// 16 sub-blocks of 16: x = d * (s_k - 32) * q, q in [-4, 3]: the low two bits of q + 4 lie as in Q2_K, the
// third (set = no -4) in hmask[e % 32], bit e / 32. The 6-bit s_k: low nibble in scales[k % 8] (k < 8: low
// half, else high half), high two bits in scales[8 + k % 4], bits 2 * (k / 4).
struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];
  uint16_t d;
};

// 8 sub-blocks of 32: x = d * sc_k * q - dmin * m_k, q in [0, 15], 6-bit sc_k and m_k packed in 12 bytes
// (see k_scale_min). Sub-blocks 2c and 2c + 1 share qs[32c .. 32c + 31]: low nibbles, then high nibbles.
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];
};

// Q4_K with a fifth bit: element 32k + l has it in qh[l], bit k.
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};

// 16 sub-blocks of 16: x = d * scales[k] * (q - 32), q in [0, 63]. In each half h (128 elements) element
// 32i + l (i < 4, l < 32) has its low nibble in ql[64h + 32 * (i & 1) + l] (low nibble for i < 2, else high)
// and its high two bits in qh[32h + l], bits 2i.
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};

// Activations for the K formats: x = d * q with a float d, and the sums of each 16 quants for the mins.
struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};

// 8 groups of 32, each 8 bytes: four grid indices (bytes 0-3), then a 32-bit word holding four 7-bit sign
// indices and, in its top 4 bits, the scale s: x = d * (0.5 + s) / 4 * grid * sign.
struct BlockIQ2_XXS {
  uint16_t d;
  uint16_t qs[kQK_K / 8];
};

// Per group of 32 four 16-bit codes: a 9-bit grid index, a 7-bit sign index; scales: one nibble per 16.
struct BlockIQ2_XS {
  uint16_t d;
  uint16_t qs[kQK_K / 8];
  uint8_t scales[kQK_K / 32];
};

// qs: 32 low bytes of 10-bit grid indices, then 32 sign bytes; qh: per group the high 2 bits of its 4
// indices.
struct BlockIQ2_S {
  uint16_t d;
  uint8_t qs[kQK_K / 4];
  uint8_t qh[kQK_K / 32];
  uint8_t scales[kQK_K / 32];
};

// qs: 64 grid indices (4 values each), then per group a 32-bit word of four 7-bit sign indices and the scale
// s in its top 4 bits: x = d * (0.5 + s) / 2 * grid * sign.
struct BlockIQ3_XXS {
  uint16_t d;
  uint8_t qs[3 * kQK_K / 8];
};

// 9-bit grid indices (low bytes in qs, ninth bits in qh, one byte per group), explicit sign bytes and 4-bit
// scales, one per group: x = d * (1 + 2s) * grid * sign.
struct BlockIQ3_S {
  uint16_t d;
  uint8_t qs[kQK_K / 4];
  uint8_t qh[kQK_K / 32];
  uint8_t signs[kQK_K / 8];
  uint8_t scales[kQK_K / 64];
};

// 11-bit indices into a grid of {-1, 0, 1}^8: low bytes in qs; per group qh holds the three high bits of each
// of its 4 indices, a 3-bit scale s (bits 12-14) and the sign of the shift (bit 15): x = d (2s+1) (grid ±
// 1/8).
struct BlockIQ1_S {
  uint16_t d;
  uint8_t qs[kQK_K / 8];
  uint16_t qh[kQK_K / 32];
};

// IQ1_S with a scale and a shift per 16 elements; the fp16 super-scale is spread over the top nibbles of the
// four 16-bit scale words.
struct BlockIQ1_M {
  uint8_t qs[kQK_K / 8];
  uint8_t qh[kQK_K / 16];
  uint8_t scales[kQK_K / 32];
};

// x = d * kIq4nlValues[q], nibbles as in Q4_0.
struct BlockIQ4_NL {
  uint16_t d;
  uint8_t qs[kQK / 2];
};

// 8 groups of 32 with 6-bit scales (low nibbles in scales_l, high two bits in scales_h): x = d (ls - 32)
// v[q].
struct BlockIQ4_XS {
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[kQK_K / 64];
  uint8_t qs[kQK_K / 2];
};

#pragma pack(pop)

static_assert(sizeof(BlockQ4_0) == 18 && alignof(BlockQ4_0) == 1);
static_assert(sizeof(BlockQ4_1) == 20 && alignof(BlockQ4_1) == 1);
static_assert(sizeof(BlockQ5_0) == 22 && alignof(BlockQ5_0) == 1);
static_assert(sizeof(BlockQ5_1) == 24 && alignof(BlockQ5_1) == 1);
static_assert(sizeof(BlockQ8_0) == 34 && alignof(BlockQ8_0) == 1);
static_assert(sizeof(BlockQ8_1) == 36 && alignof(BlockQ8_1) == 1);
static_assert(sizeof(BlockQ2_K) == 84 && alignof(BlockQ2_K) == 1);
static_assert(sizeof(BlockQ3_K) == 110 && alignof(BlockQ3_K) == 1);
static_assert(sizeof(BlockQ4_K) == 144 && alignof(BlockQ4_K) == 1);
static_assert(sizeof(BlockQ5_K) == 176 && alignof(BlockQ5_K) == 1);
static_assert(sizeof(BlockQ6_K) == 210 && alignof(BlockQ6_K) == 1);
static_assert(sizeof(BlockQ8_K) == 292 && alignof(BlockQ8_K) == 1);
static_assert(sizeof(BlockIQ2_XXS) == 66 && alignof(BlockIQ2_XXS) == 1);
static_assert(sizeof(BlockIQ2_XS) == 74 && alignof(BlockIQ2_XS) == 1);
static_assert(sizeof(BlockIQ2_S) == 82 && alignof(BlockIQ2_S) == 1);
static_assert(sizeof(BlockIQ3_XXS) == 98 && alignof(BlockIQ3_XXS) == 1);
static_assert(sizeof(BlockIQ3_S) == 110 && alignof(BlockIQ3_S) == 1);
static_assert(sizeof(BlockIQ1_S) == 50 && alignof(BlockIQ1_S) == 1);
static_assert(sizeof(BlockIQ1_M) == 56 && alignof(BlockIQ1_M) == 1);
static_assert(sizeof(BlockIQ4_NL) == 18 && alignof(BlockIQ4_NL) == 1);
static_assert(sizeof(BlockIQ4_XS) == 136 && alignof(BlockIQ4_XS) == 1);

// The 6-bit scale and min of sub-block j (0-7) of a Q4_K or Q5_K block: j < 4 in the low 6 bits of bytes j
// and j + 4; j >= 4 in the nibbles of byte j + 4 plus the top 2 bits of bytes j - 4 and j.
inline void k_scale_min(int j, const uint8_t* s, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = s[j] & 63;
    *min = s[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// The 6-bit biased scale (0-63, subtract 32) of sub-block k (0-15) of a Q3_K block.
inline int q3k_scale(int k, const uint8_t* s) {
  const int low = k < 8 ? (s[k] & 0xf) : (s[k - 8] >> 4);
  const int high = (s[8 + k % 4] >> (2 * (k / 4))) & 3;
  return low | (high << 4);
}

}  // namespace onecard::quant
