// The writer: what it writes reads back identically and has the layout llama.cpp-family tools require (data
// section and every tensor aligned, tensors packed in declaration order, each padded to the alignment).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/test_paths.h"
#include "gguf/file.h"
#include "gguf/writer.h"

namespace onecard::gguf {
namespace {

std::vector<uint8_t> pattern(uint64_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (uint64_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 13 + seed);
  return v;
}

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

uint64_t align_up(uint64_t x, uint64_t a) {
  return (x + a - 1) / a * a;
}

std::vector<std::pair<std::string, MetaValue>> all_value_types() {
  MetaValue i8;
  i8.type = ValueType::I8;
  i8.bits = 0xfe;
  MetaValue u16;
  u16.type = ValueType::U16;
  u16.bits = 0xbeef;
  MetaValue i16;
  i16.type = ValueType::I16;
  i16.bits = 0x8001;
  return {
      {"general.architecture", MetaValue::string("deepseek2")},
      {"t.u8", MetaValue::u8(7)},
      {"t.i8", i8},
      {"t.u16", u16},
      {"t.i16", i16},
      {"t.u32", MetaValue::u32(123456)},
      {"t.i32", MetaValue::i32(-123456)},
      {"t.f32", MetaValue::f32(0.1f)},
      {"t.bool", MetaValue::boolean(false)},
      {"t.string", MetaValue::string("Ġthe")},
      {"t.u64", MetaValue::u64(uint64_t{1} << 63)},
      {"t.i64", MetaValue::i64(-5)},
      {"t.f64", MetaValue::f64(-2.75)},
      {"t.strings", MetaValue::strings({"a", "bb", ""})},
      {"t.i32s", MetaValue::i32s({-1, 0, 1})},
      {"t.f32s", MetaValue::f32s({1.0f, -0.0f})},
      {"t.u8s", MetaValue::array(ValueType::U8, {MetaValue::u8(0), MetaValue::u8(255)})},
      {"t.i8s", MetaValue::array(ValueType::I8, {i8, i8})},
      {"t.u16s", MetaValue::array(ValueType::U16, {u16})},
      {"t.i16s", MetaValue::array(ValueType::I16, {i16, i16, i16})},
      {"t.u32s", MetaValue::array(ValueType::U32, {MetaValue::u32(1), MetaValue::u32(2)})},
      {"t.bools", MetaValue::array(ValueType::BOOL, {MetaValue::boolean(true), MetaValue::boolean(false)})},
      {"t.u64s", MetaValue::array(ValueType::U64, {MetaValue::u64(9)})},
      {"t.i64s", MetaValue::array(ValueType::I64, {MetaValue::i64(-9), MetaValue::i64(9)})},
      {"t.f64s", MetaValue::array(ValueType::F64, {MetaValue::f64(3.5)})},
      {"t.empty", MetaValue::array(ValueType::STRING, {})},
      {"t.nested", MetaValue::array(ValueType::ARRAY,
                                    {MetaValue::i32s({1}),
                                     MetaValue::array(ValueType::ARRAY, {MetaValue::strings({"deep"})})})},
  };
}

struct TensorCase {
  std::string name;
  std::vector<uint64_t> ne;
  GgmlType type;
  uint64_t n_bytes;
};

const std::vector<TensorCase> kTensors = {
    {"a.f32", {3, 5}, GgmlType::F32, 60},
    {"b.f16", {7}, GgmlType::F16, 14},
    {"c.q8_0", {64, 2}, GgmlType::Q8_0, 4 * 34},
    {"d.q4_k", {256, 3}, GgmlType::Q4_K, 3 * 144},
    {"e.bf16", {5, 1, 2, 3}, GgmlType::BF16, 60},
    {"f.iq4_xs", {256}, GgmlType::IQ4_XS, 136},
    {"g.q6_k", {512, 1, 2}, GgmlType::Q6_K, 4 * 210},
};

void check_round_trip(uint32_t alignment) {
  SCOPED_TRACE(alignment);
  const std::string path = test::temp_path("round_trip_" + std::to_string(alignment) + ".gguf");
  Writer w(alignment);
  const auto values = all_value_types();
  for (const auto& [key, value] : values) w.set(key, value);
  for (const auto& t : kTensors) ASSERT_TRUE(w.add_tensor(t.name, t.ne, t.type).ok()) << t.name;
  ASSERT_TRUE(w.open(path).ok());
  // The first two tensors in one call (the writer pads between them), the rest in uneven pieces.
  std::vector<uint8_t> first_two = pattern(kTensors[0].n_bytes, 0);
  const auto second = pattern(kTensors[1].n_bytes, 1);
  first_two.insert(first_two.end(), second.begin(), second.end());
  ASSERT_TRUE(w.write_data(first_two).ok());
  for (size_t i = 2; i < kTensors.size(); ++i) {
    const auto bytes = pattern(kTensors[i].n_bytes, static_cast<uint8_t>(i));
    for (size_t at = 0; at < bytes.size(); at += 37) {
      ASSERT_TRUE(w.write_data(std::span(bytes).subspan(at, std::min<size_t>(37, bytes.size() - at))).ok());
    }
  }
  ASSERT_TRUE(w.finish().ok());

  auto f = File::open(path);
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), alignment);
  EXPECT_EQ(f->file_size(), w.file_size());
  EXPECT_EQ(f->data_offset() % alignment, 0u);
  EXPECT_EQ(f->file_size() % alignment, 0u);  // the last tensor is padded too
  EXPECT_EQ(f->data_offset(), w.header_bytes().size());

