// The random blocks are checked against a dequantizer written here from the ggml block layouts, independently
// of the generator: valid codes, finite scales, and about the requested spread.
#include "synth/weights.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "base/half.h"

namespace onecard::synth {
namespace {

using gguf::GgmlType;

uint16_t u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

float finite_half(const uint8_t* p) {
  const float f = fp16_to_fp32(u16(p));
  EXPECT_TRUE(std::isfinite(f));
  return f;
}

std::vector<float> dequant_q8_0(const std::vector<uint8_t>& b) {
  std::vector<float> y;
  for (size_t off = 0; off < b.size(); off += 34) {
    const float d = finite_half(&b[off]);
    EXPECT_GT(d, 0.0f);
    for (int i = 0; i < 32; ++i) {
      const auto q = static_cast<int8_t>(b[off + 2 + i]);
      EXPECT_GE(q, -127);
      y.push_back(d * q);
    }
  }
  return y;
}

void scale_min_k4(int j, const uint8_t* q, int& sc, int& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

std::vector<float> dequant_q4_k(const std::vector<uint8_t>& b) {
  std::vector<float> y;
  for (size_t off = 0; off < b.size(); off += 144) {
    const uint8_t* blk = &b[off];
    const float d = finite_half(blk), dmin = finite_half(blk + 2);
    const uint8_t* scales = blk + 4;
    const uint8_t* qs = blk + 16;
    for (int c = 0; c < 4; ++c) {
      int sc0, m0, sc1, m1;
      scale_min_k4(2 * c, scales, sc0, m0);
      scale_min_k4(2 * c + 1, scales, sc1, m1);
      EXPECT_GT(sc0, 0);
      EXPECT_GT(sc1, 0);
      for (int l = 0; l < 32; ++l) y.push_back(d * sc0 * (qs[32 * c + l] & 0xF) - dmin * m0);
      for (int l = 0; l < 32; ++l) y.push_back(d * sc1 * (qs[32 * c + l] >> 4) - dmin * m1);
    }
  }
  return y;
}

std::vector<float> dequant_q6_k(const std::vector<uint8_t>& b) {
  std::vector<float> y;
  for (size_t off = 0; off < b.size(); off += 210) {
    const uint8_t* ql = &b[off];
    const uint8_t* qh = ql + 128;
    const auto* sc = reinterpret_cast<const int8_t*>(ql + 192);
    const float d = finite_half(ql + 208);
    std::vector<float> blk(256);
    for (int half = 0; half < 2; ++half) {
      for (int l = 0; l < 32; ++l) {
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        const int is = l / 16;
        blk[128 * half + l] = d * sc[is] * q1;
        blk[128 * half + l + 32] = d * sc[is + 2] * q2;
        blk[128 * half + l + 64] = d * sc[is + 4] * q3;
        blk[128 * half + l + 96] = d * sc[is + 6] * q4;
      }
      ql += 64;
      qh += 32;
      sc += 8;
    }
    for (int i = 0; i < 16; ++i) EXPECT_NE(sc[i - 16], -128);
    y.insert(y.end(), blk.begin(), blk.end());
  }
  return y;
}

std::vector<float> to_floats(GgmlType t, const std::vector<uint8_t>& b) {
  std::vector<float> y;
  switch (t) {
    case GgmlType::F32:
      y.resize(b.size() / 4);
      std::memcpy(y.data(), b.data(), b.size());
      return y;
    case GgmlType::F16:
      for (size_t i = 0; i < b.size(); i += 2) y.push_back(fp16_to_fp32(u16(&b[i])));
      return y;
    case GgmlType::BF16:
      for (size_t i = 0; i < b.size(); i += 2) y.push_back(bf16_to_fp32(u16(&b[i])));
      return y;
    case GgmlType::Q8_0:
      return dequant_q8_0(b);
    case GgmlType::Q4_K:
      return dequant_q4_k(b);
    case GgmlType::Q6_K:
      return dequant_q6_k(b);
    default:
      ADD_FAILURE() << "unexpected type";
      return y;
  }
}

std::vector<uint8_t> bytes_of(GgmlType t, uint64_t n_blocks, Distribution dist, const char* name = "w",
                              uint64_t seed = 7) {
  auto s = TensorStream::create(seed, name, t, dist);
  EXPECT_TRUE(s.ok());
  std::vector<uint8_t> out(n_blocks * s->block_bytes());
  s->fill(out);
  return out;
}

struct Stats {
  double mean = 0, stddev = 0;
};
Stats stats(const std::vector<float>& y) {
  double s = 0, s2 = 0;
  for (float v : y) {
    EXPECT_TRUE(std::isfinite(v));
    s += v;
    s2 += double{v} * v;
  }
  const double n = static_cast<double>(y.size());
  return {s / n, std::sqrt(s2 / n - (s / n) * (s / n))};
}

TEST(SynthWeights, EveryTypeHasTheRequestedSpread) {
  const struct {
    GgmlType type;
    uint64_t blocks;
  } cases[] = {{GgmlType::F32, 65536}, {GgmlType::F16, 65536}, {GgmlType::BF16, 65536},
               {GgmlType::Q8_0, 2048}, {GgmlType::Q4_K, 256},  {GgmlType::Q6_K, 256}};
  for (const auto& c : cases) {
    for (float sigma : {0.0074f, 0.022f, 0.0625f}) {
      SCOPED_TRACE(testing::Message() << gguf::type_name(c.type) << " sigma " << sigma);
      const auto y = to_floats(c.type, bytes_of(c.type, c.blocks, {0.0f, sigma}));
      ASSERT_EQ(y.size(), c.blocks * gguf::traits(c.type).block_size);
      const Stats st = stats(y);
      EXPECT_NEAR(st.stddev / sigma, 1.0, 0.1);
      EXPECT_NEAR(st.mean / sigma, 0.0, 0.05);
    }
  }
}

TEST(SynthWeights, FloatTypesHonourTheMean) {
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16}) {
    const Stats st = stats(to_floats(t, bytes_of(t, 8192, {1.0f, 0.05f})));
    EXPECT_NEAR(st.mean, 1.0, 0.005) << gguf::type_name(t);
    EXPECT_NEAR(st.stddev, 0.05, 0.005) << gguf::type_name(t);
  }
}

TEST(SynthWeights, PiecesDoNotChangeTheBytes) {
  for (GgmlType t :
       {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
    const auto whole = bytes_of(t, 64, {0.0f, 0.1f});
    auto s = TensorStream::create(7, "w", t, {0.0f, 0.1f});
    ASSERT_TRUE(s.ok());
    std::vector<uint8_t> pieces(whole.size());
    const size_t bb = s->block_bytes();
    size_t off = 0;
    for (size_t k = 1; off < pieces.size(); ++k) {
      const size_t n = std::min(pieces.size() - off, k * bb);
      s->fill(std::span<uint8_t>(pieces.data() + off, n));
      off += n;
    }
    EXPECT_EQ(pieces, whole) << gguf::type_name(t);
  }
}

TEST(SynthWeights, SeedAndNameSelectTheStream) {
  const auto a = bytes_of(GgmlType::Q4_K, 4, {0.0f, 0.1f}, "blk.0.x", 1);
  EXPECT_EQ(a, bytes_of(GgmlType::Q4_K, 4, {0.0f, 0.1f}, "blk.0.x", 1));
  EXPECT_NE(a, bytes_of(GgmlType::Q4_K, 4, {0.0f, 0.1f}, "blk.0.x", 2));
  EXPECT_NE(a, bytes_of(GgmlType::Q4_K, 4, {0.0f, 0.1f}, "blk.1.x", 1));
}

TEST(SynthWeights, UnsupportedRequestsAreErrors) {
  auto a = TensorStream::create(1, "w", GgmlType::Q2_K, {});
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message().find("Q2_K"), std::string::npos);
  auto b = TensorStream::create(1, "norm", GgmlType::Q8_0, {1.0f, 0.05f});
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message().find("norm"), std::string::npos);
}

}  // namespace
}  // namespace onecard::synth
