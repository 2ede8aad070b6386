#include "gguf/file.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace onecard::gguf {
namespace {

// Ids that ggml once assigned and later dropped; naming them tells the user the file is from an old tool.
const char* removed_type_name(uint32_t id) {
  switch (id) {
    case 4:
      return "Q4_2";
    case 5:
      return "Q4_3";
    case 31:
      return "Q4_0_4_4";
    case 32:
      return "Q4_0_4_8";
    case 33:
      return "Q4_0_8_8";
    case 36:
      return "IQ4_NL_4_4";
    case 37:
      return "IQ4_NL_4_8";
    case 38:
      return "IQ4_NL_8_8";
    default:
      return nullptr;
  }
}

}  // namespace

std::string TensorInfo::shape_string() const {
  std::string s = "[";
  for (uint32_t i = 0; i < n_dims; ++i) s += fmt::format("{}{}", i ? ", " : "", ne[i]);
  return s + "]";
}

// Reads the file front to back. Every read is bounds-checked, and every count is checked against the bytes
// that remain before anything is allocated for it.
class Parser {
 public:
  Parser(std::span<const uint8_t> bytes, const std::string& name, bool header_only)
      : b_(bytes), name_(name), header_only_(header_only) {}

  Status run(File& f);

 private:
  static constexpr int kMaxArrayDepth = 8;

  template <class... Args>
  Error fail_at(uint64_t offset, fmt::format_string<Args...> f, Args&&... args) const {
    return Error(
        fmt::format("{}: offset {}: {}", name_, offset, fmt::format(f, std::forward<Args>(args)...)));
  }
  uint64_t remaining() const { return b_.size() - pos_; }

  template <class T>
  Result<T> read(std::string_view what) {
    if (remaining() < sizeof(T)) {
      return fail_at(pos_, "file ends inside {} ({} bytes needed, {} left)", what, sizeof(T), remaining());
    }
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  Result<std::string_view> read_string(std::string_view what);
  Result<Value> read_value(ValueType type, std::string_view what, int depth);
  Status read_kvs(File& f, uint64_t n_kv);
  Status check_alignment(File& f, uint64_t value_at);
  Status read_tensor_infos(File& f, uint64_t n_tensors);
  Status check_tensor_data(File& f);
  // What a missing data section's error adds for a file that says it is header-only.
  std::string header_only_note(const File& f) const;

  std::span<const uint8_t> b_;
  const std::string& name_;
  const bool header_only_;
  uint64_t pos_ = 0;
};

Result<std::string_view> Parser::read_string(std::string_view what) {
  const uint64_t at = pos_;
  ONECARD_ASSIGN_OR_RETURN(uint64_t len, read<uint64_t>(what));
  if (len > remaining()) {
    return fail_at(at, "{}: string length {} exceeds the {} bytes left in the file", what, len, remaining());
  }
  std::string_view s(reinterpret_cast<const char*>(b_.data() + pos_), static_cast<size_t>(len));
  pos_ += len;
  return s;
}

Result<Value> Parser::read_value(ValueType type, std::string_view what, int depth) {
  Value v;
  v.type_ = type;
  const uint64_t at = pos_;
  switch (type) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::BOOL: {
      ONECARD_ASSIGN_OR_RETURN(uint8_t x, read<uint8_t>(what));
      if (type == ValueType::I8)
        v.bits_ = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int8_t>(x)));
      else
        v.bits_ = x;
      if (type == ValueType::BOOL && x > 1)
        return fail_at(at, "{}: bool value {} is neither 0 nor 1", what, x);
      return v;
    }
    case ValueType::U16: {
      ONECARD_ASSIGN_OR_RETURN(uint16_t x, read<uint16_t>(what));
      v.bits_ = x;
      return v;
    }
    case ValueType::I16: {
      ONECARD_ASSIGN_OR_RETURN(int16_t x, read<int16_t>(what));
      v.bits_ = static_cast<uint64_t>(static_cast<int64_t>(x));
      return v;
    }
    case ValueType::U32:
    case ValueType::F32: {
      ONECARD_ASSIGN_OR_RETURN(uint32_t x, read<uint32_t>(what));
      v.bits_ = x;
      return v;
    }
    case ValueType::I32: {
      ONECARD_ASSIGN_OR_RETURN(int32_t x, read<int32_t>(what));
      v.bits_ = static_cast<uint64_t>(static_cast<int64_t>(x));
      return v;
    }
    case ValueType::U64:
    case ValueType::I64:
    case ValueType::F64: {
      ONECARD_ASSIGN_OR_RETURN(uint64_t x, read<uint64_t>(what));
      v.bits_ = x;
      return v;
    }
    case ValueType::STRING: {
      ONECARD_ASSIGN_OR_RETURN(v.str_, read_string(what));
      return v;
    }
    case ValueType::ARRAY:
      break;
  }
  if (depth >= kMaxArrayDepth) return fail_at(at, "{}: arrays nested deeper than {}", what, kMaxArrayDepth);
  ONECARD_ASSIGN_OR_RETURN(uint32_t elem, read<uint32_t>(what));
  if (!is_valid_value_type(elem)) return fail_at(at, "{}: unknown array element type {}", what, elem);
  v.array_type_ = static_cast<ValueType>(elem);
  const uint64_t count_at = pos_;
  ONECARD_ASSIGN_OR_RETURN(v.count_, read<uint64_t>(what));
  // The smallest encoding of one element: a fixed-width value, an 8-byte string length, or an array header.
  const uint64_t min_elem = elem == static_cast<uint32_t>(ValueType::STRING) ? 8
                            : elem == static_cast<uint32_t>(ValueType::ARRAY)
                                ? 12
                                : value_type_size(v.array_type_);
  if (v.count_ > remaining() / min_elem) {
    return fail_at(count_at, "{}: array of {} {} values cannot fit in the {} bytes left in the file", what,
                   v.count_, value_type_name(v.array_type_), remaining());
  }
  if (v.array_type_ == ValueType::STRING) {
    v.strings_.reserve(v.count_);
    for (uint64_t i = 0; i < v.count_; ++i) {
      ONECARD_ASSIGN_OR_RETURN(std::string_view s, read_string(what));
      v.strings_.push_back(s);
    }
  } else if (v.array_type_ == ValueType::ARRAY) {
    v.items_.reserve(v.count_);
    for (uint64_t i = 0; i < v.count_; ++i) {
      ONECARD_ASSIGN_OR_RETURN(Value item, read_value(ValueType::ARRAY, what, depth + 1));
      v.items_.push_back(std::move(item));
    }
  } else {
    v.raw_ = b_.data() + pos_;
    pos_ += v.count_ * min_elem;
    if (v.array_type_ == ValueType::BOOL) {
      for (uint64_t i = 0; i < v.count_; ++i) {
        if (v.raw_[i] > 1)
          return fail_at(count_at + 8 + i, "{}: bool element {} is neither 0 nor 1", what, i);
      }
    }
  }
  return v;
}

