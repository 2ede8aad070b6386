// A GGUF file, validated completely before any use and read in place from a memory map.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/mmap.h"
#include "base/result.h"
#include "gguf/types.h"
#include "gguf/value.h"

namespace onecard::gguf {

inline constexpr uint32_t kDefaultAlignment = 32;
inline constexpr uint32_t kMaxDims = 4;
// Set (true) by `onecard gen --header-only` in a file that ends after its header: the shapes of a model too
// big to write (DeepSeek-R1's 377 GiB), for planning. The normal open still refuses such a file, naming this.
inline constexpr std::string_view kHeaderOnlyKey = "onecard.header_only";

struct KeyValue {
  std::string_view key;
  Value value;
};

struct TensorInfo {
  std::string_view name;
  uint32_t n_dims = 0;
  std::array<uint64_t, kMaxDims> ne{1, 1, 1, 1};  // ne[0] is the contiguous (input) dimension
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the mapped file
  uint64_t info_offset = 0;       // file offset of this tensor's info record, for messages

  std::span<const uint64_t> dims() const { return {ne.data(), n_dims}; }
  std::span<const uint8_t> bytes() const { return {data, static_cast<size_t>(n_bytes)}; }
  std::string shape_string() const;  // "[7168, 2048, 256]"
};

class File {
 public:
  // Maps and validates a file. Every failure names the file and the offset of the problem.
  static Result<File> open(const std::string& path);
  // Validates bytes owned by the caller, which must outlive the File; `name` is used in messages.
  static Result<File> parse(std::span<const uint8_t> bytes, std::string name);
  // For inspection only: as open() and parse(), but tensor data may be missing (a header-only file, a
  // truncated download). Then has_data() is false and every tensor's data is null; the header, tensor
  // offsets and overlaps are checked as always.
  static Result<File> open_header(const std::string& path);
  static Result<File> parse_header(std::span<const uint8_t> bytes, std::string name);

  // False only for a file opened by open_header()/parse_header() whose data section does not hold every
  // tensor.
  bool has_data() const { return has_data_; }

  const std::string& path() const { return name_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return bytes_.size(); }
  std::span<const uint8_t> bytes() const { return bytes_; }  // the whole file, mapped or the caller's

  std::span<const KeyValue> metadata() const { return kvs_; }
  const Value* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed metadata access; a missing key or a value of another type is an error naming the file and key.
  template <class T>
  Result<T> get(std::string_view key) const;
  // As get(), but a missing key gives `fallback` (a present key of the wrong type is still an error).
  template <class T>
  Result<T> get_or(std::string_view key, T fallback) const;

  std::span<const TensorInfo> tensors() const { return tensors_; }
  const TensorInfo* tensor(std::string_view name) const;

 private:
  friend class Parser;
  static Result<File> parse_bytes(std::span<const uint8_t> bytes, std::string name, bool header_only);
  static Result<File> open_file(const std::string& path, bool header_only);
  Error key_error(std::string_view key, const Error& e) const;

  std::unique_ptr<MappedFile> map_;  // null when parsing caller-owned bytes
  std::span<const uint8_t> bytes_;
  std::string name_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  bool has_data_ = true;
  std::vector<KeyValue> kvs_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

template <class T>
Result<T> File::get(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr)
    return make_error("{}: missing metadata key '{}' ({} expected)", name_, key, cpp_type_name<T>());
  auto r = v->as<T>();
  if (!r.ok()) return key_error(key, r.error());
  return r;
}

template <class T>
Result<T> File::get_or(std::string_view key, T fallback) const {
  if (find(key) == nullptr) return fallback;
  return get<T>(key);
}

}  // namespace onecard::gguf
