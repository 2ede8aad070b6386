// Dequantization of every block format against the values of the Python reference implementation.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/test_paths.h"
#include "gguf/types.h"
#include "quant/dequantize.h"

namespace onecard::quant {
namespace {

using gguf::GgmlType;

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Distance in units in the last place between two floats of the same sign (ordered integer mapping).
int64_t ulp_distance(float a, float b) {
  auto key = [](float f) {
    const auto u = static_cast<int64_t>(std::bit_cast<uint32_t>(f));
    return u & 0x80000000 ? -(u & 0x7fffffff) : u;
  };
  return std::abs(key(a) - key(b));
}

class GoldenTest : public ::testing::TestWithParam<GgmlType> {};

TEST_P(GoldenTest, MatchesReference) {
  const GgmlType type = GetParam();
  const gguf::TypeTraits& tt = gguf::traits(type);
  const std::string base = test::golden_dir() + "/quant/" + std::string(tt.name);
  const std::vector<uint8_t> blocks = read_file(base + ".blocks");
  const std::vector<uint8_t> expected_bytes = read_file(base + ".f32");
  ASSERT_FALSE(blocks.empty()) << base << ".blocks";
  ASSERT_EQ(blocks.size() % tt.type_size, 0u);
  const int64_t nblocks = static_cast<int64_t>(blocks.size() / tt.type_size);
  const int64_t n = nblocks * tt.block_size;
  ASSERT_EQ(expected_bytes.size(), static_cast<size_t>(n) * sizeof(float));
  std::vector<float> expected(static_cast<size_t>(n));
  std::memcpy(expected.data(), expected_bytes.data(), expected_bytes.size());

  // Offset by one byte: the reference functions must not depend on the alignment of their input.
  std::vector<uint8_t> shifted(blocks.size() + 1);
  std::memcpy(shifted.data() + 1, blocks.data(), blocks.size());
  std::vector<float> got(static_cast<size_t>(n));
  ASSERT_TRUE(dequantize_row(type, shifted.data() + 1, got.data(), n).ok());

  int64_t max_ulp = 0;
  double max_abs = 0;
  int mismatches = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float e = expected[static_cast<size_t>(i)], g = got[static_cast<size_t>(i)];
    if (std::isnan(e) || std::isnan(g)) {
      EXPECT_TRUE(std::isnan(e) && std::isnan(g)) << tt.name << " element " << i << ": " << g << " vs " << e;
      continue;
    }
    if (e == g) continue;
    const int64_t u = ulp_distance(e, g);
    max_ulp = std::max(max_ulp, u);
    max_abs = std::max(max_abs, std::abs(static_cast<double>(e) - g));
    if (u > 4 && ++mismatches <= 5) {
      ADD_FAILURE() << tt.name << " element " << i << " (block " << i / tt.block_size << "): got " << g
                    << ", reference " << e << " (" << u << " ulp)";
    }
  }
  std::printf("%-8s %lld blocks: max error %lld ulp (abs %.3g)\n", std::string(tt.name).c_str(),
              static_cast<long long>(nblocks), static_cast<long long>(max_ulp), max_abs);
  EXPECT_EQ(mismatches, 0);
  RecordProperty("max_ulp", static_cast<int>(max_ulp));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, GoldenTest,
                         ::testing::Values(GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                                           GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K,
                                           GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                                           GgmlType::IQ1_S, GgmlType::IQ1_M, GgmlType::IQ2_XXS,
                                           GgmlType::IQ2_XS, GgmlType::IQ2_S, GgmlType::IQ3_XXS,
                                           GgmlType::IQ3_S, GgmlType::IQ4_XS, GgmlType::IQ4_NL),
                         [](const auto& p) { return std::string(gguf::type_name(p.param)); });

}  // namespace
}  // namespace onecard::quant
