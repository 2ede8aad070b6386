#include "gguf/types.h"

#include <array>
#include <cctype>

namespace onecard::gguf {
namespace {

constexpr std::array kTypes = {
    TypeTraits{GgmlType::F32, "F32", 1, 4},
    TypeTraits{GgmlType::F16, "F16", 1, 2},
    TypeTraits{GgmlType::Q4_0, "Q4_0", 32, 18},
    TypeTraits{GgmlType::Q4_1, "Q4_1", 32, 20},
    TypeTraits{GgmlType::Q5_0, "Q5_0", 32, 22},
    TypeTraits{GgmlType::Q5_1, "Q5_1", 32, 24},
    TypeTraits{GgmlType::Q8_0, "Q8_0", 32, 34},
    TypeTraits{GgmlType::Q8_1, "Q8_1", 32, 36},
    TypeTraits{GgmlType::Q2_K, "Q2_K", 256, 84},
    TypeTraits{GgmlType::Q3_K, "Q3_K", 256, 110},
    TypeTraits{GgmlType::Q4_K, "Q4_K", 256, 144},
    TypeTraits{GgmlType::Q5_K, "Q5_K", 256, 176},
    TypeTraits{GgmlType::Q6_K, "Q6_K", 256, 210},
    TypeTraits{GgmlType::Q8_K, "Q8_K", 256, 292},
    TypeTraits{GgmlType::IQ2_XXS, "IQ2_XXS", 256, 66},
    TypeTraits{GgmlType::IQ2_XS, "IQ2_XS", 256, 74},
    TypeTraits{GgmlType::IQ3_XXS, "IQ3_XXS", 256, 98},
    TypeTraits{GgmlType::IQ1_S, "IQ1_S", 256, 50},
    TypeTraits{GgmlType::IQ4_NL, "IQ4_NL", 32, 18},
    TypeTraits{GgmlType::IQ3_S, "IQ3_S", 256, 110},
    TypeTraits{GgmlType::IQ2_S, "IQ2_S", 256, 82},
    TypeTraits{GgmlType::IQ4_XS, "IQ4_XS", 256, 136},
    TypeTraits{GgmlType::I8, "I8", 1, 1},
    TypeTraits{GgmlType::I16, "I16", 1, 2},
    TypeTraits{GgmlType::I32, "I32", 1, 4},
    TypeTraits{GgmlType::I64, "I64", 1, 8},
    TypeTraits{GgmlType::F64, "F64", 1, 8},
    TypeTraits{GgmlType::IQ1_M, "IQ1_M", 256, 56},
    TypeTraits{GgmlType::BF16, "BF16", 1, 2},
    TypeTraits{GgmlType::TQ1_0, "TQ1_0", 256, 54},
    TypeTraits{GgmlType::TQ2_0, "TQ2_0", 256, 66},
    TypeTraits{GgmlType::MXFP4, "MXFP4", 32, 17},
};

constexpr std::array<std::string_view, 13> kValueTypeNames = {
    "uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
    "bool",  "string", "array",  "uint64", "int64",  "float64"};

}  // namespace

const TypeTraits* type_traits(uint32_t id) {
  for (const auto& t : kTypes) {
    if (static_cast<uint32_t>(t.type) == id) return &t;
  }
  return nullptr;
}

std::string_view type_name(GgmlType t) {
  const TypeTraits* tt = type_traits(static_cast<uint32_t>(t));
  return tt ? tt->name : "unknown";
}

std::optional<GgmlType> type_from_name(std::string_view name) {
  for (const auto& t : kTypes) {
    if (t.name.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i) {
      same = std::toupper(static_cast<unsigned char>(name[i])) == static_cast<unsigned char>(t.name[i]);
    }
    if (same) return t.type;
  }
  return std::nullopt;
}

bool is_valid_value_type(uint32_t id) {
  return id < kValueTypeNames.size();
}

std::string_view value_type_name(ValueType t) {
  const auto i = static_cast<uint32_t>(t);
  return i < kValueTypeNames.size() ? kValueTypeNames[i] : std::string_view("invalid");
}

uint32_t value_type_size(ValueType t) {
  switch (t) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::BOOL:
      return 1;
    case ValueType::U16:
    case ValueType::I16:
      return 2;
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::F32:
      return 4;
    case ValueType::U64:
    case ValueType::I64:
    case ValueType::F64:
      return 8;
    case ValueType::STRING:
    case ValueType::ARRAY:
      return 0;
  }
  return 0;
}

}  // namespace onecard::gguf
