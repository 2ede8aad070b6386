// Metadata values of every type, and the typed accessors: conversions that lose nothing succeed, every other
// request is an error that says which key, what was wanted and what the file holds.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "gguf/file.h"
#include "gguf/writer.h"

namespace onecard::gguf {
namespace {

MetaValue scalar(ValueType t, uint64_t bits) {
  MetaValue v;
  v.type = t;
  v.bits = bits;
  return v;
}

// Every scalar type, as a writer would store the given value.
std::vector<std::pair<ValueType, MetaValue>> one_of_each_scalar() {
  return {
      {ValueType::U8, MetaValue::u8(250)},
      {ValueType::I8, scalar(ValueType::I8, 0x85)},  // -123
      {ValueType::U16, scalar(ValueType::U16, 65000)},
      {ValueType::I16, scalar(ValueType::I16, 0x8000)},  // -32768
      {ValueType::U32, MetaValue::u32(4000000000u)},
      {ValueType::I32, MetaValue::i32(-2000000000)},
      {ValueType::F32, MetaValue::f32(-1.5f)},
      {ValueType::BOOL, MetaValue::boolean(true)},
      {ValueType::U64, MetaValue::u64(~uint64_t{0})},
      {ValueType::I64, MetaValue::i64(std::numeric_limits<int64_t>::min())},
      {ValueType::F64, MetaValue::f64(1e300)},
  };
}

// A file of metadata only, parsed from memory; the bytes live as long as the fixture.
class Metadata : public testing::Test {
 protected:
  void SetUp() override {
    Writer w;
    for (const auto& [type, v] : one_of_each_scalar())
      w.set(std::string("s.") + std::string(value_type_name(type)), v);
    w.set("s.string", MetaValue::string("héllo wörld"));
    w.set("s.empty_string", MetaValue::string(""));
    for (const auto& [type, v] : one_of_each_scalar()) {
      w.set(std::string("a.") + std::string(value_type_name(type)), MetaValue::array(type, {v, v, v}));
    }
    w.set("a.string", MetaValue::strings({"x", "", "yz"}));
    w.set("a.empty", MetaValue::array(ValueType::I32, {}));
    w.set("a.nested",
          MetaValue::array(ValueType::ARRAY, {MetaValue::i32s({1, -2}), MetaValue::strings({"p", "q"}),
                                              MetaValue::array(ValueType::ARRAY, {MetaValue::f32s({})})}));
    w.set("i.small", MetaValue::u8(200));
    w.set("i.minus_one", MetaValue::i32(-1));
    w.set("i.big", MetaValue::u64(uint64_t{1} << 40));
    w.set("i.huge", MetaValue::u64(~uint64_t{0}));
    w.set("i.i64", MetaValue::i64(-(int64_t{1} << 40)));
    bytes_ = w.header_bytes();
    auto f = File::parse(bytes_, "meta.gguf");
    ASSERT_TRUE(f.ok()) << f.error().message();
    file_ = std::make_unique<File>(std::move(f).value());
  }

  const File& f() const { return *file_; }
  const Value& v(std::string_view key) const {
    const Value* p = f().find(key);
    EXPECT_NE(p, nullptr) << key;
    return *p;
  }

