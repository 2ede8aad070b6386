// The integer view of each format (levels, zero point, scales, offsets) must reproduce the reference
// dequantization: w = s * (q - z) + m for every element.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "base/cpu_features.h"
#include "base/half.h"
#include "base/rng.h"
#include "cpu/act_quant.h"
#include "cpu/int_format.h"
#include "cpu/isa.h"
#include "cpu/random_weights.h"
#include "cpu/unpack_avx512.h"
#include "quant/blocks.h"
#include "quant/dequantize.h"

namespace onecard::cpu {
namespace {

TEST(IntFormat, UnpackMatchesDequantize) {
  int covered = 0;
  for (gguf::GgmlType type : testing::all_matmul_types()) {
    const IntFormat* f = int_format(type);
    if (f == nullptr) continue;
    ++covered;
    const int64_t n = 512;
    const std::vector<uint8_t> w = testing::random_weights(type, 1, n, 7);
    std::vector<float> ref(n);
    ASSERT_TRUE(quant::dequantize_row(type, w.data(), ref.data(), n).ok());
    UnpackedUnit u;
    for (int64_t i = 0; i < n / f->unit; ++i) {
      f->unpack(w.data() + i * f->unit_bytes, u);
      for (int j = 0; j < f->unit; ++j) {
        const float s = u.s[j / f->sub], m = u.m[j / f->sub];
        const float v = s * static_cast<float>(u.q[j] - f->zero) + m;
        const float want = ref[i * f->unit + j];
        EXPECT_NEAR(v, want, 1e-6f * (std::abs(want) + std::abs(m)) + 1e-12f)
            << gguf::type_name(type) << " element " << i * f->unit + j;
        if (!f->affine) {
          EXPECT_EQ(m, 0.0f);
        }
      }
    }
  }
  EXPECT_EQ(covered, 19);
}

// Random bytes cover every bit pattern of levels and packed scales; only the fp16 scales are pinned to a
// finite value (at these offsets of each format's block).
TEST(IntFormat, VectorUnpackEqualsScalarUnpack) {
  if (supported_isas().back() != Isa::Avx512Vnni) GTEST_SKIP() << "no AVX-512 on this CPU";
  const struct {
    gguf::GgmlType type;
    std::vector<size_t> fp16_at;
  } cases[] = {{gguf::GgmlType::Q2_K, {80, 82}}, {gguf::GgmlType::Q3_K, {108}},
               {gguf::GgmlType::Q5_K, {0, 2}},   {gguf::GgmlType::IQ4_XS, {0}},
               {gguf::GgmlType::IQ2_XS, {0}},    {gguf::GgmlType::IQ3_XXS, {0}},
               {gguf::GgmlType::IQ1_M, {}}};
  Rng rng(5, "unpack");
  for (const auto& c : cases) {
    const IntFormat& f = *int_format(c.type);
    const UnpackFn vec = unpack_avx512(c.type);
    ASSERT_NE(vec, nullptr) << gguf::type_name(c.type);
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<uint8_t> block(f.unit_bytes);
      for (auto& b : block) b = static_cast<uint8_t>(rng.below(256));
      for (size_t at : c.fp16_at) {
        const uint16_t h = static_cast<uint16_t>(0x2000 + rng.below(0x3000));  // about 1e-5 .. 500
        std::memcpy(block.data() + at, &h, 2);
      }
      if (c.type == gguf::GgmlType::IQ1_M) {
        // Its fp16 scale is the top nibbles of the four 16-bit scale words (bytes 48..55).
        const auto h = static_cast<uint16_t>(0x2000 + rng.below(0x3000));
        for (int w = 0; w < 4; ++w) {
          uint8_t& top = block[48 + 2 * w + 1];
          top = static_cast<uint8_t>((top & 0x0f) | (((h >> (4 * w)) & 0xf) << 4));
        }
      }
      UnpackedUnit want{}, got{};
      f.unpack(block.data(), want);
      vec(block.data(), got);
      for (int j = 0; j < f.unit; ++j)
        ASSERT_EQ(got.q[j], want.q[j]) << gguf::type_name(c.type) << " level " << j;
      for (int b = 0; b < f.subs(); ++b) {
        ASSERT_EQ(got.s[b], want.s[b]) << gguf::type_name(c.type) << " scale " << b;
        ASSERT_EQ(got.m[b], want.m[b]) << gguf::type_name(c.type) << " offset " << b;
      }
    }
  }
}

// The row dots take each Q8_0 block's scale and level sum from the row's extras instead of the block.
TEST(ActQuant, Q8_0ExtrasHoldEachBlocksScaleAndLevelSum) {
  const int64_t n = 7 * 32;
  const std::vector<float> x = testing::gaussian(n, 22);
  std::vector<uint8_t> a(act_row_bytes(ActFormat::Q8_0, n));
  quantize_act(ActFormat::Q8_0, x.data(), a.data(), n);
  ASSERT_EQ(a.size(), static_cast<size_t>(n / 32) * (sizeof(quant::BlockQ8_0) + kActQ8_0Extra));
  for (int64_t b = 0; b < n / 32; ++b) {
    quant::BlockQ8_0 blk;
    std::memcpy(&blk, a.data() + b * sizeof(blk), sizeof(blk));
    int32_t want = 0;
    for (int8_t q : blk.qs) want += q;
    float scale;
    int32_t sum;
    std::memcpy(&scale, a.data() + act_q8_0_scales_at(n) + 4 * b, 4);
    std::memcpy(&sum, a.data() + act_q8_0_sums_at(n) + 4 * b, 4);
    EXPECT_EQ(scale, fp16_to_fp32(blk.d)) << "block " << b;
    EXPECT_EQ(sum, want) << "block " << b;
  }
}

TEST(ActQuant, SimdAndScalarGiveIdenticalBytes) {
  if (!cpu_features().avx512bw) GTEST_SKIP() << "no AVX-512 on this CPU";
  for (ActFormat f : {ActFormat::Q8_0, ActFormat::Q8_K}) {
    const int64_t n = 4 * 256;
    std::vector<float> x = testing::gaussian(n, 21);
    for (int64_t i = 0; i < 32; ++i) x[i] = 0.0f;  // an all-zero block: scale 0, levels 0
    x[300] = 1e4f;                                 // a block dominated by one value
    std::vector<uint8_t> a(act_row_bytes(f, n)), b(act_row_bytes(f, n));
    quantize_act_scalar(f, x.data(), a.data(), n);
    quantize_act_avx512(f, x.data(), b.data(), n);
    EXPECT_EQ(a, b);
  }
}

}  // namespace
}  // namespace onecard::cpu
