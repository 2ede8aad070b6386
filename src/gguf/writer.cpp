#include "gguf/writer.h"

#include <cerrno>
#include <cstring>
#include <limits>

namespace onecard::gguf {
namespace {

uint64_t align_up(uint64_t x, uint64_t a) {
  return (x + a - 1) / a * a;
}

class ByteSink {
 public:
  void put(const void* p, size_t n) {
    if (n == 0) return;
    const size_t at = out.size();
    out.resize(at + n);
    std::memcpy(out.data() + at, p, n);
  }
  void u32(uint32_t v) { put(&v, 4); }
  void u64(uint64_t v) { put(&v, 8); }
  void str(const std::string& s) {
    u64(s.size());
    put(s.data(), s.size());
  }
  std::vector<uint8_t> out;
};

void put_value(ByteSink& s, const MetaValue& v, bool with_type) {
  if (with_type) s.u32(static_cast<uint32_t>(v.type));
  switch (v.type) {
    case ValueType::STRING:
      s.str(v.str);
      return;
    case ValueType::ARRAY:
      s.u32(static_cast<uint32_t>(v.array_type));
      s.u64(v.items.size());
      for (const auto& item : v.items) put_value(s, item, false);
      return;
    default:
      s.put(&v.bits, value_type_size(v.type));
      return;
  }
}

}  // namespace

MetaValue MetaValue::scalar(ValueType t, uint64_t bits) {
  MetaValue v;
  v.type = t;
  v.bits = bits;
  return v;
}

MetaValue MetaValue::f32(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return scalar(ValueType::F32, b);
}

MetaValue MetaValue::f64(double d) {
  uint64_t b;
  std::memcpy(&b, &d, 8);
  return scalar(ValueType::F64, b);
}

MetaValue MetaValue::string(std::string s) {
  MetaValue v;
  v.type = ValueType::STRING;
  v.str = std::move(s);
  return v;
}

MetaValue MetaValue::array(ValueType element_type, std::vector<MetaValue> items) {
  MetaValue v;
  v.type = ValueType::ARRAY;
  v.array_type = element_type;
  v.items = std::move(items);
  return v;
}

MetaValue MetaValue::strings(const std::vector<std::string>& in) {
  std::vector<MetaValue> items;
  items.reserve(in.size());
  for (const auto& s : in) items.push_back(string(s));
  return array(ValueType::STRING, std::move(items));
}

MetaValue MetaValue::i32s(const std::vector<int32_t>& in) {
  std::vector<MetaValue> items;
  items.reserve(in.size());
  for (int32_t x : in) items.push_back(i32(x));
  return array(ValueType::I32, std::move(items));
}

MetaValue MetaValue::f32s(const std::vector<float>& in) {
  std::vector<MetaValue> items;
  items.reserve(in.size());
  for (float x : in) items.push_back(f32(x));
  return array(ValueType::F32, std::move(items));
}

MetaValue MetaValue::from(const Value& v) {
  switch (v.type()) {
    case ValueType::STRING:
      return string(std::string(v.as<std::string_view>().value()));
    case ValueType::ARRAY: {
      std::vector<MetaValue> items;
      items.reserve(v.array_size());
      if (v.array_type() == ValueType::STRING) {
        for (auto s : v.strings()) items.push_back(string(std::string(s)));
      } else if (v.array_type() == ValueType::ARRAY) {
        for (const auto& item : v.items()) items.push_back(from(item));
      } else {
        for (uint64_t i = 0; i < v.array_size(); ++i) {
          // Reading the raw bits keeps every type (floats, signed) exactly as stored.
          MetaValue e;
          e.type = v.array_type();
          e.bits = v.element_bits(i);
          items.push_back(e);
        }
      }
      return array(v.array_type(), std::move(items));
    }
    default: {
      // Signed scalars are held sign-extended when read; a MetaValue keeps only the bytes the file stores.
      const uint32_t size = value_type_size(v.type());
      MetaValue e;
      e.type = v.type();
      e.bits = size == 8 ? v.scalar_bits() : v.scalar_bits() & ((uint64_t{1} << (8 * size)) - 1);
      return e;
    }
  }
}

Writer::Writer(uint32_t alignment) : alignment_(alignment) {
  if (alignment_ != kDefaultAlignment) set("general.alignment", MetaValue::u32(alignment_));
}

void Writer::set(const std::string& key, MetaValue value) {
  for (auto& kv : kvs_) {
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  }
  kvs_.emplace_back(key, std::move(value));
}

Status Writer::add_tensor(const std::string& name, std::vector<uint64_t> ne, GgmlType type) {
  if (ne.empty() || ne.size() > kMaxDims) return make_error("tensor '{}': {} dimensions", name, ne.size());
  for (const auto& t : tensors_) {
    if (t.name == name) return make_error("tensor '{}' declared twice", name);
  }
  const TypeTraits& tt = traits(type);
  uint64_t n = 1;
  for (uint64_t d : ne) {
    if (d == 0) return make_error("tensor '{}': a dimension is zero", name);
    if (__builtin_mul_overflow(n, d, &n) || n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return make_error("tensor '{}': the element count overflows", name);
    }
  }
  if (ne[0] % tt.block_size != 0) {
    return make_error("tensor '{}': row length {} is not a multiple of the {} block size {}", name, ne[0],
                      tt.name, tt.block_size);
  }
  uint64_t n_bytes = 0;
  if (__builtin_mul_overflow(n / tt.block_size, static_cast<uint64_t>(tt.type_size), &n_bytes)) {
    return make_error("tensor '{}': the byte size overflows", name);
  }
  TensorSpec spec{name, std::move(ne), type, n_bytes, align_up(data_size_, alignment_)};
  data_size_ = spec.offset + spec.n_bytes;
  tensors_.push_back(std::move(spec));
  return {};
}

std::vector<uint8_t> Writer::header_bytes() const {
  ByteSink s;
  s.put("GGUF", 4);
  s.u32(3);
  s.u64(tensors_.size());
  s.u64(kvs_.size());
  for (const auto& [key, value] : kvs_) {
    s.str(key);
    put_value(s, value, true);
  }
  for (const auto& t : tensors_) {
    s.str(t.name);
    s.u32(static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) s.u64(d);
    s.u32(static_cast<uint32_t>(t.type));
    s.u64(t.offset);
  }
  s.out.resize(align_up(s.out.size(), alignment_), 0);
  return std::move(s.out);
}

// The data section ends padded to the alignment, as llama.cpp writes it: its reader loads the data section as
// the sum of the padded tensor sizes and fails on a file whose last tensor is not padded.
uint64_t Writer::file_size() const {
  return header_bytes().size() + (tensors_.empty() ? 0 : align_up(data_size_, alignment_));
}

Status Writer::write_raw(const void* p, size_t n) {
  if (n != 0 && std::fwrite(p, 1, n, out_.get()) != n)
    return make_error("{}: write failed: {}", path_, std::strerror(errno));
  written_ += n;
  return {};
}

Status Writer::pad_to(uint64_t offset) {
  static const uint8_t zeros[64] = {};
  while (written_ < offset) {
    ONECARD_TRY(write_raw(zeros, static_cast<size_t>(std::min<uint64_t>(sizeof(zeros), offset - written_))));
  }
  return {};
}

Status Writer::open(const std::string& path) {
  if (out_ != nullptr) return make_error("{}: writer already open", path_);
  path_ = path;
  out_.reset(std::fopen(path.c_str(), "wb"));
  if (out_ == nullptr) return make_error("{}: cannot create: {}", path, std::strerror(errno));
  const auto header = header_bytes();
  data_start_ = header.size();
  return write_raw(header.data(), header.size());
}

Status Writer::write_data(std::span<const uint8_t> bytes) {
  if (out_ == nullptr) return make_error("write_data before open");
  while (!bytes.empty()) {
    if (current_ >= tensors_.size()) return make_error("{}: more tensor data than declared", path_);
    const TensorSpec& t = tensors_[current_];
    if (current_done_ == 0) ONECARD_TRY(pad_to(data_start_ + t.offset));
    const auto n = static_cast<size_t>(std::min<uint64_t>(bytes.size(), t.n_bytes - current_done_));
    ONECARD_TRY(write_raw(bytes.data(), n));
    current_done_ += n;
    bytes = bytes.subspan(n);
    if (current_done_ == t.n_bytes) {
      ++current_;
      current_done_ = 0;
    }
  }
  return {};
}

Status Writer::finish() {
  if (out_ == nullptr) return make_error("finish before open");
  if (current_ != tensors_.size()) {
    return make_error("{}: tensor '{}' and those after it were not written", path_, tensors_[current_].name);
  }
  if (!tensors_.empty()) ONECARD_TRY(pad_to(data_start_ + align_up(data_size_, alignment_)));
  if (std::fclose(out_.release()) != 0)
    return make_error("{}: close failed: {}", path_, std::strerror(errno));
  return {};
}

}  // namespace onecard::gguf
