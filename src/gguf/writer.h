// Writes GGUF v3 files as llama.cpp-family tools expect them: header, metadata, tensor infos, padding to the
// alignment, then each tensor's data at an aligned offset. Tensor data is streamed in declaration order, so a
// multi-GB file never has to be in memory.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "gguf/file.h"
#include "gguf/types.h"

namespace onecard::gguf {

// An owned metadata value, for writing.
struct MetaValue {
  ValueType type = ValueType::U32;
  uint64_t bits = 0;  // scalar payload, little-endian, as in the file
  std::string str;
  ValueType array_type = ValueType::U32;
  std::vector<MetaValue> items;

  static MetaValue u8(uint8_t v) { return scalar(ValueType::U8, v); }
  static MetaValue u32(uint32_t v) { return scalar(ValueType::U32, v); }
  static MetaValue i32(int32_t v) { return scalar(ValueType::I32, static_cast<uint32_t>(v)); }
  static MetaValue u64(uint64_t v) { return scalar(ValueType::U64, v); }
  static MetaValue i64(int64_t v) { return scalar(ValueType::I64, static_cast<uint64_t>(v)); }
  static MetaValue f32(float v);
  static MetaValue f64(double v);
  static MetaValue boolean(bool v) { return scalar(ValueType::BOOL, v ? 1 : 0); }
  static MetaValue string(std::string v);
  static MetaValue array(ValueType element_type, std::vector<MetaValue> items);
  static MetaValue strings(const std::vector<std::string>& v);
  static MetaValue i32s(const std::vector<int32_t>& v);
  static MetaValue f32s(const std::vector<float>& v);
  // A deep copy of a value read from a file.
  static MetaValue from(const Value& v);

  bool operator==(const MetaValue&) const = default;

 private:
  static MetaValue scalar(ValueType t, uint64_t bits);
};

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> ne;  // ne[0] contiguous
  GgmlType type = GgmlType::F32;
  uint64_t n_bytes = 0;  // computed by add_tensor
  uint64_t offset = 0;   // computed by add_tensor
};

class Writer {
 public:
  explicit Writer(uint32_t alignment = kDefaultAlignment);

  // Metadata, written in the order set; setting a key again replaces its value.
  void set(const std::string& key, MetaValue value);
  // Declares a tensor; its data must later be streamed in declaration order.
  Status add_tensor(const std::string& name, std::vector<uint64_t> ne, GgmlType type);

  const std::vector<TensorSpec>& tensors() const { return tensors_; }
  // The whole file's size once written.
  uint64_t file_size() const;
  // Header, metadata and tensor infos, padded to the alignment: the bytes before the data section.
  std::vector<uint8_t> header_bytes() const;

  // Writing: open() writes the header; write_data() appends bytes of the current tensor (any number of calls,
  // tensors in declaration order; padding is inserted between them); finish() checks that all were written.
  Status open(const std::string& path);
  Status write_data(std::span<const uint8_t> bytes);
  Status finish();

 private:
  Status write_raw(const void* p, size_t n);
  Status pad_to(uint64_t offset);

  uint32_t alignment_;
  std::vector<std::pair<std::string, MetaValue>> kvs_;
  std::vector<TensorSpec> tensors_;
  uint64_t data_size_ = 0;

  struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<std::FILE, FileCloser> out_;
  std::string path_;
  uint64_t written_ = 0;       // bytes of the file so far
  uint64_t data_start_ = 0;    // file offset of the data section
  size_t current_ = 0;         // tensor being written
  uint64_t current_done_ = 0;  // its bytes so far
};

}  // namespace onecard::gguf