  // Metadata: in the order set, each value as it was. A custom alignment is stored as general.alignment
  // first.
  size_t first = 0;
  if (alignment != kDefaultAlignment) {
    ASSERT_EQ(f->metadata()[0].key, "general.alignment");
    EXPECT_EQ(MetaValue::from(f->metadata()[0].value), MetaValue::u32(alignment));
    first = 1;
  }
  ASSERT_EQ(f->metadata().size(), values.size() + first);
  for (size_t i = 0; i < values.size(); ++i) {
    const auto& kv = f->metadata()[i + first];
    EXPECT_EQ(kv.key, values[i].first);
    EXPECT_EQ(MetaValue::from(kv.value), values[i].second) << kv.key;
  }

  // Tensors: in declaration order, packed with padding as llama.cpp expects, bytes unchanged, padding zero.
  const auto file = read_all(path);
  ASSERT_EQ(f->tensors().size(), kTensors.size());
  uint64_t expected_offset = 0;
  for (size_t i = 0; i < kTensors.size(); ++i) {
    const TensorInfo& t = f->tensors()[i];
    SCOPED_TRACE(kTensors[i].name);
    EXPECT_EQ(t.name, kTensors[i].name);
    EXPECT_EQ(std::vector<uint64_t>(t.dims().begin(), t.dims().end()), kTensors[i].ne);
    EXPECT_EQ(t.type, kTensors[i].type);
    EXPECT_EQ(t.n_bytes, kTensors[i].n_bytes);
    EXPECT_EQ(t.offset, expected_offset);
    EXPECT_EQ(t.offset % alignment, 0u);
    EXPECT_EQ(w.tensors()[i].offset, t.offset);
    const auto expected = pattern(t.n_bytes, static_cast<uint8_t>(i));
    EXPECT_TRUE(std::equal(t.bytes().begin(), t.bytes().end(), expected.begin(), expected.end()));
    const uint64_t end = f->data_offset() + t.offset + t.n_bytes;
    const uint64_t padded = f->data_offset() + align_up(t.offset + t.n_bytes, alignment);
    for (uint64_t p = end; p < padded; ++p) EXPECT_EQ(file[p], 0) << "padding byte " << p;
    expected_offset = align_up(t.offset + t.n_bytes, alignment);
  }
  EXPECT_EQ(f->data_offset() + expected_offset, f->file_size());
}

TEST(Writer, RoundTripDefaultAlignment) {
  check_round_trip(kDefaultAlignment);
}
TEST(Writer, RoundTripCustomAlignment) {
  check_round_trip(64);
}
TEST(Writer, RoundTripLargeAlignment) {
  check_round_trip(4096);
}

TEST(Writer, SetReplacesAValueInPlace) {
  Writer w;
  w.set("a", MetaValue::u32(1));
  w.set("b", MetaValue::u32(2));
  w.set("a", MetaValue::string("one"));
  const auto bytes = w.header_bytes();
  auto f = File::parse(bytes, "mem");
  ASSERT_TRUE(f.ok()) << f.error().message();
  ASSERT_EQ(f->metadata().size(), 2u);
  EXPECT_EQ(f->metadata()[0].key, "a");
  EXPECT_EQ(f->get<std::string>("a").value(), "one");
}

TEST(Writer, HeaderOnlyFileIsValid) {
  const std::string path = test::temp_path("header_only.gguf");
  Writer w;
  w.set("general.name", MetaValue::string("vocab"));
  ASSERT_TRUE(w.open(path).ok());
  ASSERT_TRUE(w.finish().ok());
  auto f = File::open(path);
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_EQ(f->file_size(), w.file_size());
  EXPECT_EQ(f->file_size() % kDefaultAlignment, 0u);
  EXPECT_TRUE(f->tensors().empty());
}

TEST(Writer, RowNotAMultipleOfTheBlock) {
  Writer w;
  auto s = w.add_tensor("w", {100, 4}, GgmlType::Q4_K);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(
      s.error().message().find("tensor 'w': row length 100 is not a multiple of the Q4_K block size 256"),
      std::string::npos)
      << s.error().message();
  EXPECT_FALSE(w.add_tensor("q", {33}, GgmlType::Q8_0).ok());
  EXPECT_TRUE(w.tensors().empty());
}

