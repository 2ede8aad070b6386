// A whole-file weight type ("q4_k_m", "q8_0", ...) and the ggml type it gives each tensor: what `onecard
// quantize` writes and `onecard gen` draws. The mixes follow llama.cpp's llama-quantize for deepseek2 files
// (which tensors get more bits in which mix), so that a file named Q4_K_M here holds what users expect of a
// Q4_K_M. Norms, biases and the router stay F32, as in published files.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "gguf/file.h"
#include "gguf/types.h"

namespace onecard::model {

// kQ3_K, kQ4_K, kQ5_K are "pure": every weight matrix in that type, no upgrades (llama.cpp's Q4_K means
// Q4_K_M; here q4_k is kept for files that must hold one type only).
enum class WeightScheme {
  kF32,
  kF16,
  kBF16,
  kQ8_0,
  kQ4_0,
  kQ2_K,
  kQ3_K,
  kQ4_K,
  kQ5_K,
  kQ6_K,
  kQ4_K_M,
  kQ3_K_S,
  kQ3_K_M,
  kQ3_K_L,
  kQ4_K_S,
  kQ5_K_S,
  kQ5_K_M,
  kIQ4_XS,
};

std::span<const WeightScheme> all_schemes();
std::string_view scheme_name(WeightScheme s);         // "q4_k_m"
std::string_view scheme_description(WeightScheme s);  // one line: what the mix gives which tensors
// Case-insensitive; the error lists the valid names.
Result<WeightScheme> parse_scheme(std::string_view name);
// The llama.cpp `general.file_type` (llama_ftype) of a file written in this scheme.
uint32_t scheme_file_type(WeightScheme s);

// What the per-tensor rules of a mix need to know about the model besides the tensor's name.
struct MixContext {
  // Blocks of the model (block_count). 0: unknown; then every layer-dependent upgrade is taken, the larger
  // and safer file.
  uint32_t n_layer = 0;
  uint32_t n_gqa = 1;    // attention heads per KV head (head_count / head_count_kv): 128 in split-MLA files
  bool imatrix = false;  // an importance matrix is used (IQ4_XS then upgrades fewer ffn_down)
};

// The context from a file's block_count, head_count and head_count_kv (0: absent). `onecard quantize` reads
// them from its input, convert and gen from the values they write, so that the three give each tensor the
// same type.
MixContext mix_context(uint32_t block_count, uint32_t head_count, uint32_t head_count_kv, bool imatrix);
// The same from the keys of file f (of its general.architecture), as `onecard quantize` reads them.
MixContext mix_context(const gguf::File& f, bool imatrix);

// The type the mix wants for tensor `name` of n_dims dimensions, before its rows are fitted.
gguf::GgmlType mix_tensor_type(WeightScheme s, std::string_view name, uint32_t n_dims,
                               const MixContext& c = {});

// The type of tensor `name` whose rows hold ne0 values: mix_tensor_type fitted by fit_row.
gguf::GgmlType scheme_tensor_type(WeightScheme s, std::string_view name, uint64_t ne0, uint32_t n_dims,
                                  const MixContext& c = {});

// A type whose blocks divide a row of ne0 values, as llama.cpp falls back: IQ4_XS to IQ4_NL, Q2_K and Q3_K
// to Q4_0, the other 256-element formats to Q8_0 (onecard has no Q5_0/Q5_1 quantizer), and what still does
// not fit (rows not a multiple of 32) to F16.
gguf::GgmlType fit_row(gguf::GgmlType type, uint64_t ne0);

// The compiled REGEX of an override (and of a `--place` rule, runtime/placement_plan.h). Only
// weight_scheme.cpp includes <regex>: GCC 12 reports false maybe-uninitialized warnings inside it in the
// sanitizer build, which that one file turns off.
struct OverridePattern;
// ECMAScript syntax; the error is the regex library's reason, for the caller to put after the rule.
Result<std::shared_ptr<const OverridePattern>> compile_name_pattern(std::string_view regex);
// Whether the pattern matches all of `name`.
bool matches_all(const OverridePattern& pattern, std::string_view name);

// `--override REGEX=TYPE`: tensors whose whole name matches REGEX (ECMAScript) get TYPE.
struct TypeOverride {
  std::string rule;  // as given, for messages
  std::shared_ptr<const OverridePattern> pattern;
  gguf::GgmlType type = gguf::GgmlType::F32;
};
// Fails naming the rule: no '=', an empty or malformed regex, an unknown type or one without a quantizer.
Result<TypeOverride> parse_override(std::string_view rule);
// Index of the first override matching all of `name`; overrides listed earlier win.
std::optional<size_t> find_override(std::span<const TypeOverride> overrides, std::string_view name);

}  // namespace onecard::model
