#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "synth/spec.h"
#include "synth/tensors.h"

namespace onecard::synth {
namespace {

using gguf::GgmlType;
using Shape = std::vector<uint64_t>;

ModelSpec spec_or_die(std::string_view preset, const Overrides& o = {}) {
  auto r = make_spec(preset, o);
  EXPECT_TRUE(r.ok()) << r.error().message();
  return r.ok() ? r.value() : ModelSpec{};
}

std::map<std::string, TensorPlan> by_name(const std::vector<TensorPlan>& plan) {
  std::map<std::string, TensorPlan> m;
  for (const auto& t : plan) m.emplace(t.name, t);
  return m;
}

TEST(SynthSpec, R1IsV3WithAllItsLayers) {
  const ModelSpec r1 = spec_or_die("r1");
  const ModelSpec v3 = spec_or_die("v3-slice");
  EXPECT_EQ(r1.n_layer, 61u);
  EXPECT_EQ(r1.n_dense, 3u);
  EXPECT_EQ(r1.type, WeightType::kQ4_K_M);
  EXPECT_EQ(r1.n_vocab, 129280u);
  EXPECT_EQ(r1.n_ctx, 163840u);
  for (const auto& [a, b] : {std::pair{r1.n_embd, v3.n_embd},
                             {r1.n_ff, v3.n_ff},
                             {r1.n_head, v3.n_head},
                             {r1.q_lora, v3.q_lora},
                             {r1.kv_lora, v3.kv_lora},
                             {r1.qk_nope, v3.qk_nope},
                             {r1.qk_rope, v3.qk_rope},
                             {r1.v_head, v3.v_head},
                             {r1.n_expert, v3.n_expert},
                             {r1.n_expert_used, v3.n_expert_used},
                             {r1.n_ff_exp, v3.n_ff_exp},
                             {r1.n_group, v3.n_group},
                             {r1.n_group_used, v3.n_group_used}})
    EXPECT_EQ(a, b);
  EXPECT_EQ(r1.yarn_factor, 40.0f);
  EXPECT_EQ(r1.yarn_original_ctx, 4096u);
  EXPECT_EQ(r1.gating, model::Gating::kSigmoid);
}

TEST(SynthSpec, V3SliceHasDeepSeekV3Numbers) {
  const ModelSpec s = spec_or_die("v3-slice");
  EXPECT_EQ(s.n_embd, 7168u);
  EXPECT_EQ(s.n_head, 128u);
  EXPECT_EQ(s.q_lora, 1536u);
  EXPECT_EQ(s.kv_lora, 512u);
  EXPECT_EQ(s.qk_nope, 128u);
  EXPECT_EQ(s.qk_rope, 64u);
  EXPECT_EQ(s.v_head, 128u);
  EXPECT_EQ(s.n_ff, 18432u);
  EXPECT_EQ(s.n_expert, 256u);
  EXPECT_EQ(s.n_ff_exp, 2048u);
  EXPECT_EQ(s.n_expert_used, 8u);
  EXPECT_EQ(s.n_expert_shared, 1u);
  EXPECT_EQ(s.n_group, 8u);
  EXPECT_EQ(s.n_group_used, 4u);
  EXPECT_EQ(s.gating, model::Gating::kSigmoid);
  EXPECT_TRUE(s.expert_weights_norm);
  EXPECT_EQ(s.expert_weights_scale, 2.5f);
  EXPECT_EQ(s.rope_base, 10000.0f);
  EXPECT_TRUE(s.yarn);
  EXPECT_EQ(s.yarn_factor, 40.0f);
  EXPECT_EQ(s.yarn_original_ctx, 4096u);
  EXPECT_EQ(s.yarn_log_multiplier, 0.1f);
  EXPECT_EQ(s.rms_eps, 1e-6f);
  EXPECT_EQ(s.n_ctx, 163840u);
  EXPECT_EQ(s.n_vocab, 129280u);
  EXPECT_EQ(s.n_layer, 2u);
  EXPECT_EQ(s.n_dense, 1u);
  EXPECT_EQ(s.type, WeightType::kQ4_K_M);
  EXPECT_EQ(s.seed, 42u);
}

TEST(SynthSpec, PresetDefaults) {
  EXPECT_EQ(spec_or_die("tiny").type, WeightType::kF16);
  EXPECT_EQ(spec_or_die("tiny").n_layer, 3u);
  EXPECT_EQ(spec_or_die("tiny").n_dense, 1u);
  EXPECT_TRUE(spec_or_die("tiny").yarn);
  EXPECT_GT(spec_or_die("tiny").n_group, 1u);
  const ModelSpec d = spec_or_die("demo");
  EXPECT_EQ(d.type, WeightType::kQ4_K_M);
  EXPECT_EQ(d.n_embd, 512u);
  EXPECT_EQ(d.n_layer, 6u);
  EXPECT_EQ(d.n_expert, 32u);
  EXPECT_EQ(d.n_vocab, 8192u);
  EXPECT_EQ(d.n_ctx, 4096u);
  const ModelSpec l = spec_or_die("tiny-v2lite");
  EXPECT_EQ(l.q_lora, 0u);
  EXPECT_EQ(l.gating, model::Gating::kSoftmax);
  EXPECT_EQ(l.n_group, 1u);
}

TEST(SynthSpec, V3SliceTensorShapesAreV3s) {
  for (auto mla : {model::MlaLayout::kCombined, model::MlaLayout::kSplit}) {
    Overrides o;
    o.mla = mla;
    const auto plan = plan_tensors(spec_or_die("v3-slice", o));
    const auto t = by_name(plan);
    EXPECT_EQ(plan.front().name, "token_embd.weight");
    EXPECT_EQ(plan.back().name, "output.weight");
    EXPECT_EQ(t.at("token_embd.weight").ne, (Shape{7168, 129280}));
    EXPECT_EQ(t.at("output.weight").ne, (Shape{7168, 129280}));
    EXPECT_EQ(t.at("output_norm.weight").ne, (Shape{7168}));
    for (int il : {0, 1}) {
      const auto n = [il](const char* what) { return "blk." + std::to_string(il) + "." + what; };
      EXPECT_EQ(t.at(n("attn_norm.weight")).ne, (Shape{7168}));
      EXPECT_EQ(t.at(n("attn_q_a.weight")).ne, (Shape{7168, 1536}));
      EXPECT_EQ(t.at(n("attn_q_a_norm.weight")).ne, (Shape{1536}));
      EXPECT_EQ(t.at(n("attn_q_b.weight")).ne, (Shape{1536, 24576}));
      EXPECT_EQ(t.at(n("attn_kv_a_mqa.weight")).ne, (Shape{7168, 576}));
      EXPECT_EQ(t.at(n("attn_kv_a_norm.weight")).ne, (Shape{512}));
      if (mla == model::MlaLayout::kCombined) {
        EXPECT_EQ(t.at(n("attn_kv_b.weight")).ne, (Shape{512, 32768}));
        EXPECT_FALSE(t.count(n("attn_k_b.weight")));
      } else {
        EXPECT_EQ(t.at(n("attn_k_b.weight")).ne, (Shape{128, 512, 128}));
        EXPECT_EQ(t.at(n("attn_v_b.weight")).ne, (Shape{512, 128, 128}));
        EXPECT_FALSE(t.count(n("attn_kv_b.weight")));
      }
      EXPECT_EQ(t.at(n("attn_output.weight")).ne, (Shape{16384, 7168}));
      EXPECT_EQ(t.at(n("ffn_norm.weight")).ne, (Shape{7168}));
    }
    EXPECT_EQ(t.at("blk.0.ffn_gate.weight").ne, (Shape{7168, 18432}));
    EXPECT_EQ(t.at("blk.0.ffn_up.weight").ne, (Shape{7168, 18432}));
    EXPECT_EQ(t.at("blk.0.ffn_down.weight").ne, (Shape{18432, 7168}));
    EXPECT_EQ(t.at("blk.1.ffn_gate_inp.weight").ne, (Shape{7168, 256}));
    EXPECT_EQ(t.at("blk.1.exp_probs_b.bias").ne, (Shape{256}));
    EXPECT_EQ(t.at("blk.1.ffn_gate_exps.weight").ne, (Shape{7168, 2048, 256}));
    EXPECT_EQ(t.at("blk.1.ffn_up_exps.weight").ne, (Shape{7168, 2048, 256}));
    EXPECT_EQ(t.at("blk.1.ffn_down_exps.weight").ne, (Shape{2048, 7168, 256}));
    EXPECT_EQ(t.at("blk.1.ffn_gate_shexp.weight").ne, (Shape{7168, 2048}));
    EXPECT_EQ(t.at("blk.1.ffn_up_shexp.weight").ne, (Shape{7168, 2048}));
    EXPECT_EQ(t.at("blk.1.ffn_down_shexp.weight").ne, (Shape{2048, 7168}));
    EXPECT_FALSE(t.count("blk.0.ffn_gate_inp.weight"));
    EXPECT_FALSE(t.count("blk.1.ffn_gate.weight"));
    EXPECT_EQ(plan.size(), mla == model::MlaLayout::kCombined ? 32u : 34u);
  }
}

TEST(SynthSpec, Q4KMTypePlanOnV3Slice) {
  const auto t = by_name(plan_tensors(spec_or_die("v3-slice")));
  EXPECT_EQ(t.at("token_embd.weight").type, GgmlType::Q4_K);
  EXPECT_EQ(t.at("output.weight").type, GgmlType::Q6_K);
  EXPECT_EQ(t.at("output_norm.weight").type, GgmlType::F32);
  EXPECT_EQ(t.at("blk.0.attn_q_a.weight").type, GgmlType::Q4_K);
  // Of the slice's two layers only the last gets the more-bits upgrade, as `onecard quantize` gives it.
  EXPECT_EQ(t.at("blk.0.attn_kv_b.weight").type, GgmlType::Q4_K);
  EXPECT_EQ(t.at("blk.0.attn_output.weight").type, GgmlType::Q4_K);
  EXPECT_EQ(t.at("blk.0.ffn_down.weight").type, GgmlType::Q4_K);
  EXPECT_EQ(t.at("blk.0.ffn_up.weight").type, GgmlType::Q4_K);
  EXPECT_EQ(t.at("blk.1.ffn_down_exps.weight").type, GgmlType::Q6_K);
  EXPECT_EQ(t.at("blk.1.ffn_down_shexp.weight").type, GgmlType::Q6_K);
  EXPECT_EQ(t.at("blk.1.ffn_gate_exps.weight").type, GgmlType::Q4_K);
  EXPECT_EQ(t.at("blk.1.ffn_gate_inp.weight").type, GgmlType::F32);
  EXPECT_EQ(t.at("blk.1.exp_probs_b.bias").type, GgmlType::F32);
  EXPECT_EQ(t.at("blk.1.attn_kv_a_norm.weight").type, GgmlType::F32);

  Overrides o;
  o.mla = model::MlaLayout::kSplit;
  const auto s = by_name(plan_tensors(spec_or_die("v3-slice", o)));
  EXPECT_EQ(s.at("blk.0.attn_k_b.weight").type, GgmlType::Q8_0);  // rows of 128: K-quant falls back
  EXPECT_EQ(s.at("blk.0.attn_v_b.weight").type, GgmlType::Q4_K);
}

TEST(SynthSpec, FallbackRule) {
  EXPECT_EQ(model::fit_row(GgmlType::Q4_K, 512), GgmlType::Q4_K);
  EXPECT_EQ(model::fit_row(GgmlType::Q4_K, 128), GgmlType::Q8_0);
  EXPECT_EQ(model::fit_row(GgmlType::Q6_K, 96), GgmlType::Q8_0);
  EXPECT_EQ(model::fit_row(GgmlType::Q6_K, 200), GgmlType::F16);
  EXPECT_EQ(model::fit_row(GgmlType::Q8_0, 64), GgmlType::Q8_0);
  EXPECT_EQ(model::fit_row(GgmlType::Q8_0, 40), GgmlType::F16);
  EXPECT_EQ(model::fit_row(GgmlType::F16, 7), GgmlType::F16);
  EXPECT_EQ(model::scheme_tensor_type(WeightType::kQ4_K_M, "blk.3.ffn_down_exps.weight", 160, 2),
            GgmlType::Q8_0);
  EXPECT_EQ(model::scheme_tensor_type(WeightType::kQ4_K_M, "blk.3.attn_output.weight", 200, 2),
            GgmlType::F16);
  EXPECT_EQ(model::scheme_tensor_type(WeightType::kBF16, "output.weight", 200, 2), GgmlType::BF16);
  EXPECT_EQ(model::scheme_tensor_type(WeightType::kQ6_K, "blk.0.attn_q_a.weight", 256, 2), GgmlType::Q6_K);
  EXPECT_EQ(model::scheme_tensor_type(WeightType::kQ4_K, "output.weight", 256, 2), GgmlType::Q4_K);
}

TEST(SynthSpec, EveryWeightTypeKeepsNormsRouterAndBiasF32) {
  for (auto wt : {WeightType::kF32, WeightType::kF16, WeightType::kBF16, WeightType::kQ8_0, WeightType::kQ4_K,
                  WeightType::kQ6_K, WeightType::kQ4_K_M}) {
    Overrides o;
    o.type = wt;
    const ModelSpec s = spec_or_die("tiny", o);
    const model::MixContext ctx = model::mix_context(s.n_layer, s.n_head, head_count_kv(s), false);
    for (const auto& t : plan_tensors(s)) {
      const bool keep_f32 = t.name.find("norm") != std::string::npos ||
                            t.name.find("ffn_gate_inp") != std::string::npos ||
                            t.name.find("exp_probs_b") != std::string::npos;
      if (keep_f32) {
        EXPECT_EQ(t.type, GgmlType::F32) << t.name;
      } else {
        EXPECT_EQ(t.type,
                  model::scheme_tensor_type(wt, t.name, t.ne[0], static_cast<uint32_t>(t.ne.size()), ctx))
            << t.name;
      }
    }
  }
}

TEST(SynthSpec, ExpertOverrideKeepsRoutingPossible) {
  for (uint32_t e : {1u, 3u, 4u, 6u, 12u, 64u, 256u}) {
    Overrides o;
    o.experts = e;
    const ModelSpec s = spec_or_die("v3-slice", o);
    EXPECT_EQ(s.n_expert, e);
    EXPECT_EQ(s.n_expert % s.n_group, 0u) << e;
    EXPECT_LE(s.n_group_used, s.n_group) << e;
    EXPECT_LE(s.n_expert_used, e);
    EXPECT_GE(s.n_group_used * (e / s.n_group), s.n_expert_used) << e;
  }
  Overrides o;
  o.experts = 4;
  const ModelSpec s = spec_or_die("v3-slice", o);
  EXPECT_EQ(s.n_group, 4u);
  EXPECT_EQ(s.n_expert_used, 4u);
}

TEST(SynthSpec, LayerOverrides) {
  Overrides o;
  o.layers = 5;
  o.dense_layers = 2;
  const ModelSpec s = spec_or_die("demo", o);
  EXPECT_EQ(s.n_layer, 5u);
  EXPECT_EQ(s.n_dense, 2u);
  o = {};
  o.layers = 1;
  EXPECT_EQ(spec_or_die("tiny", o).n_dense, 1u);
  o.dense_layers = 0;
  EXPECT_EQ(spec_or_die("tiny", o).n_dense, 0u);
}

TEST(SynthSpec, Errors) {
  auto r = make_spec("v4");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "unknown preset 'v4' (valid: tiny, tiny-v2lite, demo, v3-slice, r1)");
  auto t = parse_weight_type("q5_k");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message(),
            "unknown weight type 'q5_k' (valid: f32, f16, bf16, q8_0, q4_k, q6_k, q4_k_m; other types: "
            "onecard quantize)");
  EXPECT_EQ(parse_weight_type("Q4_K_M").value(), WeightType::kQ4_K_M);
  auto m = parse_mla("absorbed");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message().find("combined, split"), std::string::npos);
  Overrides o;
  o.dense_layers = 4;
  EXPECT_FALSE(make_spec("tiny", o).ok());
  o = {};
  o.layers = 0;
  EXPECT_FALSE(make_spec("tiny", o).ok());
  o = {};
  o.experts = 0;
  EXPECT_FALSE(make_spec("tiny", o).ok());
  o = {};
  o.vocab = 100;
  auto v = make_spec("tiny", o);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message().find("--vocab 100"), std::string::npos) << v.error().message();
}

}  // namespace
}  // namespace onecard::synth
