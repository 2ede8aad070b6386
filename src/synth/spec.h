// The shape of a synthetic DeepSeek model: named presets (tiny, tiny-v2lite, demo, v3-slice) and the
// overrides `onecard gen` accepts on top of any of them. A spec holds only what the file's metadata and
// tensor shapes need.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "model/hparams.h"
#include "model/weight_scheme.h"

namespace onecard::synth {

// The weight type requested for the whole file (the scheme `onecard quantize` uses too); per tensor it
// becomes a ggml type by model::scheme_tensor_type.
using WeightType = model::WeightScheme;

// Case-insensitive; only the schemes whose blocks gen can draw directly (f32, f16, bf16, q8_0, q4_k, q6_k,
// q4_k_m); the error lists them.
Result<WeightType> parse_weight_type(std::string_view name);

// "combined" or "split"; the error lists the valid names.
Result<model::MlaLayout> parse_mla(std::string_view name);
std::string_view mla_name(model::MlaLayout l);

struct ModelSpec {
  std::string preset;
  std::string name;  // general.name
  uint32_t n_vocab = 0;
  uint32_t n_ctx = 0;
  uint32_t n_layer = 0;
  uint32_t n_dense = 0;  // leading dense blocks
  uint32_t n_embd = 0;
  uint32_t n_ff = 0;  // dense FFN width
  uint32_t n_head = 0;
  uint32_t q_lora = 0;  // 0: queries projected directly by attn_q (V2-Lite)
  uint32_t kv_lora = 0;
  uint32_t qk_nope = 0;
  uint32_t qk_rope = 0;
  uint32_t v_head = 0;
  float rope_base = 10000.0f;
  float rms_eps = 1e-6f;
  bool yarn = false;
  float yarn_factor = 1.0f;
  uint32_t yarn_original_ctx = 0;
  float yarn_log_multiplier = 0.0f;
  uint32_t n_expert = 0;
  uint32_t n_expert_used = 0;
  uint32_t n_expert_shared = 0;
  uint32_t n_ff_exp = 0;
  float expert_weights_scale = 1.0f;
  bool expert_weights_norm = false;
  model::Gating gating = model::Gating::kSoftmax;
  uint32_t n_group = 1;  // 1: no group limit, and no group keys in the file
  uint32_t n_group_used = 1;
  model::MlaLayout mla = model::MlaLayout::kCombined;
  WeightType type = WeightType::kF16;
  uint64_t seed = 42;
};

// attention.head_count_kv as written: the split convention has one KV head.
uint32_t head_count_kv(const ModelSpec& s);

struct Overrides {
  std::optional<uint32_t> layers;
  std::optional<uint32_t> dense_layers;
  std::optional<uint32_t> experts;
  std::optional<uint32_t> vocab;
  std::optional<WeightType> type;
  std::optional<model::MlaLayout> mla;
  std::optional<uint64_t> seed;
};

std::span<const std::string_view> preset_names();
// A preset with overrides applied. Changing the expert count keeps the group count dividing it and clamps the
// used counts so that routing stays possible; errors name the option and the valid range.
Result<ModelSpec> make_spec(std::string_view preset, const Overrides& overrides = {});

}  // namespace onecard::synth
