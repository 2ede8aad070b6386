// Random tensor bytes of a given ggml type, streamed in pieces. The bytes depend only on (seed, tensor name,
// type, distribution) and on how far the stream has got, never on how it is cut into pieces, so one tensor of
// a generated file can be regenerated alone and compared.
//
// Quantized tensors are drawn directly as valid blocks (no quantizer is involved), with scales chosen so that
// the dequantized values have about the requested standard deviation and mean zero. Block layouts
// (little-endian, as ggml defines them):
//   Q8_0 (32 values, 34 bytes):  f16 d; int8 q[32];                      x = d*q, q in -127..127
//   Q4_K (256 values, 144 bytes): f16 d; f16 dmin; u8 scales[12]; u8 qs[128]
//        eight sub-blocks of 32 with 6-bit scale sc_j and min m_j: x = d*sc_j*q - dmin*m_j, q a nibble;
//        scales[j] (j<4) = sc_j | (sc_{j+4} >> 4) << 6, scales[j+4] (j<4) = m_j | (m_{j+4} >> 4) << 6,
//        scales[j+4] (j>=4) = (sc_j & 15) | (m_j & 15) << 4; qs byte 32*c+l holds sub-block 2c (low nibble)
//        and 2c+1 (high nibble) at position l.
//   Q6_K (256 values, 210 bytes): u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d
//        x = d*scales[i/16]*(q-32) with q six bits: four low bits from ql, two high bits from qh.
// Random ql/qh and nibble bytes are valid whatever their value, so they are filled with whole 64-bit words.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "base/result.h"
#include "base/rng.h"
#include "gguf/types.h"

namespace onecard::synth {

// Values are mean + stddev * (an approximately standard normal number). Quantized types support mean 0 only.
struct Distribution {
  float mean = 0.0f;
  float stddev = 1.0f;
  bool operator==(const Distribution&) const = default;
};

class TensorStream {
 public:
  // F32, F16, BF16, Q8_0, Q4_K and Q6_K; a quantized type with a non-zero mean is an error.
  static Result<TensorStream> create(uint64_t seed, std::string_view name, gguf::GgmlType type,
                                     Distribution dist);

  // Bytes of one block (one element for float types); every fill() is a whole number of them.
  uint32_t block_bytes() const { return block_bytes_; }
  // The next out.size() bytes of the tensor.
  void fill(std::span<uint8_t> out);

 private:
  TensorStream(uint64_t seed, std::string_view name, gguf::GgmlType type, Distribution dist);
  void fill_f32(std::span<uint8_t> out);
  void fill_f16(std::span<uint8_t> out, bool bf16);
  void fill_q8_0(std::span<uint8_t> out);
  void fill_q4_k(std::span<uint8_t> out);
  void fill_q6_k(std::span<uint8_t> out);

  Rng rng_;
  gguf::GgmlType type_;
  Distribution dist_;
  uint32_t block_bytes_;
};

}  // namespace onecard::synth
