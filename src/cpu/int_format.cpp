#include "cpu/int_format.h"

#include <cstring>

#include "base/half.h"
#include "quant/blocks.h"
#include "quant/iq_tables.h"

namespace onecard::cpu {
namespace {

using namespace quant;

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

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
