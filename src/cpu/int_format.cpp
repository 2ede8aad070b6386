#include "cpu/int_format.h"

#include <cstring>

#include "base/half.h"
#include "quant/blocks.h"
#include "quant/iq_tables.h"

namespace onecard::cpu {
namespace {

using namespace quant;

// Legacy 32-element nibble layout: element j in the low nibble of qs[j], j + 16 in the high one.
void nibbles(const uint8_t* qs, uint8_t* q) {
  for (int j = 0; j < 16; ++j) {
    q[j] = qs[j] & 15;
    q[j + 16] = qs[j] >> 4;
  }
}

void add_fifth_bit(uint32_t qh, uint8_t* q) {
  for (int j = 0; j < 32; ++j) q[j] = static_cast<uint8_t>(q[j] | (((qh >> j) & 1) << 4));
}

void unpack_q4_0(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockQ4_0*>(p);
  nibbles(b.qs, u.q);
  u.s[0] = fp16_to_fp32(b.d);
  u.m[0] = 0;
}

void unpack_q4_1(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockQ4_1*>(p);
  nibbles(b.qs, u.q);
  u.s[0] = fp16_to_fp32(b.d);
  u.m[0] = fp16_to_fp32(b.m);
}

void unpack_q5_0(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockQ5_0*>(p);
  nibbles(b.qs, u.q);
  add_fifth_bit(load_u32(b.qh), u.q);
  u.s[0] = fp16_to_fp32(b.d);
  u.m[0] = 0;
}

void unpack_q5_1(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockQ5_1*>(p);
  nibbles(b.qs, u.q);
  add_fifth_bit(load_u32(b.qh), u.q);
  u.s[0] = fp16_to_fp32(b.d);
  u.m[0] = fp16_to_fp32(b.m);
}

void unpack_q8_0(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockQ8_0*>(p);
  for (int j = 0; j < 32; ++j) u.q[j] = static_cast<uint8_t>(b.qs[j] + 128);
  u.s[0] = fp16_to_fp32(b.d);
  u.m[0] = 0;
}

void unpack_iq4_nl(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockIQ4_NL*>(p);
  for (int j = 0; j < 16; ++j) {
    u.q[j] = static_cast<uint8_t>(kIq4nlValues[b.qs[j] & 15] + 128);
    u.q[j + 16] = static_cast<uint8_t>(kIq4nlValues[b.qs[j] >> 4] + 128);
  }
  u.s[0] = fp16_to_fp32(b.d);
  u.m[0] = 0;
}

// Q2_K and Q3_K: element e's two low bits at byte 32 * (e / 128) + e % 32, shift 2 * ((e % 128) / 32).
int two_bits(const uint8_t* qs, int e) {
  return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

void unpack_q2_k(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockQ2_K*>(p);
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  for (int e = 0; e < kQK_K; ++e) u.q[e] = static_cast<uint8_t>(two_bits(b.qs, e));
  for (int k = 0; k < 16; ++k) {
    u.s[k] = d * static_cast<float>(b.scales[k] & 15);
    u.m[k] = -(dmin * static_cast<float>(b.scales[k] >> 4));
  }
}

void unpack_q3_k(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockQ3_K*>(p);
  const float d = fp16_to_fp32(b.d);
  for (int e = 0; e < kQK_K; ++e) {
    u.q[e] = static_cast<uint8_t>(two_bits(b.qs, e) | (((b.hmask[e % 32] >> (e / 32)) & 1) << 2));
  }
  for (int k = 0; k < 16; ++k) {
    u.s[k] = d * static_cast<float>(q3k_scale(k, b.scales) - 32);
    u.m[k] = 0;
  }
}

template <class Block>
void k_scales(const Block& b, UnpackedUnit& u) {
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  for (int k = 0; k < 8; ++k) {
    uint8_t sc, mn;
    k_scale_min(k, b.scales, &sc, &mn);
    u.s[k] = d * static_cast<float>(sc);
    u.m[k] = -(dmin * static_cast<float>(mn));
  }
}

void unpack_q4_k(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockQ4_K*>(p);
  for (int k = 0; k < 8; ++k) {
    for (int l = 0; l < 32; ++l) u.q[32 * k + l] = (b.qs[32 * (k / 2) + l] >> (4 * (k % 2))) & 15;
  }
  k_scales(b, u);
}

void unpack_q5_k(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockQ5_K*>(p);
  for (int k = 0; k < 8; ++k) {
    for (int l = 0; l < 32; ++l) {
      const int low = (b.qs[32 * (k / 2) + l] >> (4 * (k % 2))) & 15;
      u.q[32 * k + l] = static_cast<uint8_t>(low | (((b.qh[l] >> k) & 1) << 4));
    }
  }
  k_scales(b, u);
}

void unpack_q6_k(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockQ6_K*>(p);
  const float d = fp16_to_fp32(b.d);
  for (int e = 0; e < kQK_K; ++e) {
    const int h = e / 128, i = (e % 128) / 32, l = e % 32;
    const int low = (b.ql[64 * h + 32 * (i & 1) + l] >> (4 * (i >> 1))) & 15;
    const int high = (b.qh[32 * h + l] >> (2 * i)) & 3;
    u.q[e] = static_cast<uint8_t>(low | (high << 4));
  }
  for (int k = 0; k < 16; ++k) {
    u.s[k] = d * static_cast<float>(b.scales[k]);
    u.m[k] = 0;
  }
}

void unpack_iq4_xs(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockIQ4_XS*>(p);
  const float d = fp16_to_fp32(b.d);
  for (int g = 0; g < 8; ++g) {
    const int ls = ((b.scales_l[g / 2] >> (4 * (g % 2))) & 15) | (((b.scales_h >> (2 * g)) & 3) << 4);
    u.s[g] = d * static_cast<float>(ls - 32);
    u.m[g] = 0;
    const uint8_t* qs = b.qs + 16 * g;
    for (int j = 0; j < 16; ++j) {
      u.q[32 * g + j] = static_cast<uint8_t>(kIq4nlValues[qs[j] & 15] + 128);
      u.q[32 * g + j + 16] = static_cast<uint8_t>(kIq4nlValues[qs[j] >> 4] + 128);
    }
  }
}

// The IQ grids in the integer view: eight grid coordinates with their signs, biased by z so that every level
// is unsigned, and one scale for the sub-block. scale * (q - z) = scale * (+-grid), the reference's product.
void grid8(uint64_t row, uint8_t signs, int zero, uint8_t* q) {
  for (int j = 0; j < 8; ++j) {
    const int g = static_cast<int>((row >> (8 * j)) & 0xff);
    q[j] = static_cast<uint8_t>(zero + ((signs >> j) & 1 ? -g : g));
  }
}

void unpack_iq2_xxs(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockIQ2_XXS*>(p);
  const float d = fp16_to_fp32(b.d);
  for (int g = 0; g < 8; ++g) {
    const uint32_t idx = b.qs[4 * g] | (static_cast<uint32_t>(b.qs[4 * g + 1]) << 16);
    const uint32_t meta = b.qs[4 * g + 2] | (static_cast<uint32_t>(b.qs[4 * g + 3]) << 16);
    u.s[g] = d * (0.5f + static_cast<float>(meta >> 28)) * 0.25f;
    u.m[g] = 0;
    for (int l = 0; l < 4; ++l) {
      grid8(kIq2xxsGrid[(idx >> (8 * l)) & 0xff], kIqSigns[(meta >> (7 * l)) & 127], 64,
            u.q + 32 * g + 8 * l);
    }
  }
}

// IQ2_XS and IQ2_S: a 4-bit scale per 16 elements, two to a byte.
void iq2_scales(float d, const uint8_t* scales, UnpackedUnit& u) {
  for (int k = 0; k < 16; ++k) {
    u.s[k] = d * (0.5f + static_cast<float>((scales[k / 2] >> (4 * (k % 2))) & 0xf)) * 0.25f;
    u.m[k] = 0;
  }
}

void unpack_iq2_xs(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockIQ2_XS*>(p);
  iq2_scales(fp16_to_fp32(b.d), b.scales, u);
  for (int i = 0; i < 32; ++i) grid8(kIq2xsGrid[b.qs[i] & 511], kIqSigns[b.qs[i] >> 9], 64, u.q + 8 * i);
}

void unpack_iq2_s(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockIQ2_S*>(p);
  iq2_scales(fp16_to_fp32(b.d), b.scales, u);
  const uint8_t* signs = b.qs + kQK_K / 8;
  for (int i = 0; i < 32; ++i) {
    const int index = b.qs[i] | (((b.qh[i / 4] >> (2 * (i % 4))) & 3) << 8);
    grid8(kIq2sGrid[index], signs[i], 64, u.q + 8 * i);
  }
}

void unpack_iq3_xxs(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockIQ3_XXS*>(p);
  const float d = fp16_to_fp32(b.d);
  for (int g = 0; g < 8; ++g) {
    const uint32_t meta = load_u32(b.qs + kQK_K / 4 + 4 * g);
    u.s[g] = d * (0.5f + static_cast<float>(meta >> 28)) * 0.5f;
    u.m[g] = 0;
    for (int l = 0; l < 4; ++l) {
      const uint64_t row = kIq3xxsGrid[b.qs[8 * g + 2 * l]] |
                           (static_cast<uint64_t>(kIq3xxsGrid[b.qs[8 * g + 2 * l + 1]]) << 32);
      grid8(row, kIqSigns[(meta >> (7 * l)) & 127], 64, u.q + 32 * g + 8 * l);
    }
  }
}

void unpack_iq3_s(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockIQ3_S*>(p);
  const float d = fp16_to_fp32(b.d);
  for (int g = 0; g < 8; ++g) {
    u.s[g] = d * static_cast<float>(1 + 2 * ((b.scales[g / 2] >> (4 * (g % 2))) & 0xf));
    u.m[g] = 0;
    for (int l = 0; l < 4; ++l) {
      const int i0 = b.qs[8 * g + 2 * l] | (((b.qh[g] >> (2 * l)) & 1) << 8);
      const int i1 = b.qs[8 * g + 2 * l + 1] | (((b.qh[g] >> (2 * l + 1)) & 1) << 8);
      const uint64_t row = kIq3sGrid[i0] | (static_cast<uint64_t>(kIq3sGrid[i1]) << 32);
      grid8(row, b.signs[4 * g + l], 16, u.q + 32 * g + 8 * l);
    }
  }
}

// IQ1: a coordinate g in {-1, 0, 1} plus the shift +-1/8 is (8g +- 1) / 8, an integer over 8, so the levels
// are 8g +- 1 (+ 16) and the scale carries the 1/8, exactly.
void iq1_8(uint64_t row, bool negative_shift, uint8_t* q) {
  for (int j = 0; j < 8; ++j) {
    const int g = static_cast<int8_t>((row >> (8 * j)) & 0xff);
    q[j] = static_cast<uint8_t>(16 + 8 * g + (negative_shift ? -1 : 1));
  }
}

void unpack_iq1_s(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockIQ1_S*>(p);
  const float d = fp16_to_fp32(b.d);
  for (int g = 0; g < 8; ++g) {
    const uint16_t qh = b.qh[g];
    u.s[g] = d * static_cast<float>(2 * ((qh >> 12) & 7) + 1) * 0.125f;
    u.m[g] = 0;
    for (int l = 0; l < 4; ++l) {
      const int index = b.qs[4 * g + l] | (((qh >> (3 * l)) & 7) << 8);
      iq1_8(kIq1sGrid[index], (qh & 0x8000) != 0, u.q + 32 * g + 8 * l);
    }
  }
}

void unpack_iq1_m(const void* p, UnpackedUnit& u) {
  const auto& b = *static_cast<const BlockIQ1_M*>(p);
  uint16_t sc[4];
  std::memcpy(sc, b.scales, sizeof(sc));
  const auto dbits = static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) |
                                           (sc[3] & 0xf000));
  const float d = fp16_to_fp32(dbits);
  for (int g = 0; g < 8; ++g) {
    for (int l = 0; l < 4; ++l) {
      const int nib = (b.qh[2 * g + l / 2] >> (4 * (l % 2))) & 0xf;
      const int index = b.qs[4 * g + l] | ((nib & 7) << 8);
      iq1_8(kIq1sGrid[index], (nib & 8) != 0, u.q + 32 * g + 8 * l);
    }
    for (int h = 0; h < 2; ++h) {
      const int s = (sc[g / 2] >> (6 * (g % 2) + 3 * h)) & 7;
      u.s[2 * g + h] = d * static_cast<float>(2 * s + 1) * 0.125f;
      u.m[2 * g + h] = 0;
    }
  }
}

using gguf::GgmlType;

constexpr IntFormat kFormats[] = {
    {GgmlType::Q4_0, ActFormat::Q8_0, 32, 32, 8, false, sizeof(BlockQ4_0), unpack_q4_0},
    {GgmlType::Q4_1, ActFormat::Q8_0, 32, 32, 0, true, sizeof(BlockQ4_1), unpack_q4_1},
    {GgmlType::Q5_0, ActFormat::Q8_0, 32, 32, 16, false, sizeof(BlockQ5_0), unpack_q5_0},
    {GgmlType::Q5_1, ActFormat::Q8_0, 32, 32, 0, true, sizeof(BlockQ5_1), unpack_q5_1},
    {GgmlType::Q8_0, ActFormat::Q8_0, 32, 32, 128, false, sizeof(BlockQ8_0), unpack_q8_0},
    {GgmlType::IQ4_NL, ActFormat::Q8_0, 32, 32, 128, false, sizeof(BlockIQ4_NL), unpack_iq4_nl},
    {GgmlType::Q2_K, ActFormat::Q8_K, 256, 16, 0, true, sizeof(BlockQ2_K), unpack_q2_k},
    {GgmlType::Q3_K, ActFormat::Q8_K, 256, 16, 4, false, sizeof(BlockQ3_K), unpack_q3_k},
    {GgmlType::Q4_K, ActFormat::Q8_K, 256, 32, 0, true, sizeof(BlockQ4_K), unpack_q4_k},
    {GgmlType::Q5_K, ActFormat::Q8_K, 256, 32, 0, true, sizeof(BlockQ5_K), unpack_q5_k},
    {GgmlType::Q6_K, ActFormat::Q8_K, 256, 16, 32, false, sizeof(BlockQ6_K), unpack_q6_k},
    {GgmlType::IQ4_XS, ActFormat::Q8_K, 256, 32, 128, false, sizeof(BlockIQ4_XS), unpack_iq4_xs},
    {GgmlType::IQ2_XXS, ActFormat::Q8_K, 256, 32, 64, false, sizeof(BlockIQ2_XXS), unpack_iq2_xxs},
    {GgmlType::IQ2_XS, ActFormat::Q8_K, 256, 16, 64, false, sizeof(BlockIQ2_XS), unpack_iq2_xs},
    {GgmlType::IQ2_S, ActFormat::Q8_K, 256, 16, 64, false, sizeof(BlockIQ2_S), unpack_iq2_s},
    {GgmlType::IQ3_XXS, ActFormat::Q8_K, 256, 32, 64, false, sizeof(BlockIQ3_XXS), unpack_iq3_xxs},
    {GgmlType::IQ3_S, ActFormat::Q8_K, 256, 32, 16, false, sizeof(BlockIQ3_S), unpack_iq3_s},
    {GgmlType::IQ1_S, ActFormat::Q8_K, 256, 32, 16, false, sizeof(BlockIQ1_S), unpack_iq1_s},
    {GgmlType::IQ1_M, ActFormat::Q8_K, 256, 16, 16, false, sizeof(BlockIQ1_M), unpack_iq1_m},
};

}  // namespace

const IntFormat* int_format(gguf::GgmlType type) {
  for (const IntFormat& f : kFormats) {
    if (f.type == type) return &f;
  }
  return nullptr;
}

size_t act_block_bytes(ActFormat f) {
  return f == ActFormat::Q8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ8_K);
}

int act_block_elems(ActFormat f) {
  return f == ActFormat::Q8_0 ? kQK : kQK_K;
}

}  // namespace onecard::cpu
