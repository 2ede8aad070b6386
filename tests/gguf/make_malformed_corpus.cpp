// Writes the GGUF test corpus: hand-made malformed files, each with the distinctive part of the error the
// reader must give for it, and small valid files that seed the fuzzer. The generated files are checked in
// under tests/data; a test regenerates them and compares, so this program is the one place where they are
// defined.
//
//   make_malformed_corpus OUT_DIR   writes OUT_DIR/gguf-malformed/<case>.{gguf,expect} and
//   OUT_DIR/gguf-valid/
//
// (`ninja update_gguf_corpus` runs it on tests/data.)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/writer.h"

namespace {

using onecard::gguf::GgmlType;
using onecard::gguf::MetaValue;
using onecard::gguf::ValueType;
namespace fs = std::filesystem;

constexpr uint32_t kU8 = 0, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8, kArray = 9, kU64 = 10;
constexpr uint32_t kTypeF32 = 0, kTypeF64 = 28, kTypeQ4K = 12;

// Little-endian GGUF pieces, appended in order, with no checks: these files are meant to be wrong.
class Bytes {
 public:
  Bytes& raw(std::string_view s) {
    b_.insert(b_.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& u8(uint8_t v) {
    b_.push_back(v);
    return *this;
  }
  Bytes& u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) b_.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  Bytes& u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) b_.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  Bytes& str(std::string_view s) { return u64(s.size()).raw(s); }

  Bytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return raw("GGUF").u32(version).u64(n_tensors).u64(n_kv);
  }
  Bytes& kv_u32(std::string_view key, uint32_t v) { return str(key).u32(kU32).u32(v); }
  Bytes& kv_str(std::string_view key, std::string_view v) { return str(key).u32(kString).str(v); }
  Bytes& tensor(std::string_view name, std::initializer_list<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) u64(d);
    return u32(type).u64(offset);
  }
  // Zero bytes up to the next multiple of `alignment`, as the data section starts there.
  Bytes& pad(size_t alignment) {
    while (b_.size() % alignment != 0) b_.push_back(0);
    return *this;
  }
  // Tensor data: a recognisable pattern rather than zeros.
  Bytes& data(size_t n) {
    for (size_t i = 0; i < n; ++i) b_.push_back(static_cast<uint8_t>(i * 7 + 1));
    return *this;
  }
  Bytes& truncate(size_t n) {
    b_.resize(n);
    return *this;
  }
  size_t size() const { return b_.size(); }
  const std::vector<uint8_t>& bytes() const { return b_; }

 private:
  std::vector<uint8_t> b_;
};

struct Case {
  std::string name;
  Bytes file;
  std::string expect;
};

// A metadata entry that keeps files with one bad tensor large enough for their counts, so that the reader
// gets as far as the tensor.
Bytes with_arch(uint64_t n_tensors) {
  return Bytes().header(n_tensors, 1).kv_str("general.architecture", "test");
}

