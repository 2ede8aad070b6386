#include "gguf/value.h"

namespace onecard::gguf {

std::string Value::type_description() const {
  if (type_ != ValueType::ARRAY) return std::string(value_type_name(type_));
  return fmt::format("array of {}", value_type_name(array_type_));
}

Result<uint64_t> Value::as_u64(std::string_view expected) const {
  switch (type_) {
    case ValueType::U8:
    case ValueType::U16:
    case ValueType::U32:
    case ValueType::U64:
      return bits_;
    case ValueType::I8:
    case ValueType::I16:
    case ValueType::I32:
    case ValueType::I64: {
      const auto v = static_cast<int64_t>(bits_);
      if (v < 0) return make_error("value {} is negative, {} was expected", v, expected);
      return static_cast<uint64_t>(v);
    }
    default:
      return make_error("expected {}, found {}", expected, type_description());
  }
}

Result<int64_t> Value::as_i64(std::string_view expected) const {
  switch (type_) {
    case ValueType::I8:
    case ValueType::I16:
    case ValueType::I32:
    case ValueType::I64:
      return static_cast<int64_t>(bits_);
    case ValueType::U8:
    case ValueType::U16:
    case ValueType::U32:
    case ValueType::U64:
      if (bits_ > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return make_error("value {} does not fit in int64", bits_);
      }
      return static_cast<int64_t>(bits_);
    default:
      return make_error("expected {}, found {}", expected, type_description());
  }
}

Result<double> Value::as_f64(std::string_view expected) const {
  if (type_ == ValueType::F32) {
    float f;
    const auto b = static_cast<uint32_t>(bits_);
    std::memcpy(&f, &b, 4);
    return static_cast<double>(f);
  }
  if (type_ == ValueType::F64) {
    double d;
    std::memcpy(&d, &bits_, 8);
    return d;
  }
  return make_error("expected {}, found {}", expected, type_description());
}

// Elements of fixed-width arrays are not aligned in the file, so they are read with memcpy.
Value Value::scalar_at(uint64_t i) const {
  Value v;
  v.type_ = array_type_;
  const uint32_t size = value_type_size(array_type_);
  uint64_t bits = 0;
  std::memcpy(&bits, raw_ + i * size, size);
  // Sign-extend signed types so that bits_ holds the int64 value.
  switch (array_type_) {
    case ValueType::I8:
      bits = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int8_t>(bits)));
      break;
    case ValueType::I16:
      bits = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int16_t>(bits)));
      break;
    case ValueType::I32:
      bits = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(bits)));
      break;
    default:
      break;
  }
  v.bits_ = bits;
  return v;
}

}  // namespace onecard::gguf
