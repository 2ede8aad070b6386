#include "model/weight_scheme.h"

#include <array>
#include <cctype>
#include <charconv>
#include <regex>

#include <fmt/format.h>

#include "quant/quantize.h"

namespace onecard::model {

struct OverridePattern {
  std::regex re;
};
namespace {

using gguf::GgmlType;

struct SchemeInfo {
  WeightScheme scheme;
  std::string_view name;
  GgmlType type;       // of most weight matrices
  uint32_t file_type;  // llama_ftype
  bool mix;            // applies the per-tensor upgrades (output, attention V, ffn_down, ...)
  std::string_view description;
};

// llama_ftype values: ALL_F32 0, MOSTLY_F16 1, Q4_0 2, Q8_0 7, Q2_K 10, Q3_K_S 11, Q3_K_M 12, Q3_K_L 13,
// Q4_K_S 14, Q4_K_M 15, Q5_K_S 16, Q5_K_M 17, Q6_K 18, IQ4_XS 30, BF16 32. The pure K schemes report the
// "_S" value (mostly that type).
constexpr std::array kSchemes = {
    SchemeInfo{WeightScheme::kF32, "f32", GgmlType::F32, 0, false, "every matrix F32"},
    SchemeInfo{WeightScheme::kF16, "f16", GgmlType::F16, 1, false, "every matrix F16"},
    SchemeInfo{WeightScheme::kBF16, "bf16", GgmlType::BF16, 32, false, "every matrix BF16"},
    SchemeInfo{WeightScheme::kQ8_0, "q8_0", GgmlType::Q8_0, 7, true, "every matrix Q8_0 (8.5 bits)"},
    SchemeInfo{WeightScheme::kQ6_K, "q6_k", GgmlType::Q6_K, 18, true, "every matrix Q6_K (6.56 bits)"},
    SchemeInfo{WeightScheme::kQ5_K_M, "q5_k_m", GgmlType::Q5_K, 17, true,
               "Q5_K; Q6_K for output and, in the use-more-bits layers, attn_kv_b/attn_v_b and ffn_down"},
    SchemeInfo{WeightScheme::kQ5_K_S, "q5_k_s", GgmlType::Q5_K, 16, true, "Q5_K; Q6_K for output"},
    SchemeInfo{WeightScheme::kQ4_K_M, "q4_k_m", GgmlType::Q4_K, 15, true,
               "Q4_K; Q6_K for output and, in the use-more-bits layers, attn_kv_b/attn_v_b and ffn_down"},
    SchemeInfo{
        WeightScheme::kQ4_K_S, "q4_k_s", GgmlType::Q4_K, 14, true,
        "Q4_K; Q6_K for output, Q5_K for attn_kv_b/attn_v_b of layers 0-3 and the first 1/8 of ffn_down"},
    SchemeInfo{WeightScheme::kIQ4_XS, "iq4_xs", GgmlType::IQ4_XS, 30, true,
               "IQ4_XS (4.25 bits); Q6_K for output, Q5_K for attn_kv_b/attn_v_b in split-MLA files and for "
               "the first 1/8 of ffn_down without an imatrix"},
    SchemeInfo{WeightScheme::kQ3_K_L, "q3_k_l", GgmlType::Q3_K, 13, true,
               "Q3_K; Q6_K for output, Q5_K for attn_kv_b/attn_v_b, attn_output and ffn_down"},
    SchemeInfo{WeightScheme::kQ3_K_M, "q3_k_m", GgmlType::Q3_K, 12, true,
               "Q3_K; Q6_K for output, Q4_K for attn_output, attn_kv_b/attn_v_b and ffn_down (Q5_K in layers "
               "0-1, resp. the first 1/16)"},
    SchemeInfo{WeightScheme::kQ3_K_S, "q3_k_s", GgmlType::Q3_K, 11, true, "Q3_K; Q6_K for output"},
    SchemeInfo{WeightScheme::kQ2_K, "q2_k", GgmlType::Q2_K, 10, true,
               "Q2_K; Q6_K for output, Q3_K for attn_output and ffn_down, Q3_K for attn_kv_b/attn_v_b (Q4_K "
               "in split-MLA files); wants an imatrix"},
    SchemeInfo{WeightScheme::kQ4_0, "q4_0", GgmlType::Q4_0, 2, true, "Q4_0; Q6_K for output"},
    SchemeInfo{WeightScheme::kQ5_K, "q5_k", GgmlType::Q5_K, 16, false, "every matrix Q5_K, no upgrades"},
    SchemeInfo{WeightScheme::kQ4_K, "q4_k", GgmlType::Q4_K, 14, false, "every matrix Q4_K, no upgrades"},
    SchemeInfo{WeightScheme::kQ3_K, "q3_k", GgmlType::Q3_K, 11, false, "every matrix Q3_K, no upgrades"},
};

constexpr auto kSchemeList = [] {
  std::array<WeightScheme, kSchemes.size()> list{};
  for (size_t i = 0; i < kSchemes.size(); ++i) list[i] = kSchemes[i].scheme;
  return list;
}();

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

// The tensor groups llama.cpp's mixes treat apart. attn_v_b, the V half of attn_kv_b in split-MLA files,
// is grouped with it (llama.cpp leaves it at the base type, so that split files lose the V upgrade); ffn_down
// covers the dense, routed (_exps) and shared (_shexp) down projections alike.
enum class Role { kOutput, kAttnV, kAttnOutput, kFfnDown, kOther };

Role role_of(std::string_view name) {
  if (name == "output.weight") return Role::kOutput;
  if (contains(name, "attn_kv_b.") || contains(name, "attn_v_b.")) return Role::kAttnV;
  if (contains(name, "attn_output.")) return Role::kAttnOutput;
  if (contains(name, "ffn_down")) return Role::kFfnDown;
  return Role::kOther;
}

// The block index in "blk.N....", or -1.
int layer_of(std::string_view name) {
  constexpr std::string_view kPrefix = "blk.";
  if (!name.starts_with(kPrefix)) return -1;
  int layer = -1;
  const char* begin = name.data() + kPrefix.size();
  const auto [end, ec] = std::from_chars(begin, name.data() + name.size(), layer);
  if (ec != std::errc() || end == name.data() + name.size() || *end != '.') return -1;
  return layer;
}

// Where a tensor sits; an unknown layer or layer count takes every layer-dependent upgrade.
struct LayerPos {
  int i;
  int n;
  bool unknown() const { return i < 0 || n <= 0; }
};

// llama.cpp's "use more bits" layers: the first and last eighth, and every third layer between.
bool use_more_bits(LayerPos p) {
  if (p.unknown()) return true;
  return p.i < p.n / 8 || p.i >= 7 * p.n / 8 || (p.i - p.n / 8) % 3 == 2;
}
// In the first n / div layers.
bool in_first(LayerPos p, int div) {
  return p.unknown() || p.i < p.n / div;
}
// Among layers 0 .. k-1 (by index alone, as llama.cpp counts these tensors).
bool before(LayerPos p, int k) {
  return p.i < 0 || p.i < k;
}

GgmlType upgraded(WeightScheme s, Role r, LayerPos p, const MixContext& c, GgmlType base) {
  switch (s) {
    case WeightScheme::kQ2_K:
      if (r == Role::kAttnV) return c.n_gqa >= 4 ? GgmlType::Q4_K : GgmlType::Q3_K;
      if (r == Role::kFfnDown || r == Role::kAttnOutput) return GgmlType::Q3_K;
      break;
    case WeightScheme::kQ3_K_M:
      if (r == Role::kAttnV) return before(p, 2) ? GgmlType::Q5_K : GgmlType::Q4_K;
      if (r == Role::kFfnDown) return in_first(p, 16) ? GgmlType::Q5_K : GgmlType::Q4_K;
      if (r == Role::kAttnOutput) return GgmlType::Q4_K;
      break;
    case WeightScheme::kQ3_K_L:
      if (r == Role::kAttnV || r == Role::kFfnDown || r == Role::kAttnOutput) return GgmlType::Q5_K;
      break;
    case WeightScheme::kQ4_K_S:
      if (r == Role::kAttnV && before(p, 4)) return GgmlType::Q5_K;
      if (r == Role::kFfnDown && in_first(p, 8)) return GgmlType::Q5_K;
      break;
    case WeightScheme::kQ4_K_M:
    case WeightScheme::kQ5_K_M:
      if ((r == Role::kAttnV || r == Role::kFfnDown) && use_more_bits(p)) return GgmlType::Q6_K;
      break;
    case WeightScheme::kIQ4_XS:
      if (r == Role::kAttnV && c.n_gqa >= 4) return GgmlType::Q5_K;
      if (r == Role::kFfnDown && in_first(p, 8) && !c.imatrix) return GgmlType::Q5_K;
      break;
    default:
      break;
  }
  return base;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The storage types an override may ask for: those with a quantizer, less the activation formats.
bool is_storage_type(GgmlType t) {
  return quant::can_quantize(t) && t != GgmlType::Q8_1 && t != GgmlType::Q8_K;
}

std::string storage_type_names() {
  std::string names;
  for (uint32_t id = 0; id < 64; ++id) {
    const gguf::TypeTraits* t = gguf::type_traits(id);
    if (t == nullptr || !is_storage_type(t->type)) continue;
    names += fmt::format("{}{}", names.empty() ? "" : ", ", lower(t->name));
  }
  return names;
}

}  // namespace

std::span<const WeightScheme> all_schemes() {
  return kSchemeList;
}
std::string_view scheme_name(WeightScheme s) {
  return info(s).name;
}
std::string_view scheme_description(WeightScheme s) {
  return info(s).description;
}
uint32_t scheme_file_type(WeightScheme s) {
  return info(s).file_type;
}

Result<WeightScheme> parse_scheme(std::string_view name) {
  const std::string l = lower(name);
  std::string valid;
  for (const auto& i : kSchemes) {
    if (i.name == l) return i.scheme;
    valid += fmt::format("{}{}", valid.empty() ? "" : ", ", i.name);
  }
  return make_error("weight type '{}' is not one of {}", name, valid);
}

GgmlType fit_row(GgmlType type, uint64_t ne0) {
  if (ne0 % gguf::traits(type).block_size == 0) return type;
  GgmlType fallback = GgmlType::F16;
  if (gguf::traits(type).block_size == 256) {
    switch (type) {
      case GgmlType::IQ4_XS:
        fallback = GgmlType::IQ4_NL;
        break;
      case GgmlType::Q2_K:
      case GgmlType::Q3_K:
        fallback = GgmlType::Q4_0;
        break;
      default:
        fallback = GgmlType::Q8_0;
        break;
    }
  }
  return ne0 % gguf::traits(fallback).block_size == 0 ? fallback : GgmlType::F16;
}

MixContext mix_context(uint32_t block_count, uint32_t head_count, uint32_t head_count_kv, bool imatrix) {
  MixContext c;
  c.n_layer = block_count;
  if (head_count > 0 && head_count_kv > 0) c.n_gqa = head_count / head_count_kv;
  c.imatrix = imatrix;
  return c;
}

MixContext mix_context(const gguf::File& f, bool imatrix) {
  const auto arch = f.get<std::string>("general.architecture");
  if (!arch.ok()) return mix_context(0, 0, 0, imatrix);
  auto u32 = [&](const std::string& key) {
    const auto v = f.get_or<uint32_t>(arch.value() + "." + key, 0);
    return v.ok() ? v.value() : 0u;
  };
  return mix_context(u32("block_count"), u32("attention.head_count"), u32("attention.head_count_kv"),
                     imatrix);
}

GgmlType mix_tensor_type(WeightScheme s, std::string_view name, uint32_t n_dims, const MixContext& c) {
  if (stays_f32(name, n_dims)) return GgmlType::F32;
  const SchemeInfo& i = info(s);
  if (!i.mix) return i.type;
  const Role r = role_of(name);
  if (r == Role::kOutput) return i.type == GgmlType::Q8_0 ? GgmlType::Q8_0 : GgmlType::Q6_K;
  const LayerPos p{layer_of(name), static_cast<int>(c.n_layer)};
  return upgraded(s, r, p, c, i.type);
}

GgmlType scheme_tensor_type(WeightScheme s, std::string_view name, uint64_t ne0, uint32_t n_dims,
                            const MixContext& c) {
  return fit_row(mix_tensor_type(s, name, n_dims, c), ne0);
}

Result<TypeOverride> parse_override(std::string_view rule) {
  const size_t eq = rule.rfind('=');
  if (eq == std::string_view::npos)
    return make_error("--override '{}': expected REGEX=TYPE, e.g. 'blk\\.[0-2]\\..*=q8_0'", rule);
  const std::string_view regex = rule.substr(0, eq), type_name = rule.substr(eq + 1);
  if (regex.empty()) return make_error("--override '{}': the regex before '=' is empty", rule);
  TypeOverride o;
  o.rule = std::string(rule);
  auto pattern = compile_name_pattern(regex);
  if (!pattern.ok())
    return make_error("--override '{}': bad regex '{}': {}", rule, regex, pattern.error().message());
  o.pattern = std::move(pattern).value();
  const auto type = gguf::type_from_name(type_name);
  if (!type)
    return make_error("--override '{}': unknown type '{}' (valid: {})", rule, type_name,
                      storage_type_names());
  if (!is_storage_type(*type))
    return make_error("--override '{}': no quantizer for {} (valid: {})", rule, gguf::type_name(*type),
                      storage_type_names());
  o.type = *type;
  return o;
}

Result<std::shared_ptr<const OverridePattern>> compile_name_pattern(std::string_view regex) {
  try {
    return std::make_shared<const OverridePattern>(
        OverridePattern{std::regex(std::string(regex), std::regex::ECMAScript)});
  } catch (const std::regex_error& e) {
    return make_error("{}", e.what());
  }
}

bool matches_all(const OverridePattern& pattern, std::string_view name) {
  return std::regex_match(name.begin(), name.end(), pattern.re);
}

std::optional<size_t> find_override(std::span<const TypeOverride> overrides, std::string_view name) {
  for (size_t i = 0; i < overrides.size(); ++i) {
    if (matches_all(*overrides[i].pattern, name)) return i;
  }
  return std::nullopt;
}

}  // namespace onecard::model