std::vector<Case> malformed_cases() {
  std::vector<Case> c;
  auto add = [&](std::string name, Bytes b, std::string expect) {
    c.push_back(Case{std::move(name), std::move(b), std::move(expect)});
  };

  // The header.
  add("empty", Bytes(), "file too small to be GGUF (0 bytes)");
  add("three_bytes", Bytes().raw("GGU"), "file too small to be GGUF (3 bytes)");
  add("bad_magic", Bytes().raw("GGML").u32(3).u64(0).u64(0), "not a GGUF file: magic is 47 47 4d 4c");
  add("version_0", Bytes().header(0, 0, 0), "unsupported GGUF version 0");
  add("version_1", Bytes().header(0, 0, 1), "GGUF version 1 is not supported");
  add("version_4", Bytes().header(0, 0, 4), "unsupported GGUF version 4");
  add("version_big_endian", Bytes().header(0, 0, 0x03000000), "looks byte-swapped: big-endian files");
  add("truncated_in_version", Bytes().raw("GGUF").u8(3).u8(0),
      "file ends inside version (4 bytes needed, 2 left)");
  add("truncated_in_tensor_count", Bytes().raw("GGUF").u32(3).u32(0),
      "file ends inside tensor count (8 bytes needed, 4 left)");
  add("truncated_in_metadata_count", Bytes().raw("GGUF").u32(3).u64(0).u32(1),
      "file ends inside metadata count (8 bytes needed, 4 left)");
  add("tensor_count_too_large", Bytes().header(uint64_t{1} << 40, 0).kv_u32("a", 1),
      "tensor count 1099511627776 cannot fit in the 17 bytes left");
  add("kv_count_too_large", Bytes().header(0, uint64_t{1} << 40).kv_u32("a", 1),
      "metadata count 1099511627776 cannot fit in the 17 bytes left");
  add("counts_together_too_large", Bytes().header(1, 2).kv_u32("abcdefghijklmnopqrstu", 1),
      "1 tensors and 2 metadata entries cannot fit in the 37 bytes left");

  // Metadata.
  add("key_length_past_end", Bytes().header(0, 1).u64(1 << 20).raw("general.name").u32(kU32).u32(1),
      "metadata key #0: string length 1048576 exceeds the 20 bytes left");
  add("empty_key", Bytes().header(0, 1).str("").u32(kU32).u32(1), "metadata key #0 is empty");
  add("unknown_value_type", Bytes().header(0, 1).str("test.key").u32(13).u32(1),
      "metadata key 'test.key': unknown value type 13");
  add("truncated_in_value", Bytes().header(0, 1).str("test.key").u32(kU64).u8(1).u8(2).u8(3),
      "file ends inside metadata key 'test.key' (8 bytes needed, 3 left)");
  add("string_value_past_end", Bytes().header(0, 1).str("test.key").u32(kString).u64(100).raw("abc"),
      "metadata key 'test.key': string length 100 exceeds the 3 bytes left");
  add("unknown_array_element_type", Bytes().header(0, 1).str("test.arr").u32(kArray).u32(77).u64(1).u32(0),
      "metadata key 'test.arr': unknown array element type 77");
  add("array_count_too_large_fixed",
      Bytes().header(0, 1).str("test.arr").u32(kArray).u32(kU32).u64(uint64_t{1} << 61).u32(1),
      "metadata key 'test.arr': array of 2305843009213693952 uint32 values cannot fit");
  add("array_count_too_large_u8", Bytes().header(0, 1).str("test.arr").u32(kArray).u32(kU8).u64(5).u32(0),
      "metadata key 'test.arr': array of 5 uint8 values cannot fit in the 4 bytes left");
  add("array_count_too_large_string",
      Bytes().header(0, 1).str("test.arr").u32(kArray).u32(kString).u64(1000).str("a").str("b"),
      "metadata key 'test.arr': array of 1000 string values cannot fit");
  add("array_count_too_large_nested",
      Bytes().header(0, 1).str("test.arr").u32(kArray).u32(kArray).u64(1000).u32(kU8).u64(1).u8(1),
      "metadata key 'test.arr': array of 1000 array values cannot fit");
  add("array_string_element_past_end",
      Bytes().header(0, 1).str("test.arr").u32(kArray).u32(kString).u64(2).str("ok").u64(1000).raw("short"),
      "metadata key 'test.arr': string length 1000 exceeds the 5 bytes left");
  add("nested_array_count_too_large",
      Bytes().header(0, 1).str("test.arr").u32(kArray).u32(kArray).u64(1).u32(kI32).u64(1000).u32(7),
      "metadata key 'test.arr': array of 1000 int32 values cannot fit");
  {
    // Nine arrays, each holding the next: one level more than the reader allows.
    Bytes b;
    b.header(0, 1).str("test.deep").u32(kArray);
    for (int i = 0; i < 8; ++i) b.u32(kArray).u64(1);
    b.u32(kU8).u64(1).u8(1);
    add("arrays_nested_too_deep", std::move(b), "metadata key 'test.deep': arrays nested deeper than 8");
  }
  add("bool_value_2", Bytes().header(0, 1).str("test.flag").u32(kBool).u8(2),
      "metadata key 'test.flag': bool value 2 is neither 0 nor 1");
  add("bool_array_element_2",
      Bytes().header(0, 1).str("test.flags").u32(kArray).u32(kBool).u64(3).u8(0).u8(1).u8(2),
      "metadata key 'test.flags': bool element 2 is neither 0 nor 1");
  add("duplicate_key", Bytes().header(0, 2).kv_str("general.name", "a").kv_str("general.name", "b"),
      "duplicate metadata key 'general.name'");
  add("alignment_zero", Bytes().header(0, 1).kv_u32("general.alignment", 0),
      "metadata key 'general.alignment': 0 is not a power of two");
  add("alignment_not_power_of_two", Bytes().header(0, 1).kv_u32("general.alignment", 48),
      "metadata key 'general.alignment': 48 is not a power of two");
  add("alignment_wrong_type", Bytes().header(0, 1).kv_str("general.alignment", "32"),
      "metadata key 'general.alignment': expected uint32, found string");
  add("alignment_float", Bytes().header(0, 1).str("general.alignment").u32(kF32).u32(0x42000000),
      "metadata key 'general.alignment': expected uint32, found float32");
  add("alignment_negative", Bytes().header(0, 1).str("general.alignment").u32(kI32).u32(0xffffffe0),
      "metadata key 'general.alignment': value -32 is negative");
  add("alignment_too_large", Bytes().header(0, 1).str("general.alignment").u32(kU64).u64(uint64_t{1} << 32),
      "metadata key 'general.alignment': value 4294967296 does not fit in uint32");

  // Tensor infos.
  add("tensor_empty_name", with_arch(1).tensor("", {32}, kTypeF32, 0).pad(32).data(128),
      "tensor #0 has an empty name");
  add("tensor_name_past_end", with_arch(1).u64(5000).raw("blk.0.attn_norm.weight...."),
      "name of tensor #0: string length 5000 exceeds the 26 bytes left");
  add("tensor_n_dims_0", with_arch(1).str("t").u32(0).u32(kTypeF32).u64(0).u64(0).pad(32).data(32),
      "tensor 't': 0 dimensions (1 to 4 allowed)");
  add("tensor_n_dims_5", with_arch(1).tensor("t", {1, 1, 1, 1, 1}, kTypeF32, 0).pad(32).data(32),
      "tensor 't': 5 dimensions (1 to 4 allowed)");
  add("tensor_zero_dimension", with_arch(1).tensor("t", {4, 0, 2}, kTypeF32, 0).pad(32).data(32),
      "tensor 't': dimension 1 is zero");
  add("tensor_dims_overflow",
      with_arch(1).tensor("t", {uint64_t{1} << 32, uint64_t{1} << 32}, kTypeF32, 0).pad(32).data(32),
      "tensor 't': the element count of shape [4294967296, 4294967296] overflows");
  add("tensor_dim_negative", with_arch(1).tensor("t", {~uint64_t{0}}, kTypeF32, 0).pad(32).data(32),
      "tensor 't': the element count of shape [18446744073709551615] overflows");
  add("tensor_unknown_type", with_arch(1).tensor("t", {8}, 1000, 0).pad(32).data(32),
      "tensor 't': unknown ggml type 1000");
  add("tensor_removed_type_4", with_arch(1).tensor("t", {32}, 4, 0).pad(32).data(64),
      "tensor 't': ggml type 4 (Q4_2) was removed from ggml");
  add("tensor_removed_type_33", with_arch(1).tensor("t", {32}, 33, 0).pad(32).data(64),
      "tensor 't': ggml type 33 (Q4_0_8_8) was removed from ggml");
  add("tensor_row_not_block_multiple", with_arch(1).tensor("t", {100, 2}, kTypeQ4K, 0).pad(32).data(288),
      "tensor 't': row length 100 is not a multiple of the Q4_K block size 256");
  add("tensor_byte_size_overflow",
      with_arch(1).tensor("t", {uint64_t{1} << 31, uint64_t{1} << 31}, kTypeF64, 0).pad(32).data(32),
      "tensor 't': the byte size of shape [2147483648, 2147483648] overflows");
  add("duplicate_tensor_name",
      with_arch(2).tensor("blk.0.w", {8}, kTypeF32, 0).tensor("blk.0.w", {8}, kTypeF32, 32).pad(32).data(64),
      "duplicate tensor name 'blk.0.w'");
  add("truncated_tensor_info",
      with_arch(1).str("blk.0.ffn_down_exps.weight.with.a.long.name").u32(3).u64(256).u8(1).u8(2).u8(3),
      "file ends inside tensor 'blk.0.ffn_down_exps.weight.with.a.long.name' (8 bytes needed, 3 left)");
  add("truncated_tensor_offset",
      with_arch(1).str("blk.0.ffn_down_exps.weight").u32(1).u64(8).u32(kTypeF32).u32(0),
      "file ends inside tensor 'blk.0.ffn_down_exps.weight' (8 bytes needed, 4 left)");

  // Tensor data.
  add("tensor_misaligned_offset", with_arch(1).tensor("t", {8}, kTypeF32, 4).pad(32).data(64),
      "tensor 't': data offset 4 is not a multiple of the alignment 32");
  {
    Bytes b;
    b.header(1, 1).kv_u32("general.alignment", 64).tensor("t", {8}, kTypeF32, 32).pad(64).data(64);
    add("tensor_misaligned_custom_alignment", std::move(b),
        "tensor 't': data offset 32 is not a multiple of the alignment 64");
  }
  add("tensor_data_past_end", with_arch(1).tensor("t", {16}, kTypeF32, 32).pad(32).data(64),
      "tensor 't': 64 bytes of data at offset 32 extend past the end of the file (the data section holds 64 "
      "bytes)");
  add("tensor_offset_past_end", with_arch(1).tensor("t", {1}, kTypeF32, uint64_t{1} << 62).pad(32).data(32),
      "tensor 't': 4 bytes of data at offset 4611686018427387904 extend past the end of the file");
  {
    Bytes b = with_arch(1).tensor("t", {8}, kTypeF32, 0);
    const size_t end_of_infos = b.size();
    b.data(5);  // a few stray bytes, but the data section would start at the next multiple of 32
    add("data_section_past_end", std::move(b),
        "the data section would start at " + std::to_string((end_of_infos + 31) / 32 * 32) +
            ", past the end");
  }
  add("overlapping_tensors",
      with_arch(2).tensor("a", {16}, kTypeF32, 0).tensor("b", {8}, kTypeF32, 32).pad(32).data(96),
      "tensor 'b' (data [32, 64)) overlaps tensor 'a' (data [0, 64))");
  add("same_offset_tensors",
      with_arch(2).tensor("a", {8}, kTypeF32, 32).tensor("b", {8}, kTypeF32, 32).pad(32).data(96),
      "tensor 'b' (data [32, 64)) overlaps tensor 'a' (data [32, 64))");
  return c;
}