  std::vector<uint8_t> bytes_;
  std::unique_ptr<File> file_;
};

TEST_F(Metadata, EveryScalarType) {
  EXPECT_EQ(v("s.uint8").type(), ValueType::U8);
  EXPECT_EQ(v("s.uint8").as<uint8_t>().value(), 250);
  EXPECT_EQ(v("s.int8").as<int8_t>().value(), -123);
  EXPECT_EQ(v("s.uint16").as<uint16_t>().value(), 65000);
  EXPECT_EQ(v("s.int16").as<int16_t>().value(), -32768);
  EXPECT_EQ(v("s.uint32").as<uint32_t>().value(), 4000000000u);
  EXPECT_EQ(v("s.int32").as<int32_t>().value(), -2000000000);
  EXPECT_EQ(v("s.float32").as<float>().value(), -1.5f);
  EXPECT_EQ(v("s.float32").as<double>().value(), -1.5);
  EXPECT_TRUE(v("s.bool").as<bool>().value());
  EXPECT_EQ(v("s.uint64").as<uint64_t>().value(), ~uint64_t{0});
  EXPECT_EQ(v("s.int64").as<int64_t>().value(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(v("s.float64").as<double>().value(), 1e300);
  EXPECT_TRUE(std::isinf(v("s.float64").as<float>().value()));
  EXPECT_EQ(v("s.string").as<std::string>().value(), "héllo wörld");
  EXPECT_EQ(v("s.empty_string").as<std::string_view>().value(), "");
  EXPECT_EQ(v("s.string").type_description(), "string");
  EXPECT_EQ(v("s.int16").type_description(), "int16");
}

TEST_F(Metadata, ArraysOfEveryScalarType) {
  for (const auto& [type, expected] : one_of_each_scalar()) {
    const std::string key = "a." + std::string(value_type_name(type));
    SCOPED_TRACE(key);
    const Value& a = v(key);
    ASSERT_TRUE(a.is_array());
    EXPECT_EQ(a.array_type(), type);
    EXPECT_EQ(a.array_size(), 3u);
    EXPECT_EQ(a.type_description(), "array of " + std::string(value_type_name(type)));
    for (uint64_t i = 0; i < 3; ++i) {
      MetaValue e = MetaValue::from(a).items[i];
      EXPECT_EQ(e, expected);
    }
    EXPECT_FALSE(a.element<int64_t>(3).ok());
    EXPECT_NE(a.element<int64_t>(3).error().message().find("index 3 out of range"), std::string::npos);
  }
  EXPECT_EQ(v("a.int8").element<int32_t>(2).value(), -123);
  EXPECT_EQ(v("a.uint16").element<uint32_t>(1).value(), 65000u);
  EXPECT_EQ(v("a.int16").to_vector<int16_t>().value(), (std::vector<int16_t>{-32768, -32768, -32768}));
  EXPECT_EQ(v("a.int32").element<int64_t>(0).value(), -2000000000);
  EXPECT_EQ(v("a.float32").to_vector<float>().value(), (std::vector<float>{-1.5f, -1.5f, -1.5f}));
  EXPECT_EQ(v("a.float64").element<double>(2).value(), 1e300);
  EXPECT_EQ(v("a.bool").to_vector<bool>().value(), (std::vector<bool>{true, true, true}));
  EXPECT_EQ(v("a.uint64").element<uint64_t>(0).value(), ~uint64_t{0});
  EXPECT_EQ(v("a.int64").element<int64_t>(1).value(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(v("a.uint8").to_vector<uint8_t>().value(), (std::vector<uint8_t>{250, 250, 250}));

  const Value& s = v("a.string");
  EXPECT_EQ(s.array_type(), ValueType::STRING);
  ASSERT_EQ(s.strings().size(), 3u);
  EXPECT_EQ(s.strings()[2], "yz");
  EXPECT_EQ(s.element<std::string_view>(1).value(), "");
  EXPECT_EQ(s.to_vector<std::string>().value(), (std::vector<std::string>{"x", "", "yz"}));

  EXPECT_EQ(v("a.empty").array_size(), 0u);
  EXPECT_TRUE(v("a.empty").to_vector<int32_t>().value().empty());
}

TEST_F(Metadata, NestedArrays) {
  const Value& n = v("a.nested");
  EXPECT_EQ(n.array_type(), ValueType::ARRAY);
  ASSERT_EQ(n.items().size(), 3u);
  EXPECT_EQ(n.items()[0].array_type(), ValueType::I32);
  EXPECT_EQ(n.items()[0].to_vector<int32_t>().value(), (std::vector<int32_t>{1, -2}));
  EXPECT_EQ(n.items()[1].strings()[1], "q");
  ASSERT_EQ(n.items()[2].items().size(), 1u);
  EXPECT_EQ(n.items()[2].items()[0].array_type(), ValueType::F32);
  EXPECT_EQ(n.items()[2].items()[0].array_size(), 0u);
  auto wrong = n.element<int32_t>(0);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message().find("expected array of int32, found array of array"), std::string::npos);
}

TEST_F(Metadata, MetaValueFromReproducesWhatWasWritten) {
  for (const auto& [type, expected] : one_of_each_scalar()) {
    EXPECT_EQ(MetaValue::from(v("s." + std::string(value_type_name(type)))), expected)
        << value_type_name(type);
  }
  EXPECT_EQ(MetaValue::from(v("a.string")), MetaValue::strings({"x", "", "yz"}));
  EXPECT_EQ(MetaValue::from(v("i.minus_one")), MetaValue::i32(-1));
}

TEST_F(Metadata, MissingKeyNamesFileAndKey) {
  auto r = f().get<uint32_t>("no.such.key");
  ASSERT_FALSE(r.ok());
  const std::string& m = r.error().message();
  EXPECT_NE(m.find("meta.gguf"), std::string::npos) << m;
  EXPECT_NE(m.find("missing metadata key 'no.such.key'"), std::string::npos) << m;
  EXPECT_NE(m.find("uint32"), std::string::npos) << m;
}

TEST_F(Metadata, WrongTypeNamesKeyExpectedAndFound) {
  auto message = [](const auto& r) { return r.ok() ? std::string("(succeeded)") : r.error().message(); };
  const std::pair<std::string, std::string> cases[] = {
      {message(f().get<uint32_t>("s.string")),
       "meta.gguf: metadata key 's.string': expected uint32, found string"},
      {message(f().get<std::string>("s.uint32")), "metadata key 's.uint32': expected string, found uint32"},
      {message(f().get<bool>("s.uint8")), "metadata key 's.uint8': expected bool, found uint8"},
      {message(f().get<float>("s.int32")), "metadata key 's.int32': expected float32, found int32"},
      {message(f().get<int64_t>("s.float64")), "metadata key 's.float64': expected int64, found float64"},
      {message(f().get<uint32_t>("a.uint32")),
       "metadata key 'a.uint32': expected uint32, found array of uint32"},
      {message(f().get<std::string_view>("a.string")), "expected string, found array of string"},
  };
  for (const auto& [got, expect] : cases) EXPECT_NE(got.find(expect), std::string::npos) << got;
}

TEST_F(Metadata, IntegerConversionsAreLossless) {
  EXPECT_EQ(f().get<int16_t>("i.small").value(), 200);
  EXPECT_EQ(f().get<uint64_t>("i.small").value(), 200u);
  EXPECT_EQ(f().get<int64_t>("i.minus_one").value(), -1);
  EXPECT_EQ(f().get<int8_t>("i.minus_one").value(), -1);
  EXPECT_EQ(f().get<uint64_t>("i.big").value(), uint64_t{1} << 40);
  EXPECT_EQ(f().get<int64_t>("i.big").value(), int64_t{1} << 40);
  EXPECT_EQ(f().get<int64_t>("i.i64").value(), -(int64_t{1} << 40));

  auto too_big = f().get<int8_t>("i.small");
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.error().message().find("metadata key 'i.small': value 200 does not fit in int8"),
            std::string::npos);
  auto negative = f().get<uint32_t>("i.minus_one");
  ASSERT_FALSE(negative.ok());
  EXPECT_NE(negative.error().message().find(
                "metadata key 'i.minus_one': value -1 is negative, uint32 was expected"),
            std::string::npos)
      << negative.error().message();
  EXPECT_FALSE(f().get<uint64_t>("i.i64").ok());
  auto narrow = f().get<uint32_t>("i.big");
  ASSERT_FALSE(narrow.ok());
  EXPECT_NE(narrow.error().message().find("value 1099511627776 does not fit in uint32"), std::string::npos);
  auto huge = f().get<int64_t>("i.huge");
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.error().message().find("does not fit in int64"), std::string::npos);
  EXPECT_FALSE(f().get<int32_t>("i.i64").ok());
}

TEST_F(Metadata, GetOr) {
  EXPECT_EQ(f().get_or<uint32_t>("no.such.key", 42).value(), 42u);
  EXPECT_EQ(f().get_or<std::string_view>("no.such.key", "dflt").value(), "dflt");
  EXPECT_EQ(f().get_or<uint32_t>("i.small", 42).value(), 200u);
  auto wrong = f().get_or<uint32_t>("s.string", 42);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message().find("metadata key 's.string': expected uint32, found string"),
            std::string::npos);
}

TEST_F(Metadata, KeysInFileOrder) {
  ASSERT_FALSE(f().metadata().empty());
  EXPECT_EQ(f().metadata().front().key, "s.uint8");
  EXPECT_EQ(f().metadata().back().key, "i.i64");
  EXPECT_TRUE(f().tensors().empty());
}

}  // namespace
}  // namespace onecard::gguf