TEST(Writer, DuplicateTensor) {
  Writer w;
  ASSERT_TRUE(w.add_tensor("w", {4}, GgmlType::F32).ok());
  auto s = w.add_tensor("w", {8}, GgmlType::F16);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("tensor 'w' declared twice"), std::string::npos) << s.error().message();
  EXPECT_EQ(w.tensors().size(), 1u);
}

TEST(Writer, BadShapes) {
  Writer w;
  EXPECT_FALSE(w.add_tensor("none", {}, GgmlType::F32).ok());
  EXPECT_FALSE(w.add_tensor("five", {1, 1, 1, 1, 1}, GgmlType::F32).ok());
  EXPECT_FALSE(w.add_tensor("zero", {4, 0}, GgmlType::F32).ok());
  auto s = w.add_tensor("huge", {uint64_t{1} << 32, uint64_t{1} << 32}, GgmlType::F32);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("overflows"), std::string::npos) << s.error().message();
  EXPECT_FALSE(w.add_tensor("bytes", {uint64_t{1} << 31, uint64_t{1} << 31}, GgmlType::F64).ok());
  EXPECT_TRUE(w.tensors().empty());
}

TEST(Writer, FinishBeforeAllDataWritten) {
  const std::string path = test::temp_path("unfinished.gguf");
  Writer w;
  ASSERT_TRUE(w.add_tensor("a", {4}, GgmlType::F32).ok());
  ASSERT_TRUE(w.add_tensor("b", {4}, GgmlType::F32).ok());
  ASSERT_TRUE(w.open(path).ok());
  ASSERT_TRUE(w.write_data(pattern(16, 0)).ok());
  ASSERT_TRUE(w.write_data(pattern(5, 0)).ok());  // part of b
  auto s = w.finish();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find(path), std::string::npos);
  EXPECT_NE(s.error().message().find("tensor 'b' and those after it were not written"), std::string::npos)
      << s.error().message();
}

TEST(Writer, MoreDataThanDeclared) {
  Writer w;
  ASSERT_TRUE(w.add_tensor("a", {4}, GgmlType::F32).ok());
  ASSERT_TRUE(w.open(test::temp_path("overfull.gguf")).ok());
  auto s = w.write_data(pattern(17, 0));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("more tensor data than declared"), std::string::npos)
      << s.error().message();
}

TEST(Writer, WritingBeforeOpen) {
  Writer w;
  ASSERT_TRUE(w.add_tensor("a", {4}, GgmlType::F32).ok());
  EXPECT_FALSE(w.write_data(pattern(16, 0)).ok());
  EXPECT_FALSE(w.finish().ok());
}

TEST(Writer, CopiesAGoldenFileExactly) {
  // Everything read from a real file, written again, reads back the same (values, shapes, bytes).
  auto src = File::open(test::golden_dir() + "/models/tiny-v2lite-f16.gguf");
  ASSERT_TRUE(src.ok()) << src.error().message();
  Writer w(src->alignment());
  for (const auto& kv : src->metadata()) w.set(std::string(kv.key), MetaValue::from(kv.value));
  for (const auto& t : src->tensors()) {
    ASSERT_TRUE(w.add_tensor(std::string(t.name), {t.dims().begin(), t.dims().end()}, t.type).ok());
  }
  const std::string path = test::temp_path("copy.gguf");
  ASSERT_TRUE(w.open(path).ok());
  for (const auto& t : src->tensors()) ASSERT_TRUE(w.write_data(t.bytes()).ok());
  ASSERT_TRUE(w.finish().ok());

  auto copy = File::open(path);
  ASSERT_TRUE(copy.ok()) << copy.error().message();
  ASSERT_EQ(copy->metadata().size(), src->metadata().size());
  for (size_t i = 0; i < src->metadata().size(); ++i) {
    EXPECT_EQ(copy->metadata()[i].key, src->metadata()[i].key);
    EXPECT_EQ(MetaValue::from(copy->metadata()[i].value), MetaValue::from(src->metadata()[i].value));
  }
  ASSERT_EQ(copy->tensors().size(), src->tensors().size());
  for (size_t i = 0; i < src->tensors().size(); ++i) {
    const auto& a = src->tensors()[i];
    const auto& b = copy->tensors()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.ne, b.ne);
    EXPECT_EQ(a.type, b.type);
    EXPECT_EQ(a.offset, b.offset);  // the golden file has llama.cpp's packed layout too
    EXPECT_TRUE(std::equal(a.bytes().begin(), a.bytes().end(), b.bytes().begin(), b.bytes().end())) << a.name;
  }
  // The golden files come from llama.cpp's Python writer, so the layouts agree to the byte.
  EXPECT_TRUE(read_all(path) == read_all(src->path()));
}

}  // namespace
}  // namespace onecard::gguf