Status Parser::read_kvs(File& f, uint64_t n_kv) {
  f.kvs_.reserve(n_kv);       // n_kv was checked against the file size
  uint64_t alignment_at = 0;  // where general.alignment's value lies, for messages
  for (uint64_t i = 0; i < n_kv; ++i) {
    const uint64_t at = pos_;
    ONECARD_ASSIGN_OR_RETURN(std::string_view key, read_string(fmt::format("metadata key #{}", i)));
    if (key.empty()) return fail_at(at, "metadata key #{} is empty", i);
    const std::string what = fmt::format("metadata key '{}'", key);
    const uint64_t type_at = pos_;
    ONECARD_ASSIGN_OR_RETURN(uint32_t type, read<uint32_t>(what));
    if (!is_valid_value_type(type)) return fail_at(type_at, "{}: unknown value type {}", what, type);
    ONECARD_ASSIGN_OR_RETURN(Value value, read_value(static_cast<ValueType>(type), what, 0));
    if (!f.kv_index_.emplace(key, f.kvs_.size()).second) return fail_at(at, "duplicate {}", what);
    if (key == "general.alignment") alignment_at = type_at;
    f.kvs_.push_back(KeyValue{key, std::move(value)});
  }
  return check_alignment(f, alignment_at);
}

Status Parser::check_alignment(File& f, uint64_t value_at) {
  const Value* a = f.find("general.alignment");
  if (a == nullptr) return {};
  auto r = a->as<uint32_t>();
  if (!r.ok()) return fail_at(value_at, "metadata key 'general.alignment': {}", r.error().message());
  const uint32_t al = r.value();
  if (al == 0 || (al & (al - 1)) != 0) {
    return fail_at(value_at, "metadata key 'general.alignment': {} is not a power of two", al);
  }
  f.alignment_ = al;
  return {};
}

