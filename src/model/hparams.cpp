#include "model/hparams.h"

#include <cmath>

namespace onecard::model {
namespace {

constexpr std::string_view kArch = "deepseek2";

std::string key(std::string_view suffix) {
  return fmt::format("{}.{}", kArch, suffix);
}

class Reader {
 public:
  explicit Reader(const gguf::File& f) : f_(f) {}
  template <class T>
  Result<T> req(std::string_view suffix) const {
    return f_.get<T>(key(suffix));
  }
  template <class T>
  Result<T> opt(std::string_view suffix, T fallback) const {
    return f_.get_or<T>(key(suffix), fallback);
  }
  bool has(std::string_view suffix) const { return f_.has(key(suffix)); }

 private:
  const gguf::File& f_;
};

Status check(bool ok, const gguf::File& f, std::string_view what) {
  if (ok) return {};
  return make_error("{}: inconsistent hyper-parameters: {}", f.path(), what);
}

}  // namespace

std::string_view gating_name(Gating g) {
  return g == Gating::kSigmoid ? "sigmoid" : "softmax";
}
std::string_view layout_name(MlaLayout l) {
  return l == MlaLayout::kSplit ? "split attn_k_b/attn_v_b" : "combined attn_kv_b";
}

float HParams::yarn_mscale() const {
  if (!yarn.enabled || yarn.factor <= 1.0f) return 1.0f;
  return 1.0f + yarn.log_multiplier * std::log(yarn.factor);
}

float HParams::attention_scale() const {
  const float m = yarn_mscale();
  return m * m / std::sqrt(static_cast<float>(qk_head_dim()));
}

Result<HParams> read_hparams(const gguf::File& f) {
  ONECARD_ASSIGN_OR_RETURN(std::string_view arch, f.get<std::string_view>("general.architecture"));
  if (arch != kArch) {
    return make_error(
        "{}: architecture '{}' is not supported (onecard runs '{}': DeepSeek-V2/V2.5/V3/R1/V3.1)", f.path(),
        arch, kArch);
  }
  const Reader r(f);
  HParams hp;
  ONECARD_ASSIGN_OR_RETURN(hp.name, f.get_or<std::string>("general.name", ""));
  ONECARD_ASSIGN_OR_RETURN(hp.n_layer, r.req<uint32_t>("block_count"));
  ONECARD_ASSIGN_OR_RETURN(hp.n_nextn, r.opt<uint32_t>("nextn_predict_layers", 0));
  ONECARD_ASSIGN_OR_RETURN(hp.n_ctx_train, r.opt<uint32_t>("context_length", 0));
  ONECARD_ASSIGN_OR_RETURN(hp.n_embd, r.req<uint32_t>("embedding_length"));
  ONECARD_ASSIGN_OR_RETURN(hp.n_ff, r.req<uint32_t>("feed_forward_length"));
  ONECARD_ASSIGN_OR_RETURN(hp.n_head, r.req<uint32_t>("attention.head_count"));
  ONECARD_ASSIGN_OR_RETURN(hp.n_head_kv, r.opt<uint32_t>("attention.head_count_kv", hp.n_head));
  ONECARD_ASSIGN_OR_RETURN(hp.q_lora_rank, r.opt<uint32_t>("attention.q_lora_rank", 0));
  ONECARD_ASSIGN_OR_RETURN(hp.kv_lora_rank, r.req<uint32_t>("attention.kv_lora_rank"));
  ONECARD_ASSIGN_OR_RETURN(hp.qk_rope, r.req<uint32_t>("rope.dimension_count"));
  ONECARD_ASSIGN_OR_RETURN(const uint32_t key_length, r.req<uint32_t>("attention.key_length"));
  ONECARD_ASSIGN_OR_RETURN(const uint32_t value_length, r.req<uint32_t>("attention.value_length"));
  ONECARD_ASSIGN_OR_RETURN(hp.rope_freq_base, r.opt<float>("rope.freq_base", 10000.0f));
  ONECARD_ASSIGN_OR_RETURN(hp.rms_eps, r.req<float>("attention.layer_norm_rms_epsilon"));

  // The two MLA conventions: per-head sizes come from *_mla keys when the file stores the absorbed form.
  const bool has_mla_keys = r.has("attention.key_length_mla") || r.has("attention.value_length_mla");
  uint32_t head_k = key_length;
  hp.v_head = value_length;
  if (has_mla_keys) {
    ONECARD_ASSIGN_OR_RETURN(head_k, r.req<uint32_t>("attention.key_length_mla"));
    ONECARD_ASSIGN_OR_RETURN(hp.v_head, r.req<uint32_t>("attention.value_length_mla"));
  } else if (hp.n_head_kv == 1 && hp.n_head > 1) {
    return make_error("{}: attention.head_count_kv is 1 (MLA stored absorbed) but {} is missing", f.path(),
                      key("attention.key_length_mla"));
  }
  ONECARD_TRY(
      check(head_k > hp.qk_rope, f,
            fmt::format("per-head key length {} must exceed rope.dimension_count {}", head_k, hp.qk_rope)));
  hp.qk_nope = head_k - hp.qk_rope;
  const bool split = f.tensor("blk.0.attn_k_b.weight") != nullptr;
  const bool combined = f.tensor("blk.0.attn_kv_b.weight") != nullptr;
  hp.layout = split || (!combined && has_mla_keys) ? MlaLayout::kSplit : MlaLayout::kCombined;
  if (hp.layout == MlaLayout::kSplit && hp.n_head_kv == 1) {
    ONECARD_TRY(
        check(key_length == hp.kv_lora_rank + hp.qk_rope, f,
              fmt::format("attention.key_length {} must be kv_lora_rank + rope dims = {} in the absorbed "
                          "layout",
                          key_length, hp.kv_lora_rank + hp.qk_rope)));
    ONECARD_TRY(check(value_length == hp.kv_lora_rank, f,
                      fmt::format("attention.value_length {} must be kv_lora_rank {} in the absorbed layout",
                                  value_length, hp.kv_lora_rank)));
  }

  ONECARD_ASSIGN_OR_RETURN(hp.n_dense_lead, r.opt<uint32_t>("leading_dense_block_count", 0));
  ONECARD_ASSIGN_OR_RETURN(hp.n_expert, r.opt<uint32_t>("expert_count", 0));
  if (hp.n_expert > 0) {
    ONECARD_ASSIGN_OR_RETURN(hp.n_expert_used, r.req<uint32_t>("expert_used_count"));
    ONECARD_ASSIGN_OR_RETURN(hp.n_ff_exp, r.req<uint32_t>("expert_feed_forward_length"));
    ONECARD_ASSIGN_OR_RETURN(hp.n_expert_shared, r.opt<uint32_t>("expert_shared_count", 0));
    ONECARD_ASSIGN_OR_RETURN(hp.expert_weights_scale, r.opt<float>("expert_weights_scale", 1.0f));
    ONECARD_ASSIGN_OR_RETURN(hp.expert_weights_norm, r.opt<bool>("expert_weights_norm", false));
    ONECARD_ASSIGN_OR_RETURN(const uint32_t gating, r.opt<uint32_t>("expert_gating_func", 1));
    if (gating != 1 && gating != 2) {
      return make_error("{}: metadata key '{}': gating function {} is unknown (1 softmax, 2 sigmoid)",
                        f.path(), key("expert_gating_func"), gating);
    }
    hp.gating = static_cast<Gating>(gating);
    ONECARD_ASSIGN_OR_RETURN(hp.n_group, r.opt<uint32_t>("expert_group_count", 1));
    ONECARD_ASSIGN_OR_RETURN(hp.n_group_used, r.opt<uint32_t>("expert_group_used_count", hp.n_group));
  }

  ONECARD_ASSIGN_OR_RETURN(const std::string scaling, r.opt<std::string>("rope.scaling.type", "none"));
  if (scaling == "yarn") {
    hp.yarn.enabled = true;
    ONECARD_ASSIGN_OR_RETURN(hp.yarn.factor, r.req<float>("rope.scaling.factor"));
    ONECARD_ASSIGN_OR_RETURN(hp.yarn.original_context,
                             r.req<uint32_t>("rope.scaling.original_context_length"));
    ONECARD_ASSIGN_OR_RETURN(hp.yarn.log_multiplier, r.opt<float>("rope.scaling.yarn_log_multiplier", 0.0f));
  } else if (scaling != "none") {
    return make_error(
        "{}: metadata key '{}': rope scaling '{}' is not supported for deepseek2 (yarn or none)", f.path(),
        key("rope.scaling.type"), scaling);
  }

  // The vocabulary size: the explicit key, else the tokenizer's token list, else the embedding's rows.
  if (r.has("vocab_size")) {
    ONECARD_ASSIGN_OR_RETURN(hp.n_vocab, r.req<uint32_t>("vocab_size"));
  } else if (const gguf::Value* toks = f.find("tokenizer.ggml.tokens"); toks && toks->is_array()) {
    hp.n_vocab = static_cast<uint32_t>(toks->array_size());
  } else if (const gguf::TensorInfo* emb = f.tensor("token_embd.weight"); emb && emb->n_dims == 2) {
    hp.n_vocab = static_cast<uint32_t>(emb->ne[1]);
  }

  ONECARD_TRY(check(hp.n_layer > 0 && hp.n_embd > 0 && hp.n_head > 0, f,
                    "block_count, embedding_length and attention.head_count must be positive"));
  ONECARD_TRY(
      check(hp.n_nextn < hp.n_layer, f,
            fmt::format("nextn_predict_layers {} must be below block_count {}", hp.n_nextn, hp.n_layer)));
  ONECARD_TRY(
      check(hp.n_head_kv == hp.n_head || hp.n_head_kv == 1, f,
            fmt::format("attention.head_count_kv {} must be 1 or head_count {}", hp.n_head_kv, hp.n_head)));
  ONECARD_TRY(check(hp.qk_rope % 2 == 0, f, fmt::format("rope.dimension_count {} must be even", hp.qk_rope)));
  ONECARD_TRY(
      check(hp.kv_lora_rank > 0 && hp.v_head > 0, f, "kv_lora_rank and the value length must be positive"));
  ONECARD_TRY(
      check(hp.n_dense_lead <= hp.n_layer, f,
            fmt::format("leading_dense_block_count {} exceeds block_count {}", hp.n_dense_lead, hp.n_layer)));
  if (hp.n_expert > 0) {
    ONECARD_TRY(check(
        hp.n_expert_used > 0 && hp.n_expert_used <= hp.n_expert, f,
        fmt::format("expert_used_count {} must be in 1..expert_count {}", hp.n_expert_used, hp.n_expert)));
    ONECARD_TRY(
        check(hp.n_group > 0 && hp.n_expert % hp.n_group == 0, f,
              fmt::format("expert_group_count {} must divide expert_count {}", hp.n_group, hp.n_expert)));
    ONECARD_TRY(check(hp.n_group_used > 0 && hp.n_group_used <= hp.n_group, f,
                      fmt::format("expert_group_used_count {} must be in 1..expert_group_count {}",
                                  hp.n_group_used, hp.n_group)));
    ONECARD_TRY(check(hp.n_group_used * (hp.n_expert / hp.n_group) >= hp.n_expert_used, f,
                      fmt::format("{} groups of {} experts cannot supply {} experts per token",
                                  hp.n_group_used, hp.n_expert / hp.n_group, hp.n_expert_used)));
    ONECARD_TRY(check(hp.n_ff_exp > 0, f, "expert_feed_forward_length must be positive"));
  }
  if (hp.yarn.enabled) {
    ONECARD_TRY(check(hp.yarn.factor >= 1.0f && hp.yarn.original_context > 0, f,
                      "rope.scaling.factor must be at least 1 and original_context_length positive"));
  }
  ONECARD_TRY(
      check(hp.n_vocab > 0, f, "the vocabulary size is unknown (no vocab_size, tokens or token_embd)"));
  return hp;
}

ParamCount count_params(const HParams& hp) {
  const uint64_t d = hp.n_embd, H = hp.n_head;
  uint64_t attn = 2 * d;  // attn_norm, ffn_norm
  if (hp.q_lora_rank > 0) {
    attn += d * hp.q_lora_rank + hp.q_lora_rank + uint64_t{hp.q_lora_rank} * H * hp.qk_head_dim();
  } else {
    attn += d * H * hp.qk_head_dim();
  }
  attn += d * hp.kv_cache_width() + hp.kv_lora_rank;
  attn += uint64_t{hp.kv_lora_rank} * H * (hp.qk_nope + hp.v_head);
  attn += H * hp.v_head * d;

  ParamCount c;
  const uint64_t layers = hp.n_layer_decode();
  for (uint64_t il = 0; il < layers; ++il) {
    c.total += attn;
    if (hp.is_moe_layer(static_cast<uint32_t>(il))) {
      const uint64_t routed = 3 * d * hp.n_ff_exp * hp.n_expert;
      c.routed_experts += routed;
      c.total += routed + d * hp.n_expert + 3 * d * hp.n_ff_exp * hp.n_expert_shared;
      if (hp.gating == Gating::kSigmoid) c.total += hp.n_expert;  // selection bias
    } else {
      c.total += 3 * d * hp.n_ff;
    }
  }
  c.total += 2 * uint64_t{hp.n_vocab} * d + d;  // token_embd, output, output_norm
  c.active_per_token =
      c.total - c.routed_experts + (hp.n_expert ? c.routed_experts / hp.n_expert * hp.n_expert_used : 0);
  return c;
}

}  // namespace onecard::model
