// A whole-file weight type ("q4_k_m", "q8_0", ...) and the ggml type it gives each tensor: what `onecard
// quantize` writes and `onecard gen` draws. Norms, biases and the router stay F32, as in published files.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/result.h"
#include "gguf/types.h"

namespace onecard::model {

enum class WeightScheme { kF32, kF16, kBF16, kQ8_0, kQ4_0, kQ2_K, kQ3_K, kQ4_K, kQ5_K, kQ6_K, kQ4_K_M };

std::string_view scheme_name(WeightScheme s);  // "q4_k_m"
// Case-insensitive; the error lists the valid names.
Result<WeightScheme> parse_scheme(std::string_view name);
// The llama.cpp `general.file_type` (llama_ftype) of a file written in this scheme.
uint32_t scheme_file_type(WeightScheme s);

// The type of tensor `name` whose rows hold ne0 values, n_dims dimensions.
gguf::GgmlType scheme_tensor_type(WeightScheme s, std::string_view name, uint64_t ne0, uint32_t n_dims);

// A type whose blocks divide a row of ne0 values: K-quants fall back to Q8_0 (or F16), Q4_0/Q8_0 to F16.
gguf::GgmlType fit_row(gguf::GgmlType type, uint64_t ne0);

}  // namespace onecard::model