Status Parser::read_tensor_infos(File& f, uint64_t n_tensors) {
  f.tensors_.reserve(n_tensors);  // n_tensors was checked against the file size
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t;
    t.info_offset = pos_;
    ONECARD_ASSIGN_OR_RETURN(t.name, read_string(fmt::format("name of tensor #{}", i)));
    if (t.name.empty()) return fail_at(t.info_offset, "tensor #{} has an empty name", i);
    const std::string what = fmt::format("tensor '{}'", t.name);
    const uint64_t dims_at = pos_;
    ONECARD_ASSIGN_OR_RETURN(t.n_dims, read<uint32_t>(what));
    if (t.n_dims == 0 || t.n_dims > kMaxDims) {
      return fail_at(dims_at, "{}: {} dimensions (1 to {} allowed)", what, t.n_dims, kMaxDims);
    }
    t.n_elements = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      const uint64_t at = pos_;
      ONECARD_ASSIGN_OR_RETURN(t.ne[d], read<uint64_t>(what));
      if (t.ne[d] == 0) return fail_at(at, "{}: dimension {} is zero", what, d);
      if (t.ne[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          __builtin_mul_overflow(t.n_elements, t.ne[d], &t.n_elements) ||
          t.n_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return fail_at(dims_at, "{}: the element count of shape {} overflows", what, t.shape_string());
      }
    }
    const uint64_t type_at = pos_;
    ONECARD_ASSIGN_OR_RETURN(uint32_t type, read<uint32_t>(what));
    const TypeTraits* tt = type_traits(type);
    if (tt == nullptr) {
      if (const char* old = removed_type_name(type)) {
        return fail_at(type_at, "{}: ggml type {} ({}) was removed from ggml and is not supported", what,
                       type, old);
      }
      return fail_at(type_at, "{}: unknown ggml type {}", what, type);
    }
    t.type = tt->type;
    if (t.ne[0] % tt->block_size != 0) {
      return fail_at(dims_at, "{}: row length {} is not a multiple of the {} block size {}", what, t.ne[0],
                     tt->name, tt->block_size);
    }
    if (__builtin_mul_overflow(t.n_elements / tt->block_size, static_cast<uint64_t>(tt->type_size),
                               &t.n_bytes)) {
      return fail_at(dims_at, "{}: the byte size of shape {} overflows", what, t.shape_string());
    }
    ONECARD_ASSIGN_OR_RETURN(t.offset, read<uint64_t>(what));
    if (!f.tensor_index_.emplace(t.name, f.tensors_.size()).second) {
      return fail_at(t.info_offset, "duplicate tensor name '{}'", t.name);
    }
    f.tensors_.push_back(t);
  }
  return {};
}

std::string Parser::header_only_note(const File& f) const {
  const Value* v = f.find(kHeaderOnlyKey);
  if (v == nullptr) return "";
  const auto set = v->as<bool>();
  if (!set.ok() || !set.value()) return "";
  return fmt::format(
      "; this is a header-only file ({} is set, as `onecard gen --header-only` writes it): it has no "
      "tensor data, so it cannot be loaded, only inspected (onecard inspect {} --plan)",
      kHeaderOnlyKey, name_);
}

Status Parser::check_tensor_data(File& f) {
  const uint64_t al = f.alignment_;
  const uint64_t end_of_infos = pos_;
  f.data_offset_ = (end_of_infos + al - 1) / al * al;
  if (f.tensors_.empty()) return {};  // vocabulary-only files may end right after the header
  bool missing = f.data_offset_ > b_.size();
  if (missing && !header_only_) {
    return fail_at(end_of_infos, "the data section would start at {}, past the end of the file ({} bytes){}",
                   f.data_offset_, b_.size(), header_only_note(f));
  }
  const uint64_t data_size = missing ? 0 : b_.size() - f.data_offset_;
  for (auto& t : f.tensors_) {
    if (t.offset % al != 0) {
      return fail_at(t.info_offset, "tensor '{}': data offset {} is not a multiple of the alignment {}",
                     t.name, t.offset, al);
    }
    if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
      if (!header_only_) {
        return fail_at(t.info_offset,
                       "tensor '{}': {} bytes of data at offset {} extend past the end of the file "
                       "(the data section holds {} bytes){}",
                       t.name, t.n_bytes, t.offset, data_size, header_only_note(f));
      }
      // Unbounded by the file, the end must still be a number for the overlap check below.
      if (t.n_bytes > std::numeric_limits<uint64_t>::max() - t.offset) {
        return fail_at(t.info_offset, "tensor '{}': data offset {} plus {} bytes overflows", t.name, t.offset,
                       t.n_bytes);
      }
      missing = true;
      continue;
    }
    t.data = b_.data() + f.data_offset_ + t.offset;
  }
  if (missing) {
    f.has_data_ = false;
    for (auto& t : f.tensors_) t.data = nullptr;
  }
  std::vector<const TensorInfo*> by_offset;
  by_offset.reserve(f.tensors_.size());
  for (const auto& t : f.tensors_) by_offset.push_back(&t);
  // Stable, so that of two tensors at one offset the later-declared one is named as the overlapping one.
  std::stable_sort(by_offset.begin(), by_offset.end(),
                   [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo& a = *by_offset[i - 1];
    const TensorInfo& b = *by_offset[i];
    if (a.offset + a.n_bytes > b.offset) {
      return fail_at(b.info_offset, "tensor '{}' (data [{}, {})) overlaps tensor '{}' (data [{}, {}))",
                     b.name, b.offset, b.offset + b.n_bytes, a.name, a.offset, a.offset + a.n_bytes);
    }
  }
  return {};
}

