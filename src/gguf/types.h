// The ggml tensor types that GGUF files use, with their block geometry, and the GGUF metadata value types.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace onecard::gguf {

enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

struct TypeTraits {
  GgmlType type;
  std::string_view name;
  uint32_t block_size;  // elements per block
  uint32_t type_size;   // bytes per block
};

// nullptr for an id that is not a known, still-supported ggml type (ids 4, 5 and 31-33 were removed from
// ggml).
const TypeTraits* type_traits(uint32_t id);
inline const TypeTraits& traits(GgmlType t) {
  return *type_traits(static_cast<uint32_t>(t));
}
std::string_view type_name(GgmlType t);
std::optional<GgmlType> type_from_name(std::string_view name);  // case-insensitive: "q4_k", "Q4_K"

// Bytes of a row of n elements; n must be a multiple of the block size.
inline uint64_t row_bytes(GgmlType t, uint64_t n) {
  const TypeTraits& tt = traits(t);
  return n / tt.block_size * tt.type_size;
}

enum class ValueType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

std::string_view value_type_name(ValueType t);
bool is_valid_value_type(uint32_t id);
// Bytes of a fixed-width value type; 0 for STRING and ARRAY.
uint32_t value_type_size(ValueType t);

}  // namespace onecard::gguf
