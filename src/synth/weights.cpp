#include "synth/weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/half.h"

namespace onecard::synth {
namespace {

// An approximately standard normal number from one 64-bit word: the Irwin-Hall sum of four 16-bit uniforms,
// centred and scaled to unit variance. Integer arithmetic and one multiply make it bit-identical everywhere,
// which Box-Muller through libm's log/sin/cos does not promise.
float gauss(uint64_t w) {
  const int32_t sum =
      static_cast<int32_t>((w & 0xffff) + ((w >> 16) & 0xffff) + ((w >> 32) & 0xffff) + (w >> 48));
  constexpr float kInvStd = 1.0f / 37837.23f;  // sqrt((65536^2 - 1) / 3)
  return static_cast<float>(sum - 131070) * kInvStd;
}

// A per-block factor in [0.75, 1.25): real blocks do not all share one scale.
float jitter(uint64_t w) {
  return 0.75f + 0.5f * static_cast<float>(w >> 40) * 0x1p-24f;
}

void put_u16(uint8_t* p, uint16_t v) {
  std::memcpy(p, &v, 2);
}

// Statistics of the random codes, for the scales: standard deviations of a difference of two uniform 0..127
// (Q8_0), a uniform nibble (Q4_K) and a uniform -32..31 (Q6_K); root mean squares of the sub-block scales as
// drawn below (uniform 32..63 for Q4_K, magnitude uniform 64..127 for Q6_K).
constexpr float kQ8Std = 52.2542f;
constexpr float kNibbleStd = 4.60977f;
constexpr float kQ4ScaleRms = 48.3891f;
constexpr float kQ6Std = 18.4730f;
constexpr float kQ6ScaleRms = 97.2702f;

constexpr uint32_t kQ8Bytes = 34;
constexpr uint32_t kQ4KBytes = 144;
constexpr uint32_t kQ6KBytes = 210;

}  // namespace

Result<TensorStream> TensorStream::create(uint64_t seed, std::string_view name, gguf::GgmlType type,
                                          Distribution dist) {
  switch (type) {
    case gguf::GgmlType::F32:
    case gguf::GgmlType::F16:
    case gguf::GgmlType::BF16:
      break;
    case gguf::GgmlType::Q8_0:
    case gguf::GgmlType::Q4_K:
    case gguf::GgmlType::Q6_K:
      if (dist.mean != 0.0f) {
        return make_error("tensor '{}': {} blocks are drawn with mean 0, not {}", name, gguf::type_name(type),
                          dist.mean);
      }
      break;
    default:
      return make_error("tensor '{}': cannot generate type {}", name, gguf::type_name(type));
  }
  return TensorStream(seed, name, type, dist);
}

TensorStream::TensorStream(uint64_t seed, std::string_view name, gguf::GgmlType type, Distribution dist)
    : rng_(seed, name), type_(type), dist_(dist), block_bytes_(gguf::traits(type).type_size) {}

void TensorStream::fill(std::span<uint8_t> out) {
  switch (type_) {
    case gguf::GgmlType::F16:
      fill_f16(out, false);
      return;
    case gguf::GgmlType::BF16:
      fill_f16(out, true);
      return;
    case gguf::GgmlType::Q8_0:
      fill_q8_0(out);
      return;
    case gguf::GgmlType::Q4_K:
      fill_q4_k(out);
      return;
    case gguf::GgmlType::Q6_K:
      fill_q6_k(out);
      return;
    default:
      fill_f32(out);
      return;
  }
}

void TensorStream::fill_f32(std::span<uint8_t> out) {
  for (size_t i = 0; i + 4 <= out.size(); i += 4) {
    const float v = dist_.mean + dist_.stddev * gauss(rng_.next());
    std::memcpy(out.data() + i, &v, 4);
  }
}

void TensorStream::fill_f16(std::span<uint8_t> out, bool bf16) {
  for (size_t i = 0; i + 2 <= out.size(); i += 2) {
    const float v = dist_.mean + dist_.stddev * gauss(rng_.next());
    put_u16(out.data() + i, bf16 ? fp32_to_bf16(v) : fp32_to_fp16(v));
  }
}

void TensorStream::fill_q8_0(std::span<uint8_t> out) {
  for (size_t b = 0; b + kQ8Bytes <= out.size(); b += kQ8Bytes) {
    uint8_t* blk = out.data() + b;
    put_u16(blk, fp32_to_fp16(dist_.stddev * jitter(rng_.next()) / kQ8Std));
    // Each 16-bit lane gives q = a - b with a, b uniform in 0..127: -127..127, peaked at 0 like real weights.
    for (int w = 0; w < 8; ++w) {
      const uint64_t r = rng_.next();
      for (int k = 0; k < 4; ++k) {
        const auto lane = static_cast<uint32_t>(r >> (16 * k));
        const int q = static_cast<int>(lane & 0x7f) - static_cast<int>((lane >> 8) & 0x7f);
        blk[2 + 4 * w + k] = static_cast<uint8_t>(static_cast<int8_t>(q));
      }
    }
  }
}

void TensorStream::fill_q4_k(std::span<uint8_t> out) {
  for (size_t b = 0; b + kQ4KBytes <= out.size(); b += kQ4KBytes) {
    uint8_t* blk = out.data() + b;
    const uint16_t d_bits = fp32_to_fp16(dist_.stddev * jitter(rng_.next()) / (kNibbleStd * kQ4ScaleRms));
    const float d = fp16_to_fp32(d_bits);
    // A nibble averages 7.5, so a sub-block's min m_j cancels 7.5*d*sc_j; dmin = 7.5*d keeps m_j near sc_j.
    const uint16_t dmin_bits = fp32_to_fp16(7.5f * d);
    const float dmin = fp16_to_fp32(dmin_bits);
    put_u16(blk, d_bits);
    put_u16(blk + 2, dmin_bits);
    const uint64_t r = rng_.next();
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; ++j) {
      sc[j] = static_cast<uint8_t>(32 + ((r >> (8 * j)) & 31));
      const float mj = dmin > 0.0f ? std::nearbyint(7.5f * d * sc[j] / dmin) : 0.0f;
      m[j] = static_cast<uint8_t>(std::clamp(mj, 0.0f, 63.0f));
    }
    uint8_t* scales = blk + 4;
    for (int j = 0; j < 4; ++j) {
      scales[j] = static_cast<uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
      scales[j + 4] = static_cast<uint8_t>((m[j] & 63) | ((m[j + 4] >> 4) << 6));
      scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
    }
    for (int w = 0; w < 16; ++w) {
      const uint64_t q = rng_.next();
      std::memcpy(blk + 16 + 8 * w, &q, 8);
    }
  }
}

void TensorStream::fill_q6_k(std::span<uint8_t> out) {
  for (size_t b = 0; b + kQ6KBytes <= out.size(); b += kQ6KBytes) {
    uint8_t* blk = out.data() + b;
    for (int w = 0; w < 24; ++w) {  // ql[128] and qh[64]
      const uint64_t q = rng_.next();
      std::memcpy(blk + 8 * w, &q, 8);
    }
    for (int w = 0; w < 2; ++w) {
      const uint64_t r = rng_.next();
      for (int k = 0; k < 8; ++k) {
        const auto byte = static_cast<uint32_t>((r >> (8 * k)) & 0xff);
        const int magnitude = 64 + static_cast<int>(byte & 63);
        blk[192 + 8 * w + k] =
            static_cast<uint8_t>(static_cast<int8_t>((byte & 0x80) ? -magnitude : magnitude));
      }
    }
    put_u16(blk + 208, fp32_to_fp16(dist_.stddev * jitter(rng_.next()) / (kQ6Std * kQ6ScaleRms)));
  }
}

}  // namespace onecard::synth
