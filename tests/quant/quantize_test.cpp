// Quantizers: exact F16/BF16 rounding, and for the integer formats round trips on Gaussian data with error
// bounds, stability, the gain of the scale search over max-abs rounding, and the effect of importance
// weights.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "base/half.h"
#include "base/rng.h"
#include "common/random_data.h"
#include "gguf/types.h"
#include "quant/dequantize.h"
#include "quant/quantize.h"

namespace onecard::quant {
namespace {

using gguf::GgmlType;

std::vector<float> gaussian(int64_t n, uint64_t seed) {
  return test::nonzero_gaussian(n, seed, "quant");
}

std::vector<float> round_trip(GgmlType type, const std::vector<float>& x, int64_t nrows,
                              const QuantizeOptions& opt = {}) {
  const int64_t n = static_cast<int64_t>(x.size()) / nrows;
  std::vector<uint8_t> q(gguf::row_bytes(type, static_cast<uint64_t>(n)) * static_cast<size_t>(nrows));
  EXPECT_TRUE(quantize_rows(type, x.data(), q.data(), nrows, n, opt).ok());
  std::vector<float> y(x.size());
  const size_t stride = gguf::row_bytes(type, static_cast<uint64_t>(n));
  for (int64_t r = 0; r < nrows; ++r) {
    EXPECT_TRUE(dequantize_row(type, q.data() + static_cast<size_t>(r) * stride, y.data() + r * n, n).ok());
  }
  return y;
}

// sqrt(sum w e^2 / sum w x^2) over the elements; w cycles with period w.size() (one weight per column).
double rel_rms(const std::vector<float>& x, const std::vector<float>& y, const std::vector<float>& w = {}) {
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double wi = w.empty() ? 1.0 : w[i % w.size()];
    num += wi * (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
    den += wi * static_cast<double>(x[i]) * x[i];
  }
  return std::sqrt(num / den);
}

// Is h the correctly rounded (nearest, ties to even) half or bfloat16 of x? Checked against its neighbours.
template <class ToFloat>
void expect_nearest_even(float x, uint16_t h, ToFloat to_float, uint16_t inf_bits, const char* what) {
  const double v = to_float(h);
  // Overflow to infinity happens exactly from the midpoint between the largest finite value and the next
  // (unrepresentable) step above it.
  const double max_finite = to_float(static_cast<uint16_t>(inf_bits - 1));
  const double overflow_at = max_finite + 0.5 * (max_finite - to_float(static_cast<uint16_t>(inf_bits - 2)));
  ASSERT_EQ(std::isinf(v), std::abs(static_cast<double>(x)) >= overflow_at)
      << what << " of " << x << " gives " << v;
  if (std::isinf(v)) return;
  const double err = std::abs(static_cast<double>(x) - v);
  for (int delta : {-1, 1}) {
    const int nb = static_cast<int>(h & 0x7fff) + delta;
    if (nb < 0) continue;
    const auto other = static_cast<uint16_t>((h & 0x8000) | nb);
    const double ov = to_float(other);
    if (std::isinf(ov) || std::isnan(ov)) continue;
    const double oerr = std::abs(static_cast<double>(x) - ov);
    ASSERT_LE(err, oerr) << what << " of " << x << " rounds to " << v << ", but " << ov << " is nearer";
    if (err == oerr) {
      ASSERT_EQ(h & 1, 0) << what << " of " << x << ": a tie must go to the even neighbour";
    }
  }
}

TEST(QuantizeHalf, F16IsRoundToNearestEven) {
  Rng rng(7, "f16");
  std::vector<float> x;
  for (int i = 0; i < 20000; ++i) {
    // Spread over the whole half range, subnormals included.
    const float mag = std::ldexp(1.0f + rng.uniform(), static_cast<int>(rng.below(42)) - 26);
    x.push_back(rng.below(2) ? mag : -mag);
  }
  // Exact ties between two halves: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
  for (float t : {1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, -(2.0f + 0x1p-10f), 0x1p-25f, 3 * 0x1p-25f, 65504.0f,
                  65519.0f}) {
    x.push_back(t);
  }
  std::vector<uint16_t> h(x.size());
  ASSERT_TRUE(quantize_row(GgmlType::F16, x.data(), h.data(), static_cast<int64_t>(x.size())).ok());
  for (size_t i = 0; i < x.size(); ++i) {
    expect_nearest_even(x[i], h[i], fp16_to_fp32, 0x7c00, "f16");
    ASSERT_EQ(h[i], fp32_to_fp16(x[i]));
  }
  EXPECT_EQ(fp16_to_fp32(h[h.size() - 7]), 1.0f);
  EXPECT_EQ(fp16_to_fp32(h[h.size() - 6]), 1.0f + 0x1p-9f);
  EXPECT_EQ(fp16_to_fp32(h[h.size() - 5]), -2.0f);
  std::vector<float> back(x.size());
  ASSERT_TRUE(dequantize_row(GgmlType::F16, h.data(), back.data(), static_cast<int64_t>(x.size())).ok());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(back[i], fp16_to_fp32(h[i]));
}

TEST(QuantizeHalf, Bf16IsRoundToNearestEven) {
  Rng rng(8, "bf16");
  std::vector<float> x;
  for (int i = 0; i < 20000; ++i) {
    const float mag = std::ldexp(1.0f + rng.uniform(), static_cast<int>(rng.below(200)) - 100);
    x.push_back(rng.below(2) ? mag : -mag);
  }
  for (float t : {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -(1.0f + 0x1p-8f)}) x.push_back(t);
  std::vector<uint16_t> h(x.size());
  ASSERT_TRUE(quantize_row(GgmlType::BF16, x.data(), h.data(), static_cast<int64_t>(x.size())).ok());
  for (size_t i = 0; i < x.size(); ++i) {
    expect_nearest_even(x[i], h[i], bf16_to_fp32, 0x7f80, "bf16");
    ASSERT_EQ(h[i], fp32_to_bf16(x[i]));
  }
  EXPECT_EQ(bf16_to_fp32(h[h.size() - 3]), 1.0f);
  EXPECT_EQ(bf16_to_fp32(h[h.size() - 2]), 1.0f + 0x1p-6f);
  EXPECT_EQ(bf16_to_fp32(h[h.size() - 1]), -1.0f);
}

TEST(QuantizeHalf, F32IsACopy) {
  const std::vector<float> x = gaussian(37, 1);
  const std::vector<float> y = round_trip(GgmlType::F32, x, 1);
  EXPECT_EQ(x, y);
}

struct Case {
  GgmlType type;
  double bound;  // relative RMS error on N(0, 1) data, with the search and no importance
};

// Bounds: the largest error measured over the shapes below plus about 10%. They follow from the formats: a
// uniform quantizer of step s has RMS error s / sqrt(12), and the step is the range of a group (about 4 sigma
// for 16-32 Gaussian values) over its levels, so each bit less about doubles the error: Q8_0 ~0.5%, Q6_K
// ~1.7%, Q5_K ~3.5%, Q4_K ~7%, Q3_K ~14%, Q2_K ~27%. Q4_0 (one fp16 scale per 32, no min) sits near Q4_K;
// IQ4_NL and IQ4_XS (16 non-uniform levels, denser near zero where Gaussian values are) between the two,
// IQ4_XS at 4.25 bits where Q4_K and Q4_0 take 4.5.
const Case kCases[] = {
    {GgmlType::Q8_0, 0.0056}, {GgmlType::Q6_K, 0.020},   {GgmlType::Q5_K, 0.039},
    {GgmlType::Q4_K, 0.077},  {GgmlType::Q4_0, 0.092},   {GgmlType::Q3_K, 0.155},
    {GgmlType::Q2_K, 0.29},   {GgmlType::IQ4_NL, 0.085}, {GgmlType::IQ4_XS, 0.082},
};

class RoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(RoundTrip, ErrorIsBoundedAndStable) {
  const Case c = GetParam();
  const char* name = gguf::type_name(c.type).data();
  const int64_t block = gguf::traits(c.type).block_size;
  // Rows of one block and of many blocks, odd row counts.
  for (const auto& [nrows, blocks] : {std::pair<int64_t, int64_t>{3, 1}, {5, 17}, {1, 33}}) {
    const int64_t n = blocks * block;
    const std::vector<float> x = gaussian(nrows * n, static_cast<uint64_t>(n + nrows));
    const std::vector<float> y = round_trip(c.type, x, nrows);
    for (float v : y) ASSERT_TRUE(std::isfinite(v));
    const double err = rel_rms(x, y);
    std::printf("%-5s %lld x %-5lld search: rel RMS %.4f%%\n", name, static_cast<long long>(nrows),
                static_cast<long long>(n), 100 * err);
    EXPECT_LT(err, c.bound) << name;

    // Quantizing the dequantized values again lands where it started, up to the odd sub-block whose search
    // settles on a different (as good) scale.
    const std::vector<float> z = round_trip(c.type, y, nrows);
    const double drift = rel_rms(y, z);
    std::printf("%-5s                requantize drift %.4f%%\n", name, 100 * drift);
    EXPECT_LT(drift, 0.1 * err) << name;
  }
}

TEST_P(RoundTrip, SearchBeatsMaxAbsRounding) {
  const Case c = GetParam();
  const int64_t n = 64 * gguf::traits(c.type).block_size;
  const std::vector<float> x = gaussian(3 * n, 99);
  QuantizeOptions plain;
  plain.search = false;
  const double e_plain = rel_rms(x, round_trip(c.type, x, 3, plain));
  const double e_search = rel_rms(x, round_trip(c.type, x, 3));
  std::printf("%-5s plain %.4f%%  search %.4f%%  (%.1f%% lower)\n", gguf::type_name(c.type).data(),
              100 * e_plain, 100 * e_search, 100 * (1 - e_search / e_plain));
  EXPECT_LT(e_search, e_plain);
}

TEST_P(RoundTrip, ImportanceLowersTheWeightedError) {
  const Case c = GetParam();
  const int64_t n = 16 * gguf::traits(c.type).block_size;
  const int64_t nrows = 7;
  const std::vector<float> x = gaussian(nrows * n, 5);
  // A few columns matter much more than the rest, as an activation-statistics importance vector says.
  std::vector<float> w(static_cast<size_t>(n), 1.0f);
  std::vector<float> hot(static_cast<size_t>(n), 0.0f);
  for (int64_t i = 0; i < n; i += 5) w[static_cast<size_t>(i)] = hot[static_cast<size_t>(i)] = 50.0f;
  QuantizeOptions weighted;
  weighted.importance = w.data();
  const std::vector<float> y0 = round_trip(c.type, x, nrows);
  const std::vector<float> y1 = round_trip(c.type, x, nrows, weighted);
  const double e0 = rel_rms(x, y0, w), e1 = rel_rms(x, y1, w);
  const double h0 = rel_rms(x, y0, hot), h1 = rel_rms(x, y1, hot);
  std::printf("%-5s weighted error %.4f%% -> %.4f%%, on the weighted columns %.4f%% -> %.4f%%\n",
              gguf::type_name(c.type).data(), 100 * e0, 100 * e1, 100 * h0, 100 * h1);
  EXPECT_LT(e1, e0);
  EXPECT_LT(h1, h0);
}

// An importance vector shaped like a real imatrix: log-normal per column, with a few outlier columns 30x
// above. Rows of odd lengths (in blocks) and odd row counts. The importance must lower the error it weighs
// and may cost only a little plain error: weighing by the importance alone (as onecard did before) let the
// search sacrifice a group's large values for an important column's small ones.
TEST_P(RoundTrip, RealisticImportanceHelpsAndCostsLittlePlainError) {
  const Case c = GetParam();
  const int64_t block = gguf::traits(c.type).block_size;
  for (const auto& [nrows, blocks] : {std::pair<int64_t, int64_t>{5, 3}, {3, 11}}) {
    const int64_t n = blocks * block;
    const std::vector<float> x = gaussian(nrows * n, static_cast<uint64_t>(7 * n + nrows));
    const std::vector<float> g = gaussian(n, static_cast<uint64_t>(n + 1));
    std::vector<float> w(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      w[static_cast<size_t>(i)] = std::exp(g[static_cast<size_t>(i)]) * (i % 37 == 3 ? 30.0f : 1.0f);
    }
    QuantizeOptions weighted;
    weighted.importance = w.data();
    const std::vector<float> y0 = round_trip(c.type, x, nrows);
    const std::vector<float> y1 = round_trip(c.type, x, nrows, weighted);
    const double e0 = rel_rms(x, y0, w), e1 = rel_rms(x, y1, w);
    const double p0 = rel_rms(x, y0), p1 = rel_rms(x, y1);
    std::printf("%-6s %lld x %-5lld importance-weighted error %.4f%% -> %.4f%%, plain %.4f%% -> %.4f%%\n",
                gguf::type_name(c.type).data(), static_cast<long long>(nrows), static_cast<long long>(n),
                100 * e0, 100 * e1, 100 * p0, 100 * p1);
    EXPECT_LT(e1, e0) << gguf::type_name(c.type);
    EXPECT_LT(p1, 1.1 * p0) << gguf::type_name(c.type);
  }
}

INSTANTIATE_TEST_SUITE_P(Types, RoundTrip, ::testing::ValuesIn(kCases),
                         [](const auto& p) { return std::string(gguf::type_name(p.param.type)); });

TEST(Quantize, DegenerateRowsStayFinite) {
  for (GgmlType type :
       {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,
        GgmlType::Q6_K, GgmlType::Q8_K, GgmlType::Q8_1, GgmlType::IQ4_NL, GgmlType::IQ4_XS}) {
    const int64_t n = 2 * kQK_K;
    std::vector<float> zeros(static_cast<size_t>(n), 0.0f);
    EXPECT_EQ(round_trip(type, zeros, 1), zeros) << gguf::type_name(type);

    std::vector<float> constant(static_cast<size_t>(n), -0.75f);
    for (float v : round_trip(type, constant, 1)) EXPECT_NEAR(v, -0.75f, 0.02f) << gguf::type_name(type);

    std::vector<float> spike = gaussian(n, 3);
    spike[17] = 1e4f;
    spike[300] = -3e-3f;
    const std::vector<float> y = round_trip(type, spike, 1);
    for (float v : y) ASSERT_TRUE(std::isfinite(v)) << gguf::type_name(type);
    EXPECT_NEAR(y[17], 1e4f, 1e4f * 0.02f) << gguf::type_name(type);

    std::vector<float> huge = gaussian(n, 6);
    for (float& v : huge) v *= 1e7f;
    for (float v : round_trip(type, huge, 1)) ASSERT_TRUE(std::isfinite(v)) << gguf::type_name(type);

    std::vector<float> zero_weights(static_cast<size_t>(n), 0.0f);
    QuantizeOptions opt;
    opt.importance = zero_weights.data();
    for (float v : round_trip(type, spike, 1, opt)) ASSERT_TRUE(std::isfinite(v)) << gguf::type_name(type);
  }
}

TEST(Quantize, ActivationFormats) {
  const std::vector<float> x = gaussian(3 * kQK_K, 11);
  std::vector<BlockQ8_K> k(3);
  ASSERT_TRUE(quantize_row(GgmlType::Q8_K, x.data(), k.data(), 3 * kQK_K).ok());
  for (const BlockQ8_K& b : k) {
    for (int g = 0; g < kQK_K / 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) {
        sum += b.qs[16 * g + j];
        EXPECT_GE(b.qs[16 * g + j], -127);
      }
      EXPECT_EQ(b.bsums[g], sum);
    }
  }
  // One scale per 256 values: the largest of 256 Gaussians is ~2.9 sigma, against ~2.1 for 32.
  EXPECT_LT(rel_rms(x, round_trip(GgmlType::Q8_K, x, 3)), 0.009);