Status Parser::run(File& f) {
  if (b_.size() < 4) return fail_at(0, "file too small to be GGUF ({} bytes)", b_.size());
  if (std::memcmp(b_.data(), "GGUF", 4) != 0) {
    return fail_at(0, "not a GGUF file: magic is {:02x} {:02x} {:02x} {:02x}, expected 'GGUF'", b_[0], b_[1],
                   b_[2], b_[3]);
  }
  pos_ = 4;
  ONECARD_ASSIGN_OR_RETURN(f.version_, read<uint32_t>("version"));
  if (f.version_ == 1) return fail_at(4, "GGUF version 1 is not supported (versions 2 and 3 are)");
  if (f.version_ != 2 && f.version_ != 3) {
    if (f.version_ != 0 && (f.version_ & 0xffff) == 0) {
      return fail_at(4, "GGUF version {:#x} looks byte-swapped: big-endian files are not supported",
                     f.version_);
    }
    return fail_at(4, "unsupported GGUF version {} (versions 2 and 3 are supported)", f.version_);
  }
  const uint64_t counts_at = pos_;
  ONECARD_ASSIGN_OR_RETURN(uint64_t n_tensors, read<uint64_t>("tensor count"));
  ONECARD_ASSIGN_OR_RETURN(uint64_t n_kv, read<uint64_t>("metadata count"));
  // Smallest encodings: a key/value is a key length, a type and one byte; a tensor info is a name length,
  // a dimension count, one dimension, a type and an offset.
  constexpr uint64_t kMinKv = 8 + 4 + 1;
  constexpr uint64_t kMinTensor = 8 + 4 + 8 + 4 + 8;
  if (n_tensors > remaining() / kMinTensor) {
    return fail_at(counts_at, "tensor count {} cannot fit in the {} bytes left in the file", n_tensors,
                   remaining());
  }
  if (n_kv > remaining() / kMinKv) {
    return fail_at(counts_at + 8, "metadata count {} cannot fit in the {} bytes left in the file", n_kv,
                   remaining());
  }
  if (n_kv * kMinKv + n_tensors * kMinTensor > remaining()) {
    return fail_at(counts_at,
                   "{} tensors and {} metadata entries cannot fit in the {} bytes left in the file",
                   n_tensors, n_kv, remaining());
  }
  ONECARD_TRY(read_kvs(f, n_kv));
  ONECARD_TRY(read_tensor_infos(f, n_tensors));
  return check_tensor_data(f);
}

Result<File> File::parse_bytes(std::span<const uint8_t> bytes, std::string name, bool header_only) {
  File f;
  f.bytes_ = bytes;
  f.name_ = std::move(name);
  Parser p(bytes, f.name_, header_only);
  ONECARD_TRY(p.run(f));
  return f;
}

Result<File> File::open_file(const std::string& path, bool header_only) {
  ONECARD_ASSIGN_OR_RETURN(MappedFile map, MappedFile::open(path));
  auto owned = std::make_unique<MappedFile>(std::move(map));
  ONECARD_ASSIGN_OR_RETURN(File f, parse_bytes(owned->bytes(), path, header_only));
  f.map_ = std::move(owned);
  return f;
}

Result<File> File::parse(std::span<const uint8_t> bytes, std::string name) {
  return parse_bytes(bytes, std::move(name), false);
}

Result<File> File::parse_header(std::span<const uint8_t> bytes, std::string name) {
  return parse_bytes(bytes, std::move(name), true);
}

Result<File> File::open(const std::string& path) {
  return open_file(path, false);
}

Result<File> File::open_header(const std::string& path) {
  return open_file(path, true);
}

const Value* File::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

const TensorInfo* File::tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

Error File::key_error(std::string_view key, const Error& e) const {
  return make_error("{}: metadata key '{}': {}", name_, key, e.message());
}

}  // namespace onecard::gguf
