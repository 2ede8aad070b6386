#include "cpu/random_weights.h"

#include <cstring>

#include "base/half.h"
#include "base/rng.h"
#include "common/random_data.h"
#include "quant/quantize.h"

namespace onecard::cpu::testing {
namespace {

using gguf::GgmlType;

void put_fp16(uint8_t* p, float v) {
  const uint16_t h = fp32_to_fp16(v);
  std::memcpy(p, &h, 2);
}

// Byte offsets of the fp16 scale fields in one block of the formats filled with random bytes.
std::vector<int> scale_offsets(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_1:
    case GgmlType::Q5_1:
      return {0, 2};
    case GgmlType::Q5_0:
    case GgmlType::IQ4_NL:
    case GgmlType::IQ4_XS:
    case GgmlType::IQ2_XXS:
    case GgmlType::IQ2_XS:
    case GgmlType::IQ2_S:
    case GgmlType::IQ3_XXS:
    case GgmlType::IQ3_S:
    case GgmlType::IQ1_S:
      return {0};
    default:
      return {};
  }
}

}  // namespace

std::vector<float> gaussian(int64_t n, uint64_t seed) {
  return test::nonzero_gaussian(n, seed, "cpu-test");
}

std::vector<uint8_t> random_weights(GgmlType type, int64_t rows, int64_t cols, uint64_t seed) {
  const size_t row_bytes = gguf::row_bytes(type, static_cast<uint64_t>(cols));
  std::vector<uint8_t> out(row_bytes * static_cast<size_t>(rows));
  // Through the quantizer where one exists, except IQ4_NL and IQ4_XS: their quantizer chooses only some of
  // the scale codes (the high bits of IQ4_XS's scales_h hardly vary), and random bytes test every pattern.
  const bool iq4 = type == GgmlType::IQ4_NL || type == GgmlType::IQ4_XS;
  if (quant::can_quantize(type) && !iq4) {
    const std::vector<float> x = gaussian(rows * cols, seed);
    const auto st =
        quant::quantize_rows(type, x.data(), out.data(), rows, cols, quant::QuantizeOptions{.search = false});
    (void)st;
    return out;
  }
  Rng rng(seed, "cpu-test-bytes");
  for (auto& b : out) b = static_cast<uint8_t>(rng.next() >> 56);
  const gguf::TypeTraits& tt = gguf::traits(type);
  const size_t blocks = out.size() / tt.type_size;
  for (size_t i = 0; i < blocks; ++i) {
    uint8_t* blk = out.data() + i * tt.type_size;
    for (int off : scale_offsets(type)) put_fp16(blk + off, 0.002f + 0.01f * rng.uniform());
    if (type == GgmlType::IQ1_M) {
      // The fp16 super-scale lies in the top nibbles of the four 16-bit scale words (56 - 8 = 48).
      const uint16_t h = fp32_to_fp16(0.002f + 0.01f * rng.uniform());
      for (int k = 0; k < 4; ++k) {
        blk[48 + 2 * k + 1] =
            static_cast<uint8_t>((blk[48 + 2 * k + 1] & 0x0f) | (((h >> (4 * k)) & 0xf) << 4));
      }
    }
  }
  return out;
}

std::vector<GgmlType> all_matmul_types() {
  return {GgmlType::F32,     GgmlType::F16,    GgmlType::BF16,  GgmlType::Q4_0,    GgmlType::Q4_1,
          GgmlType::Q5_0,    GgmlType::Q5_1,   GgmlType::Q8_0,  GgmlType::Q2_K,    GgmlType::Q3_K,
          GgmlType::Q4_K,    GgmlType::Q5_K,   GgmlType::Q6_K,  GgmlType::IQ1_S,   GgmlType::IQ1_M,
          GgmlType::IQ2_XXS, GgmlType::IQ2_XS, GgmlType::IQ2_S, GgmlType::IQ3_XXS, GgmlType::IQ3_S,
          GgmlType::IQ4_XS,  GgmlType::IQ4_NL};
}

}  // namespace onecard::cpu::testing