std::vector<uint8_t> pattern(uint64_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (uint64_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 31 + seed);
  return v;
}

void check(const onecard::Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "make_malformed_corpus: %s\n", s.error().message().c_str());
    std::exit(1);
  }
}

// A valid file through the project's writer: the fuzzer mutates these into everything the reader must refuse.
void write_valid(const fs::path& path, onecard::gguf::Writer& w) {
  check(w.open(path.string()));
  uint8_t seed = 3;
  for (const auto& t : w.tensors()) check(w.write_data(pattern(t.n_bytes, seed++)));
  check(w.finish());
}

void write_file(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "make_malformed_corpus: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

void write_valid_seeds(const fs::path& dir) {
  using onecard::gguf::Writer;
  {
    Writer w;
    write_valid(dir / "header_only.gguf", w);
  }
  {
    Writer w;
    w.set("general.architecture", MetaValue::string("test"));
    w.set("test.u8", MetaValue::u8(200));
    w.set("test.i8", MetaValue{ValueType::I8, 0x80, "", ValueType::U32, {}});
    w.set("test.u16", MetaValue{ValueType::U16, 60000, "", ValueType::U32, {}});
    w.set("test.i16", MetaValue{ValueType::I16, 0xfffe, "", ValueType::U32, {}});
    w.set("test.u32", MetaValue::u32(4000000000u));
    w.set("test.i32", MetaValue::i32(-7));
    w.set("test.f32", MetaValue::f32(2.5f));
    w.set("test.bool", MetaValue::boolean(true));
    w.set("test.string", MetaValue::string("deepseek2"));
    w.set("test.u64", MetaValue::u64(uint64_t{1} << 40));
    w.set("test.i64", MetaValue::i64(-(int64_t{1} << 40)));
    w.set("test.f64", MetaValue::f64(-0.125));
    w.set("test.strings", MetaValue::strings({"a", "", "Ġt he"}));
    w.set("test.i32s", MetaValue::i32s({1, -2, 3}));
    w.set("test.f32s", MetaValue::f32s({0.5f, -1.0f}));
    w.set("test.bools",
          MetaValue::array(ValueType::BOOL, {MetaValue::boolean(false), MetaValue::boolean(true)}));
    w.set("test.u8s", MetaValue::array(ValueType::U8, {MetaValue::u8(1), MetaValue::u8(255)}));
    w.set("test.u64s", MetaValue::array(ValueType::U64, {MetaValue::u64(~uint64_t{0})}));
    w.set("test.empty", MetaValue::array(ValueType::U32, {}));
    w.set("test.nested",
          MetaValue::array(ValueType::ARRAY, {MetaValue::i32s({1, 2}), MetaValue::strings({"x"}),
                                              MetaValue::array(ValueType::ARRAY, {})}));
    write_valid(dir / "metadata_all_types.gguf", w);
  }
  {
    Writer w;
    w.set("general.architecture", MetaValue::string("deepseek2"));
    w.set("deepseek2.block_count", MetaValue::u32(1));
    w.set("tokenizer.ggml.tokens", MetaValue::strings({"<s>", "</s>", "a", "b"}));
    check(w.add_tensor("token_embd.weight", {8, 4}, GgmlType::F32));
    check(w.add_tensor("blk.0.attn_norm.weight", {3}, GgmlType::F32));
    check(w.add_tensor("blk.0.ffn_up.weight", {5, 3}, GgmlType::F16));
    check(w.add_tensor("blk.0.ffn_down.weight", {32, 2}, GgmlType::Q8_0));
    check(w.add_tensor("blk.0.ffn_gate_exps.weight", {256, 1, 2}, GgmlType::Q4_K));
    check(w.add_tensor("blk.0.exp_probs_b.bias", {2, 1, 1, 3}, GgmlType::BF16));
    write_valid(dir / "tensors_mixed_types.gguf", w);
  }
  {
    Writer w(64);
    w.set("general.name", MetaValue::string("aligned"));
    check(w.add_tensor("a", {7}, GgmlType::F32));
    check(w.add_tensor("b", {256}, GgmlType::IQ2_XXS));
    write_valid(dir / "alignment_64.gguf", w);
  }
  // Version 2 files are read as well; the writer makes only version 3, so this one is made by hand.
  write_file(dir / "version_2.gguf", Bytes()
                                         .header(1, 1, 2)
                                         .kv_str("general.name", "v2")
                                         .tensor("t", {4}, kTypeF32, 0)
                                         .pad(32)
                                         .data(16)
                                         .bytes());
}

void clear(const fs::path& dir) {
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto ext = e.path().extension();
    if (ext == ".gguf" || ext == ".expect") fs::remove(e.path());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path out = argv[1];
  const fs::path bad = out / "gguf-malformed";
  const fs::path good = out / "gguf-valid";
  clear(bad);
  clear(good);
  for (const auto& c : malformed_cases()) {
    write_file(bad / (c.name + ".gguf"), c.file.bytes());
    const std::string expect = c.expect + "\n";
    write_file(bad / (c.name + ".expect"), std::vector<uint8_t>(expect.begin(), expect.end()));
  }
  write_valid_seeds(good);
  return 0;
}
