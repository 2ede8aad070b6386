#include "synth/spec.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "synth/vocab.h"

namespace onecard::synth {
namespace {

// The schemes whose blocks weights.cpp draws directly; other schemes are made with `onecard quantize`.
constexpr std::array kDrawable = {WeightType::kF32,  WeightType::kF16,  WeightType::kBF16,  WeightType::kQ8_0,
                                  WeightType::kQ4_K, WeightType::kQ6_K, WeightType::kQ4_K_M};

constexpr std::array<std::string_view, 5> kPresetNames = {"tiny", "tiny-v2lite", "demo", "v3-slice", "r1"};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

template <class Range, class Name>
std::string join_names(const Range& range, Name name) {
  std::string out;
  for (const auto& x : range) {
    if (!out.empty()) out += ", ";
    out += name(x);
  }
  return out;
}

// The shapes of the golden tiny-v3 files, with fewer experts so that the file stays a few MB: every width
// that a K-quant should cover is a multiple of 256.
ModelSpec tiny() {
  ModelSpec s;
  s.n_vocab = 512;
  s.n_ctx = 256;
  s.n_layer = 3;
  s.n_dense = 1;
  s.n_embd = 256;
  s.n_ff = 512;
  s.n_head = 4;
  s.q_lora = 256;
  s.kv_lora = 256;
  s.qk_nope = 64;
  s.qk_rope = 32;
  s.v_head = 64;
  s.yarn = true;
  s.yarn_factor = 4.0f;
  s.yarn_original_ctx = 64;
  s.yarn_log_multiplier = 0.1f;
  s.n_expert = 8;
  s.n_expert_used = 2;
  s.n_expert_shared = 1;
  s.n_ff_exp = 256;
  s.expert_weights_scale = 2.5f;
  s.expert_weights_norm = true;
  s.gating = model::Gating::kSigmoid;
  s.n_group = 4;
  s.n_group_used = 2;
  s.type = WeightType::kF16;
  return s;
}

// DeepSeek-V2-Lite's structure (no q_lora, softmax routing without groups, two shared experts, no YaRN) at
// the golden tiny-v2lite sizes, whose odd widths (160, 200) exercise the type fallbacks.
ModelSpec tiny_v2lite() {
  ModelSpec s;
  s.n_vocab = 384;
  s.n_ctx = 256;
  s.n_layer = 3;
  s.n_dense = 1;
  s.n_embd = 160;
  s.n_ff = 352;
  s.n_head = 5;
  s.kv_lora = 96;
  s.qk_nope = 48;
  s.qk_rope = 16;
  s.v_head = 40;
  s.n_expert = 12;
  s.n_expert_used = 3;
  s.n_expert_shared = 2;
  s.n_ff_exp = 96;
  s.type = WeightType::kF16;
  return s;
}

// Small enough to write in a second and to decode quickly on two CPU cores, with V3's structure.
ModelSpec demo() {
  ModelSpec s;
  s.n_vocab = 8192;
  s.n_ctx = 4096;
  s.n_layer = 6;
  s.n_dense = 1;
  s.n_embd = 512;
  s.n_ff = 1536;
  s.n_head = 8;
  s.q_lora = 256;
  s.kv_lora = 256;
  s.qk_nope = 64;
  s.qk_rope = 32;
  s.v_head = 64;
  s.yarn = true;
  s.yarn_factor = 4.0f;
  s.yarn_original_ctx = 1024;
  s.yarn_log_multiplier = 0.1f;
  s.n_expert = 32;
  s.n_expert_used = 4;
  s.n_expert_shared = 1;
  s.n_ff_exp = 512;
  s.expert_weights_scale = 2.5f;
  s.expert_weights_norm = true;
  s.gating = model::Gating::kSigmoid;
  s.n_group = 4;
  s.n_group_used = 2;
  s.type = WeightType::kQ4_K_M;
  return s;
}

// DeepSeek-V3's exact layer shapes and hyper-parameters (config.json of deepseek-ai/DeepSeek-V3), few layers.
ModelSpec v3_slice() {
  ModelSpec s;
  s.n_vocab = 129280;
  s.n_ctx = 163840;
  s.n_layer = 2;
  s.n_dense = 1;
  s.n_embd = 7168;
  s.n_ff = 18432;
  s.n_head = 128;
  s.q_lora = 1536;
  s.kv_lora = 512;
  s.qk_nope = 128;
  s.qk_rope = 64;
  s.v_head = 128;
  s.rope_base = 10000.0f;
  s.rms_eps = 1e-6f;
  s.yarn = true;
  s.yarn_factor = 40.0f;
  s.yarn_original_ctx = 4096;
  s.yarn_log_multiplier = 0.1f;
  s.n_expert = 256;
  s.n_expert_used = 8;
  s.n_expert_shared = 1;
  s.n_ff_exp = 2048;
  s.expert_weights_scale = 2.5f;
  s.expert_weights_norm = true;
  s.gating = model::Gating::kSigmoid;
  s.n_group = 8;
  s.n_group_used = 4;
  s.type = WeightType::kQ4_K_M;
  return s;
}

// DeepSeek-R1 (the same shapes as V3) with all 61 blocks, 3 of them dense: 671 B parameters, 377 GiB at
// Q4_K_M, so meant for `onecard gen --header-only` (planning without the file).
ModelSpec r1() {
  ModelSpec s = v3_slice();
  s.n_layer = 61;
  s.n_dense = 3;
  return s;
}

// Keeps routing possible with E experts: the group count divides E, and the groups kept can supply k experts.
void fit_experts(ModelSpec& s, uint32_t experts) {
  s.n_expert = experts;
  s.n_group = std::min(s.n_group, experts);
  while (experts % s.n_group != 0) --s.n_group;
  s.n_expert_used = std::min(s.n_expert_used, experts);
  s.n_group_used = std::min(s.n_group_used, s.n_group);
  const uint32_t per_group = experts / s.n_group;
  while (s.n_group_used * per_group < s.n_expert_used) ++s.n_group_used;
}

}  // namespace

Result<WeightType> parse_weight_type(std::string_view name) {
  auto scheme = model::parse_scheme(name);
  if (scheme.ok() && std::find(kDrawable.begin(), kDrawable.end(), scheme.value()) != kDrawable.end())
    return scheme;
  return make_error("unknown weight type '{}' (valid: {}; other types: onecard quantize)", name,
                    join_names(kDrawable, [](WeightType t) { return std::string(model::scheme_name(t)); }));
}

Result<model::MlaLayout> parse_mla(std::string_view name) {
  const std::string l = lower(name);
  if (l == "combined") return model::MlaLayout::kCombined;
  if (l == "split") return model::MlaLayout::kSplit;
  return make_error("unknown MLA convention '{}' (valid: combined, split)", name);
}

uint32_t head_count_kv(const ModelSpec& s) {
  return s.mla == model::MlaLayout::kSplit ? 1 : s.n_head;
}

std::string_view mla_name(model::MlaLayout l) {
  return l == model::MlaLayout::kSplit ? "split" : "combined";
}

std::span<const std::string_view> preset_names() {
  return kPresetNames;
}

Result<ModelSpec> make_spec(std::string_view preset, const Overrides& o) {
  ModelSpec s;
  if (preset == "tiny") {
    s = tiny();
  } else if (preset == "tiny-v2lite") {
    s = tiny_v2lite();
  } else if (preset == "demo") {
    s = demo();
  } else if (preset == "v3-slice") {
    s = v3_slice();
  } else if (preset == "r1") {
    s = r1();
  } else {
    return make_error("unknown preset '{}' (valid: {})", preset,
                      join_names(kPresetNames, [](std::string_view n) { return std::string(n); }));
  }
  s.preset = std::string(preset);
  s.name = fmt::format("onecard-synth-{}", preset);

  if (o.layers) {
    if (*o.layers == 0) return make_error("--layers must be at least 1");
    s.n_layer = *o.layers;
    s.n_dense = std::min(s.n_dense, s.n_layer);
  }
  if (o.dense_layers) {
    if (*o.dense_layers > s.n_layer) {
      return make_error("--dense-layers {} exceeds the {} layers (0..{})", *o.dense_layers, s.n_layer,
                        s.n_layer);
    }
    s.n_dense = *o.dense_layers;
  }
  if (o.experts) {
    if (*o.experts == 0) return make_error("--experts must be at least 1");
    fit_experts(s, *o.experts);
  }
  if (o.vocab) {
    if (*o.vocab < kMinVocab || *o.vocab > kMaxVocab) {
      return make_error(
          "--vocab {} is out of range ({}..{}: the 256 byte tokens and {} special tokens come first)",
          *o.vocab, kMinVocab, kMaxVocab, kMinVocab - 256);
    }
    s.n_vocab = *o.vocab;
  }
  if (o.type) s.type = *o.type;
  if (o.mla) s.mla = *o.mla;
  if (o.seed) s.seed = *o.seed;
  return s;
}

}  // namespace onecard::synth
