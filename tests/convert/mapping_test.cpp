// The name and shape mapping on a V3-like config, without files: MTP layers appended only when kept, the
// split MLA layout, experts stacked in order, tied embeddings.
#include <algorithm>

#include <gtest/gtest.h>

#include "convert/mapping.h"

namespace onecard::convert {
namespace {

HfConfig v3_like() {
  HfConfig c;
  c.vocab_size = 100;
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.moe_intermediate_size = 32;
  c.num_hidden_layers = 2;
  c.first_k_dense_replace = 1;
  c.num_attention_heads = 2;
  c.n_routed_experts = 4;
  c.n_shared_experts = 1;
  c.num_experts_per_tok = 2;
  c.scoring_func = "sigmoid";
  c.q_lora_rank = 48;
  c.kv_lora_rank = 32;
  c.qk_nope_head_dim = 16;
  c.qk_rope_head_dim = 8;
  c.v_head_dim = 16;
  c.num_nextn_predict_layers = 1;
  return c;
}

const TensorMap* find(const std::vector<TensorMap>& maps, const std::string& name) {
  const auto it = std::find_if(maps.begin(), maps.end(), [&](const TensorMap& m) { return m.name == name; });
  return it == maps.end() ? nullptr : &*it;
}

TEST(Mapping, MtpLayersOnlyWhenKept) {
  const HfConfig c = v3_like();
  const auto plain = map_tensors(c, {});
  EXPECT_EQ(find(plain, "blk.2.attn_norm.weight"), nullptr);
  const auto kept = map_tensors(c, {model::MlaLayout::kCombined, true});
  const TensorMap* eh = find(kept, "blk.2.nextn.eh_proj.weight");
  ASSERT_NE(eh, nullptr);
  EXPECT_EQ(eh->ne, (std::vector<uint64_t>{128, 64}));
  EXPECT_EQ(eh->sources[0].name, "model.layers.2.eh_proj.weight");
  ASSERT_NE(find(kept, "blk.2.ffn_gate_exps.weight"), nullptr);  // the MTP layer is a MoE layer
  EXPECT_NE(find(kept, "blk.2.nextn.shared_head_head.weight"), nullptr);
}

TEST(Mapping, ExpertsStackInOrder) {
  const auto maps = map_tensors(v3_like(), {});
  const TensorMap* down = find(maps, "blk.1.ffn_down_exps.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->ne, (std::vector<uint64_t>{32, 64, 4}));
  ASSERT_EQ(down->sources.size(), 4u);
  EXPECT_EQ(down->sources[3].name, "model.layers.1.mlp.experts.3.down_proj.weight");
  EXPECT_EQ(down->sources[3].shape, (std::vector<uint64_t>{64, 32}));
  EXPECT_EQ(down->n_rows(), 64u * 4);
}

TEST(Mapping, SplitLayoutCutsKvB) {
  const auto maps = map_tensors(v3_like(), {model::MlaLayout::kSplit, false});
  EXPECT_EQ(find(maps, "blk.0.attn_kv_b.weight"), nullptr);
  const TensorMap* kb = find(maps, "blk.0.attn_k_b.weight");
  const TensorMap* vb = find(maps, "blk.0.attn_v_b.weight");
  ASSERT_NE(kb, nullptr);
  ASSERT_NE(vb, nullptr);
  EXPECT_EQ(kb->ne, (std::vector<uint64_t>{16, 32, 2}));
  EXPECT_EQ(vb->ne, (std::vector<uint64_t>{32, 16, 2}));
  EXPECT_EQ(kb->transform, Transform::kKb);
  EXPECT_EQ(kb->sources[0].shape, (std::vector<uint64_t>{2 * (16 + 16), 32}));
}

TEST(Mapping, TiedEmbeddingsFeedTheOutputHead) {
  HfConfig c = v3_like();
  c.tie_word_embeddings = true;
  const auto maps = map_tensors(c, {});
  EXPECT_EQ(find(maps, "output.weight")->sources[0].name, "model.embed_tokens.weight");
  EXPECT_EQ(layer_of("model.layers.12.mlp.gate.weight"), 12);
  EXPECT_EQ(layer_of("model.norm.weight"), -1);
}

}  // namespace
}  // namespace onecard::convert
