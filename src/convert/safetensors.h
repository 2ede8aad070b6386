// A validating reader of one safetensors file (Hugging Face's weight format): an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the raw tensor
// bytes. The file is memory-mapped; every field is checked before use (header length against the file, JSON
// shape, dtype names, shape × dtype size against the byte range, ranges inside the data and not overlapping),
// and every error names the file, the tensor and the field.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/mmap.h"
#include "base/result.h"

namespace onecard::convert {

enum class Dtype { kF64, kF32, kF16, kBF16, kF8_E4M3, kF8_E5M2, kI64, kI32, kI16, kI8, kU8, kBool };

std::string_view dtype_name(Dtype d);  // "BF16", as the header spells it
uint32_t dtype_size(Dtype d);          // bytes per element

struct StTensor {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::vector<uint64_t> shape;  // row-major, outermost first (the PyTorch order)
  uint64_t begin = 0, end = 0;  // byte range inside the data section
  const uint8_t* data = nullptr;

  uint64_t n_elements() const;
  uint64_t n_bytes() const { return end - begin; }
  std::string shape_string() const;  // "[512, 256]"
};

class SafetensorsFile {
 public:
  // Maps and validates a file.
  static Result<SafetensorsFile> open(const std::string& path);
  // Validates bytes owned by the caller (which must outlive the result); `name` is used in messages.
  static Result<SafetensorsFile> parse(std::span<const uint8_t> bytes, std::string name);

  const std::string& path() const { return name_; }
  const StTensor* find(std::string_view name) const;
  const std::vector<StTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::unique_ptr<MappedFile> map_;
  std::string name_;
  std::vector<StTensor> tensors_;  // in the header's order
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace onecard::convert
