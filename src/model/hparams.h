// DeepSeek-V2/V2.5/V3/R1/V3.1 hyper-parameters read from GGUF metadata (architecture `deepseek2`), with the
// defaults that older files imply and the checks that reject inconsistent files before any weight is touched.
#pragma once

#include <cstdint>
#include <string>

#include "backend/backend.h"
#include "base/result.h"
#include "gguf/file.h"

namespace onecard::model {

using Gating = backend::Gating;

// How the file stores the up-projection of the MLA latent to per-head K (no-RoPE part) and V.
enum class MlaLayout {
  kCombined,  // attn_kv_b [kv_lora, H*(qk_nope+v)], head_count_kv = head_count
  kSplit,     // attn_k_b [qk_nope, kv_lora, H] and attn_v_b [kv_lora, v, H], head_count_kv = 1
};

struct Yarn {
  bool enabled = false;
  float factor = 1.0f;
  uint32_t original_context = 0;
  float log_multiplier = 0.0f;  // 0.1 * mscale_all_dim of the official config
  float beta_fast = 32.0f;
  float beta_slow = 1.0f;
};

struct HParams {
  std::string name;
  uint32_t n_vocab = 0;
  uint32_t n_ctx_train = 0;
  uint32_t n_layer = 0;  // blocks in the file, MTP layers included
  uint32_t n_nextn = 0;  // MTP layers at the end, skipped for plain decoding
  uint32_t n_embd = 0;
  uint32_t n_ff = 0;  // dense blocks
  uint32_t n_head = 0;
  uint32_t n_head_kv = 0;
  uint32_t q_lora_rank = 0;  // 0: queries are projected directly (V2-Lite)
  uint32_t kv_lora_rank = 0;
  uint32_t qk_nope = 0;
  uint32_t qk_rope = 0;
  uint32_t v_head = 0;
  MlaLayout layout = MlaLayout::kCombined;
  float rope_freq_base = 10000.0f;
  float rms_eps = 1e-6f;
  Yarn yarn;

  uint32_t n_dense_lead = 0;
  uint32_t n_expert = 0;
  uint32_t n_expert_used = 0;
  uint32_t n_expert_shared = 0;
  uint32_t n_ff_exp = 0;
  float expert_weights_scale = 1.0f;
  bool expert_weights_norm = false;
  Gating gating = Gating::kSoftmax;
  uint32_t n_group = 1;  // 1: no group limit
  uint32_t n_group_used = 1;

  uint32_t n_layer_decode() const { return n_layer - n_nextn; }
  bool is_moe_layer(uint32_t il) const { return n_expert > 0 && il >= n_dense_lead; }
  uint32_t qk_head_dim() const { return qk_nope + qk_rope; }
  // Values cached per token and layer: the latent c and the shared rotated key.
  uint32_t kv_cache_width() const { return kv_lora_rank + qk_rope; }
  uint64_t kv_cache_bytes_per_token(uint32_t bytes_per_value) const {
    return uint64_t{n_layer_decode()} * kv_cache_width() * bytes_per_value;
  }
  // mscale of YaRN (1 without it); the attention scale is mscale^2 / sqrt(qk_head_dim).
  float yarn_mscale() const;
  float attention_scale() const;
};

// Reads and checks the hyper-parameters; the errors name the file and the key.
Result<HParams> read_hparams(const gguf::File& file);

// Parameters implied by the hyper-parameters (MTP layers excluded): what a complete file of this
// configuration holds, and what one token reads (routed experts counted k of E).
struct ParamCount {
  uint64_t total = 0;
  uint64_t routed_experts = 0;
  uint64_t active_per_token = 0;
};
ParamCount count_params(const HParams& hp);

std::string_view gating_name(Gating g);
std::string_view layout_name(MlaLayout l);

}  // namespace onecard::model