  std::vector<BlockQ8_1> one(x.size() / kQK);
  ASSERT_TRUE(quantize_row(GgmlType::Q8_1, x.data(), one.data(), static_cast<int64_t>(x.size())).ok());
  for (const BlockQ8_1& b : one) {
    int sum = 0;
    for (int8_t q : b.qs) sum += q;
    EXPECT_NEAR(fp16_to_fp32(b.s), fp16_to_fp32(b.d) * static_cast<float>(sum), 1e-3f * (1 + std::abs(sum)));
  }
  EXPECT_LT(rel_rms(x, round_trip(GgmlType::Q8_1, x, 3)), 0.0065);
}

// Q8_0's levels are symmetric (-127..127), so its search tries only one side's scales (the other side's
// are their negations, with the same error): the result for -x must then be exactly that for x, negated.
TEST(Quantize, Q8_0IsSymmetric) {
  std::vector<float> x = gaussian(9 * kQK, 21), neg(x.size());
  for (size_t i = 0; i < x.size(); ++i) neg[i] = -x[i];
  const std::vector<float> y = round_trip(GgmlType::Q8_0, x, 3), z = round_trip(GgmlType::Q8_0, neg, 3);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(z[i], -y[i]) << i;
}

TEST(Quantize, OutputDoesNotDependOnAlignment) {
  const int64_t n = 2 * kQK_K;
  const std::vector<float> x = gaussian(n, 4);
  for (GgmlType type : {GgmlType::F16, GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q3_K, GgmlType::Q4_K,
                        GgmlType::Q6_K, GgmlType::Q8_K}) {
    const size_t bytes = gguf::row_bytes(type, n);
    std::vector<uint8_t> a(bytes), b(bytes + 3);
    ASSERT_TRUE(quantize_row(type, x.data(), a.data(), n).ok());
    ASSERT_TRUE(quantize_row(type, x.data(), b.data() + 3, n).ok());
    EXPECT_EQ(0, std::memcmp(a.data(), b.data() + 3, bytes)) << gguf::type_name(type);
  }
}

}  // namespace
}  // namespace onecard::quant
