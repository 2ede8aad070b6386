#include "convert/metadata.h"

namespace onecard::convert {

uint32_t file_block_count(const HfConfig& c, const MappingOptions& o) {
  return c.num_hidden_layers + (o.keep_mtp ? c.num_nextn_predict_layers : 0);
}

uint32_t file_head_count_kv(const HfConfig& c, const MappingOptions& o) {
  return o.mla == model::MlaLayout::kSplit ? 1 : c.num_attention_heads;
}

void put_model_metadata(gguf::Writer& w, const HfConfig& c, const MappingOptions& o,
                        model::WeightScheme scheme, const std::string& name) {
  using gguf::MetaValue;
  const auto arch = [&w](const std::string& suffix, MetaValue v) {
    w.set("deepseek2." + suffix, std::move(v));
  };
  const bool split = o.mla == model::MlaLayout::kSplit;
  const uint32_t n_mtp = o.keep_mtp ? c.num_nextn_predict_layers : 0;

  w.set("general.architecture", MetaValue::string("deepseek2"));
  w.set("general.name", MetaValue::string(name));
  arch("block_count", MetaValue::u32(file_block_count(c, o)));
  if (n_mtp > 0) arch("nextn_predict_layers", MetaValue::u32(n_mtp));
  if (c.max_position_embeddings > 0) arch("context_length", MetaValue::u32(c.max_position_embeddings));
  arch("embedding_length", MetaValue::u32(c.hidden_size));
  arch("feed_forward_length", MetaValue::u32(c.intermediate_size));
  arch("attention.head_count", MetaValue::u32(c.num_attention_heads));
  // The split (absorbed) convention describes the cache as one KV head of width kv_lora (+ rope for K); the
  // per-head sizes move to the *_mla keys.
  arch("attention.head_count_kv", MetaValue::u32(file_head_count_kv(c, o)));
  arch("rope.freq_base", MetaValue::f32(c.rope_theta));
  arch("attention.layer_norm_rms_epsilon", MetaValue::f32(c.rms_norm_eps));
  arch("vocab_size", MetaValue::u32(c.vocab_size));
  arch("leading_dense_block_count", MetaValue::u32(c.first_k_dense_replace));
  if (c.q_lora_rank > 0) arch("attention.q_lora_rank", MetaValue::u32(c.q_lora_rank));
  arch("attention.kv_lora_rank", MetaValue::u32(c.kv_lora_rank));
  const uint32_t head_k = c.qk_nope_head_dim + c.qk_rope_head_dim;
  arch("attention.key_length", MetaValue::u32(split ? c.kv_lora_rank + c.qk_rope_head_dim : head_k));
  arch("attention.value_length", MetaValue::u32(split ? c.kv_lora_rank : c.v_head_dim));
  if (split) {
    arch("attention.key_length_mla", MetaValue::u32(head_k));
    arch("attention.value_length_mla", MetaValue::u32(c.v_head_dim));
  }
  if (c.n_routed_experts > 0) {
    arch("expert_feed_forward_length", MetaValue::u32(c.moe_intermediate_size));
    arch("expert_count", MetaValue::u32(c.n_routed_experts));
    arch("expert_used_count", MetaValue::u32(c.num_experts_per_tok));
    arch("expert_shared_count", MetaValue::u32(c.n_shared_experts));
    arch("expert_weights_scale", MetaValue::f32(c.routed_scaling_factor));
    arch("expert_weights_norm", MetaValue::boolean(c.norm_topk_prob));
    arch("expert_gating_func", MetaValue::u32(c.scoring_func == "sigmoid" ? 2 : 1));
    // Without the group keys the model routes over all experts; the official model limits by groups.
    if (c.n_group > 1) {
      arch("expert_group_count", MetaValue::u32(c.n_group));
      arch("expert_group_used_count", MetaValue::u32(c.topk_group));
    }
  }
  arch("rope.dimension_count", MetaValue::u32(c.qk_rope_head_dim));
  if (c.yarn) {
    arch("rope.scaling.type", MetaValue::string("yarn"));
    arch("rope.scaling.factor", MetaValue::f32(c.yarn_factor));
    arch("rope.scaling.original_context_length", MetaValue::u32(c.yarn_original_ctx));
    // The official model's attention scale is mscale = 0.1 * mscale_all_dim * ln(factor) + 1.
    arch("rope.scaling.yarn_log_multiplier", MetaValue::f32(0.1f * c.yarn_mscale_all_dim));
  }
  w.set("general.file_type", MetaValue::u32(model::scheme_file_type(scheme)));
}

}  // namespace onecard::convert
