// A metadata value as it lies in a GGUF file: a view into the mapped bytes (strings and arrays are not
// copied).
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "base/result.h"
#include "gguf/types.h"

namespace onecard::gguf {

class Value {
 public:
  ValueType type() const { return type_; }

  // Scalars. Integer types convert losslessly to any integer T that holds the value; float32 and float64
  // convert to float or double; anything else is an error that says what was expected and what was found.
  template <class T>
  Result<T> as() const;

  // Arrays.
  bool is_array() const { return type_ == ValueType::ARRAY; }
  ValueType array_type() const { return array_type_; }
  uint64_t array_size() const { return count_; }
  // Elements of an array of strings, as views into the file.
  std::span<const std::string_view> strings() const { return strings_; }
  // Elements of an array of arrays.
  std::span<const Value> items() const { return items_; }
  // Element i of an array of fixed-width values, converted as as<T>() would.
  template <class T>
  Result<T> element(uint64_t i) const;
  // All elements of an array of fixed-width values, converted.
  template <class T>
  Result<std::vector<T>> to_vector() const;

  // The describing name of this value's type, e.g. "uint32" or "array of string".
  std::string type_description() const;

  // Raw payload of a scalar, and of element i of a fixed-width array, as stored (for exact copies).
  uint64_t scalar_bits() const { return bits_; }
  uint64_t element_bits(uint64_t i) const {
    uint64_t bits = 0;
    std::memcpy(&bits, raw_ + i * value_type_size(array_type_), value_type_size(array_type_));
    return bits;
  }

 private:
  friend class Parser;
  // `expected` names the caller's type in the message when this value is of another kind.
  Result<uint64_t> as_u64(std::string_view expected) const;
  Result<int64_t> as_i64(std::string_view expected) const;
  Result<double> as_f64(std::string_view expected) const;
  Value scalar_at(uint64_t i) const;

  ValueType type_ = ValueType::U8;
  uint64_t bits_ = 0;  // raw little-endian payload of a scalar
  std::string_view str_;
  ValueType array_type_ = ValueType::U8;
  uint64_t count_ = 0;
  const uint8_t* raw_ = nullptr;  // packed elements of a fixed-width array
  std::vector<std::string_view> strings_;
  std::vector<Value> items_;
};

template <class T>
inline constexpr std::string_view cpp_type_name() {
  if constexpr (std::is_same_v<T, bool>)
    return "bool";
  else if constexpr (std::is_same_v<T, uint8_t>)
    return "uint8";
  else if constexpr (std::is_same_v<T, int8_t>)
    return "int8";
  else if constexpr (std::is_same_v<T, uint16_t>)
    return "uint16";
  else if constexpr (std::is_same_v<T, int16_t>)
    return "int16";
  else if constexpr (std::is_same_v<T, uint32_t>)
    return "uint32";
  else if constexpr (std::is_same_v<T, int32_t>)
    return "int32";
  else if constexpr (std::is_same_v<T, uint64_t>)
    return "uint64";
  else if constexpr (std::is_same_v<T, int64_t>)
    return "int64";
  else if constexpr (std::is_same_v<T, float>)
    return "float32";
  else if constexpr (std::is_same_v<T, double>)
    return "float64";
  else
    return "string";
}

template <class T>
Result<T> Value::as() const {
  if constexpr (std::is_same_v<T, bool>) {
    if (type_ != ValueType::BOOL) return make_error("expected bool, found {}", type_description());
    return bits_ != 0;
  } else if constexpr (std::is_same_v<T, std::string_view> || std::is_same_v<T, std::string>) {
    if (type_ != ValueType::STRING) return make_error("expected string, found {}", type_description());
    return T(str_);
  } else if constexpr (std::is_floating_point_v<T>) {
    ONECARD_ASSIGN_OR_RETURN(double v, as_f64(cpp_type_name<T>()));
    return static_cast<T>(v);
  } else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) {
    ONECARD_ASSIGN_OR_RETURN(uint64_t v, as_u64(cpp_type_name<T>()));
    if (v > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      return make_error("value {} does not fit in {}", v, cpp_type_name<T>());
    }
    return static_cast<T>(v);
  } else {
    static_assert(std::is_integral_v<T> && std::is_signed_v<T>, "unsupported metadata type");
    ONECARD_ASSIGN_OR_RETURN(int64_t v, as_i64(cpp_type_name<T>()));
    if (v > static_cast<int64_t>(std::numeric_limits<T>::max()) ||
        v < static_cast<int64_t>(std::numeric_limits<T>::min())) {
      return make_error("value {} does not fit in {}", v, cpp_type_name<T>());
    }
    return static_cast<T>(v);
  }
}

template <class T>
Result<T> Value::element(uint64_t i) const {
  if (type_ != ValueType::ARRAY) return make_error("expected an array, found {}", type_description());
  if (i >= count_) return make_error("index {} out of range for an array of {}", i, count_);
  if (array_type_ == ValueType::STRING) {
    if constexpr (std::is_same_v<T, std::string_view> || std::is_same_v<T, std::string>)
      return T(strings_[i]);
    else
      return make_error("expected array of {}, found {}", cpp_type_name<T>(), type_description());
  } else if (array_type_ == ValueType::ARRAY) {
    return make_error("expected array of {}, found {}", cpp_type_name<T>(), type_description());
  }
  return scalar_at(i).as<T>();
}

template <class T>
Result<std::vector<T>> Value::to_vector() const {
  if (type_ != ValueType::ARRAY) return make_error("expected an array, found {}", type_description());
  std::vector<T> out;
  out.reserve(count_);  // count_ was checked against the file size when parsed
  for (uint64_t i = 0; i < count_; ++i) {
    auto r = element<T>(i);
    if (!r.ok()) return r.error().with_context(fmt::format("element {}", i));
    out.push_back(std::move(r).value());
  }
  return out;
}

}  // namespace onecard::gguf
