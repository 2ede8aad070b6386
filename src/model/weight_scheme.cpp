#include "model/weight_scheme.h"

#include <array>
#include <cctype>
#include <string>

#include <fmt/format.h>

namespace onecard::model {
namespace {

using gguf::GgmlType;

struct SchemeInfo {
  WeightScheme scheme;
  std::string_view name;
  GgmlType type;       // of most weight matrices
  uint32_t file_type;  // llama_ftype
};

// llama_ftype values: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7, MOSTLY_Q2_K 10, MOSTLY_Q3_K_M
// 12, MOSTLY_Q4_K_S 14, MOSTLY_Q4_K_M 15, MOSTLY_Q5_K_S 16, MOSTLY_Q6_K 18, MOSTLY_BF16 32. Pure K schemes
// report the "_S" (mostly that type) value.
constexpr std::array kSchemes = {
    SchemeInfo{WeightScheme::kF32, "f32", GgmlType::F32, 0},
    SchemeInfo{WeightScheme::kF16, "f16", GgmlType::F16, 1},
    SchemeInfo{WeightScheme::kBF16, "bf16", GgmlType::BF16, 32},
    SchemeInfo{WeightScheme::kQ8_0, "q8_0", GgmlType::Q8_0, 7},
    SchemeInfo{WeightScheme::kQ4_0, "q4_0", GgmlType::Q4_0, 2},
    SchemeInfo{WeightScheme::kQ2_K, "q2_k", GgmlType::Q2_K, 10},
    SchemeInfo{WeightScheme::kQ3_K, "q3_k", GgmlType::Q3_K, 11},
    SchemeInfo{WeightScheme::kQ4_K, "q4_k", GgmlType::Q4_K, 14},
    SchemeInfo{WeightScheme::kQ5_K, "q5_k", GgmlType::Q5_K, 16},
    SchemeInfo{WeightScheme::kQ6_K, "q6_k", GgmlType::Q6_K, 18},
    SchemeInfo{WeightScheme::kQ4_K_M, "q4_k_m", GgmlType::Q4_K, 15},
};

const SchemeInfo& info(WeightScheme s) {
  for (const auto& i : kSchemes) {
    if (i.scheme == s) return i;
  }
  return kSchemes[0];
}

bool contains(std::string_view s, std::string_view part) {
  return s.find(part) != std::string_view::npos;
}

// Tensors published files keep in F32 whatever the scheme: vectors, and the router whose small logit
// differences pick the experts.
bool stays_f32(std::string_view name, uint32_t n_dims) {
  return n_dims < 2 || contains(name, "ffn_gate_inp");
}

// The tensors llama.cpp's Q4_K_M gives more bits to (it does so for ffn_down and attn_v in some layers only;
// here in all, which keeps the rule simple and the file a little larger).
bool q4_k_m_wants_q6_k(std::string_view name) {
  return name == "output.weight" || contains(name, "attn_kv_b") || contains(name, "attn_v_b") ||
         contains(name, "ffn_down");
}

}  // namespace

std::string_view scheme_name(WeightScheme s) {
  return info(s).name;
}
uint32_t scheme_file_type(WeightScheme s) {
  return info(s).file_type;
}

Result<WeightScheme> parse_scheme(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string valid;
  for (const auto& i : kSchemes) {
    if (i.name == lower) return i.scheme;
    valid += fmt::format("{}{}", valid.empty() ? "" : ", ", i.name);
  }
  return make_error("weight type '{}' is not one of {}", name, valid);
}

GgmlType fit_row(GgmlType type, uint64_t ne0) {
  if (ne0 % gguf::traits(type).block_size == 0) return type;
  if (gguf::traits(type).block_size == 256 && ne0 % 32 == 0) return GgmlType::Q8_0;
  return GgmlType::F16;
}

GgmlType scheme_tensor_type(WeightScheme s, std::string_view name, uint64_t ne0, uint32_t n_dims) {
  if (stays_f32(name, n_dims)) return GgmlType::F32;
  GgmlType type = info(s).type;
  if (s == WeightScheme::kQ4_K_M && q4_k_m_wants_q6_k(name)) type = GgmlType::Q6_K;
  return fit_row(type, ne0);
}

}  // namespace onecard::model
