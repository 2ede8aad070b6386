// The safetensors reader: valid files are read in place, and each kind of damage is refused with a message
// that names the file, the tensor and the field.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "convert/dequant.h"
#include "convert/safetensors.h"

namespace onecard::convert {
namespace {

using testing::HasSubstr;

// A safetensors image: the header JSON as given, then `data`.
std::vector<uint8_t> image(const std::string& header, const std::vector<uint8_t>& data) {
  // Sized once and filled: GCC 12 mistakes growing inserts into a small vector for out-of-bounds copies.
  std::vector<uint8_t> b(8 + header.size() + data.size());
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) b[static_cast<size_t>(i)] = static_cast<uint8_t>(n >> (8 * i));
  std::copy(header.begin(), header.end(), b.begin() + 8);
  std::copy(data.begin(), data.end(), b.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  return b;
}

std::string error_of(const std::vector<uint8_t>& bytes) {
  auto r = SafetensorsFile::parse(bytes, "x.safetensors");
  EXPECT_FALSE(r.ok());
  return r.ok() ? std::string() : r.error().message();
}

TEST(Safetensors, ReadsTensorsInPlace) {
  std::vector<uint8_t> data(12);
  const float v[2] = {1.5f, -2.0f};
  std::memcpy(data.data() + 4, v, 8);
  data[0] = 0x80;  // bf16 1.0 = 0x3f80
  data[1] = 0x3f;
  const auto b =
      image(R"({"__metadata__":{"format":"pt"},"x":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},)"
            R"("y":{"dtype":"F32","shape":[1,2],"data_offsets":[4,12]}})",
            data);
  auto f = SafetensorsFile::parse(b, "x.safetensors");
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_EQ(f->metadata().at("format"), "pt");
  const StTensor* y = f->find("y");
  ASSERT_NE(y, nullptr);
  EXPECT_EQ(y->shape, (std::vector<uint64_t>{1, 2}));
  float row[2];
  read_row(*y, {}, 0, 2, row);
  EXPECT_EQ(row[0], 1.5f);
  EXPECT_EQ(row[1], -2.0f);
  read_row(*f->find("x"), {}, 0, 2, row);
  EXPECT_EQ(row[0], 1.0f);
}

TEST(Safetensors, RefusesEachKindOfDamage) {
  EXPECT_THAT(error_of({1, 2, 3}), HasSubstr("x.safetensors: 3 bytes is too short"));
  EXPECT_THAT(error_of({0xff, 0, 0, 0, 0, 0, 0, 0, '{', '}'}), HasSubstr("header length 255 does not fit"));
  EXPECT_THAT(error_of(image("{\"a\":", {})), HasSubstr("not valid JSON"));
  EXPECT_THAT(error_of(image("[]", {})), HasSubstr("not a JSON object"));
  EXPECT_THAT(error_of(image(R"({"w":{"dtype":"F7","shape":[1],"data_offsets":[0,1]}})", {0})),
              HasSubstr("x.safetensors: tensor 'w': field 'dtype': unknown dtype 'F7'"));
  EXPECT_THAT(error_of(image(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", {0, 0, 0, 0})),
              HasSubstr("tensor 'w': field 'shape' holds -1"));
  EXPECT_THAT(error_of(image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", {0, 0, 0, 0})),
              HasSubstr("tensor 'w': shape [2] of F32 needs 8 bytes but 'data_offsets' [0, 4) hold 4"));
  EXPECT_THAT(error_of(image(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", {0, 0, 0, 0})),
              HasSubstr("tensor 'w': field 'data_offsets': bytes [0, 8) run past the 4 bytes of data"));
  EXPECT_THAT(error_of(image(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", {0, 0, 0, 0})),
              HasSubstr("begin 4 is after end 0"));
  EXPECT_THAT(error_of(image(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", {0, 0, 0, 0})),
              HasSubstr("tensor 'w': field 'data_offsets' must be two byte offsets"));
  EXPECT_THAT(error_of(image(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", {0, 0, 0, 0})),
              HasSubstr("tensor 'w': field 'dtype' is missing"));
  EXPECT_THAT(error_of(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                             std::vector<uint8_t>(12))),
              HasSubstr("tensor 'b': field 'data_offsets' [4, 12) overlaps tensor 'a' [0, 8)"));
  EXPECT_THAT(
      error_of(image(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,4]}})",
                     {0, 0, 0, 0})),
      HasSubstr("overflows"));
}

TEST(Fp8, DecodesE4m3fnExactly) {
  EXPECT_EQ(fp8_e4m3_to_fp32(0x00), 0.0f);
  EXPECT_EQ(fp8_e4m3_to_fp32(0x38), 1.0f);     // exponent 7 = bias
  EXPECT_EQ(fp8_e4m3_to_fp32(0x7e), 448.0f);   // the largest finite value
  EXPECT_EQ(fp8_e4m3_to_fp32(0x01), 0x1p-9f);  // the smallest subnormal
  EXPECT_EQ(fp8_e4m3_to_fp32(0xc0), -2.0f);
  EXPECT_TRUE(std::isnan(fp8_e4m3_to_fp32(0x7f)));  // the only NaN pattern; no infinity
  EXPECT_EQ(fp8_e5m2_to_fp32(0x3c), 1.0f);
}

TEST(Fp8, AppliesTheScaleOfEachBlock) {
  // A 2x4 FP8 matrix in 1x2 blocks: scales [[1, 2], [3, 4]].
  std::vector<uint8_t> data(8, 0x38);  // all 1.0
  const float scales[4] = {1, 2, 3, 4};
  data.resize(24);
  std::memcpy(data.data() + 8, scales, 16);
  const auto b = image(R"({"w":{"dtype":"F8_E4M3","shape":[2,4],"data_offsets":[0,8]},)"
                       R"("s":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]}})",
                       data);
  auto f = SafetensorsFile::parse(b, "x.safetensors");
  ASSERT_TRUE(f.ok()) << f.error().message();
  BlockScales bs{f->find("s"), 1, 2};
  float row[4];
  read_row(*f->find("w"), bs, 1, 4, row);
  EXPECT_EQ(row[0], 3.0f);
  EXPECT_EQ(row[1], 3.0f);
  EXPECT_EQ(row[2], 4.0f);
  EXPECT_EQ(row[3], 4.0f);
}

}  // namespace
}  // namespace onecard::convert
