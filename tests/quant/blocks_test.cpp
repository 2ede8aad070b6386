// Block sizes against the GGUF type table, the IQ lookup tables, and the argument checks of the row API.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "quant/blocks.h"
#include "quant/dequantize.h"
#include "quant/iq_tables.h"
#include "quant/quantize.h"

namespace onecard::quant {
namespace {

using gguf::GgmlType;

TEST(Blocks, SizesMatchTypeTable) {
  EXPECT_EQ(sizeof(BlockQ4_0), gguf::traits(GgmlType::Q4_0).type_size);
  EXPECT_EQ(sizeof(BlockQ4_1), gguf::traits(GgmlType::Q4_1).type_size);
  EXPECT_EQ(sizeof(BlockQ5_0), gguf::traits(GgmlType::Q5_0).type_size);
  EXPECT_EQ(sizeof(BlockQ5_1), gguf::traits(GgmlType::Q5_1).type_size);
  EXPECT_EQ(sizeof(BlockQ8_0), gguf::traits(GgmlType::Q8_0).type_size);
  EXPECT_EQ(sizeof(BlockQ8_1), gguf::traits(GgmlType::Q8_1).type_size);
  EXPECT_EQ(sizeof(BlockQ2_K), gguf::traits(GgmlType::Q2_K).type_size);
  EXPECT_EQ(sizeof(BlockQ3_K), gguf::traits(GgmlType::Q3_K).type_size);
  EXPECT_EQ(sizeof(BlockQ4_K), gguf::traits(GgmlType::Q4_K).type_size);
  EXPECT_EQ(sizeof(BlockQ5_K), gguf::traits(GgmlType::Q5_K).type_size);
  EXPECT_EQ(sizeof(BlockQ6_K), gguf::traits(GgmlType::Q6_K).type_size);
  EXPECT_EQ(sizeof(BlockQ8_K), gguf::traits(GgmlType::Q8_K).type_size);
  EXPECT_EQ(sizeof(BlockIQ2_XXS), gguf::traits(GgmlType::IQ2_XXS).type_size);
  EXPECT_EQ(sizeof(BlockIQ2_XS), gguf::traits(GgmlType::IQ2_XS).type_size);
  EXPECT_EQ(sizeof(BlockIQ2_S), gguf::traits(GgmlType::IQ2_S).type_size);
  EXPECT_EQ(sizeof(BlockIQ3_XXS), gguf::traits(GgmlType::IQ3_XXS).type_size);
  EXPECT_EQ(sizeof(BlockIQ3_S), gguf::traits(GgmlType::IQ3_S).type_size);
  EXPECT_EQ(sizeof(BlockIQ1_S), gguf::traits(GgmlType::IQ1_S).type_size);
  EXPECT_EQ(sizeof(BlockIQ1_M), gguf::traits(GgmlType::IQ1_M).type_size);
  EXPECT_EQ(sizeof(BlockIQ4_NL), gguf::traits(GgmlType::IQ4_NL).type_size);
  EXPECT_EQ(sizeof(BlockIQ4_XS), gguf::traits(GgmlType::IQ4_XS).type_size);
  EXPECT_EQ(gguf::traits(GgmlType::Q4_K).block_size, static_cast<uint32_t>(kQK_K));
  EXPECT_EQ(gguf::traits(GgmlType::Q4_0).block_size, static_cast<uint32_t>(kQK));
}

// FNV-1a over the little-endian bytes of each entry, as computed from ggml's published tables.
template <class Word, size_t N>
uint64_t table_hash(const std::array<Word, N>& t) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (Word w : t) {
    for (size_t b = 0; b < sizeof(Word); ++b)
      h = (h ^ ((static_cast<uint64_t>(w) >> (8 * b)) & 0xff)) * 0x100000001b3ull;
  }
  return h;
}

TEST(IqTables, MatchPublishedGrids) {
  EXPECT_EQ(table_hash(kIq2xxsGrid), 0xbb4ee025b5ac6e8eull);
  EXPECT_EQ(table_hash(kIq2xsGrid), 0xc9b1ee61e79909bdull);
  EXPECT_EQ(table_hash(kIq2sGrid), 0x123edd38a3b62b90ull);
  EXPECT_EQ(table_hash(kIq3xxsGrid), 0xdfa5dc83d6a155d5ull);
  EXPECT_EQ(table_hash(kIq3sGrid), 0xfa37020c25b44829ull);
  EXPECT_EQ(table_hash(kIq1sGrid), 0x6703ed863501ae2eull);
}

TEST(IqTables, SignsHaveEvenParity) {
  for (int i = 0; i < 128; ++i) {
    EXPECT_EQ(kIqSigns[static_cast<size_t>(i)] & 127, i);
    EXPECT_EQ(__builtin_popcount(kIqSigns[static_cast<size_t>(i)]) % 2, 0) << i;
  }
  EXPECT_EQ(kIqSigns[1], 129);
  EXPECT_EQ(kIqSigns[3], 3);
}

TEST(RowApi, RejectsLengthsThatAreNotWholeBlocks) {
  std::vector<float> x(300, 1.0f);
  std::vector<uint8_t> buf(4096);
  const Status q = quantize_row(GgmlType::Q4_K, x.data(), buf.data(), 300);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.error().message().find("Q4_K"), std::string::npos) << q.error().message();
  EXPECT_NE(q.error().message().find("300"), std::string::npos) << q.error().message();

  const Status d = dequantize_row(GgmlType::Q8_0, buf.data(), x.data(), 33);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message().find("Q8_0"), std::string::npos) << d.error().message();
  EXPECT_NE(d.error().message().find("33"), std::string::npos) << d.error().message();

  const Status neg = dequantize_row(GgmlType::F16, buf.data(), x.data(), -2);
  ASSERT_FALSE(neg.ok());
  EXPECT_NE(neg.error().message().find("-2"), std::string::npos) << neg.error().message();

  const Status rows = quantize_rows(GgmlType::Q6_K, x.data(), buf.data(), 1, 100);
  ASSERT_FALSE(rows.ok());
  EXPECT_NE(rows.error().message().find("Q6_K"), std::string::npos) << rows.error().message();
}

TEST(RowApi, RejectsTypesWithoutAnImplementation) {
  std::vector<float> x(256, 1.0f);
  std::vector<uint8_t> buf(4096);
  const Status q = quantize_row(GgmlType::IQ2_XXS, x.data(), buf.data(), 256);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.error().message().find("IQ2_XXS"), std::string::npos) << q.error().message();
  EXPECT_NE(q.error().message().find("256"), std::string::npos) << q.error().message();
  EXPECT_FALSE(can_quantize(GgmlType::IQ1_S));

  const Status d = dequantize_row(GgmlType::I32, buf.data(), x.data(), 8);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message().find("I32"), std::string::npos) << d.error().message();

  const Status unknown = dequantize_row(static_cast<GgmlType>(4), buf.data(), x.data(), 32);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message().find("32"), std::string::npos) << unknown.error().message();
}

TEST(RowApi, EmptyRowsAreFine) {
  float y = 0;
  uint8_t buf[1] = {0};
  EXPECT_TRUE(dequantize_row(GgmlType::Q4_K, buf, &y, 0).ok());
  EXPECT_TRUE(quantize_row(GgmlType::Q4_K, &y, buf, 0).ok());
}

}  // namespace
}  // namespace onecard::quant
