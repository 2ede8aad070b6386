#include "synth/tensors.h"

#include <cmath>

#include <fmt/format.h>

namespace onecard::synth {
namespace {

using gguf::GgmlType;

class Planner {
 public:
  // The same context `onecard quantize` reads back from the file, so that both give a tensor one type.
  explicit Planner(const ModelSpec& s)
      : s_(s), mix_(model::mix_context(s.n_layer, s.n_head, head_count_kv(s), false)) {}

  // A weight matrix: values ~ N(0, 1/fan_in), so that activations keep their scale through the layer.
  void weight(const std::string& name, std::vector<uint64_t> ne, uint64_t fan_in) {
    const GgmlType type =
        model::scheme_tensor_type(s_.type, name, ne[0], static_cast<uint32_t>(ne.size()), mix_);
    add(name, std::move(ne), type, {0.0f, 1.0f / std::sqrt(static_cast<float>(fan_in))});
  }
  // RMSNorm gains near 1, as trained models have them; always F32 as in real files.
  void norm(const std::string& name, uint64_t n) { add(name, {n}, GgmlType::F32, {1.0f, 0.05f}); }
  // Tensors real files keep in F32 whatever the weight type: the router and the selection bias.
  void f32(const std::string& name, std::vector<uint64_t> ne, Distribution dist) {
    add(name, std::move(ne), GgmlType::F32, dist);
  }

  std::vector<TensorPlan> take() && { return std::move(out_); }

 private:
  void add(const std::string& name, std::vector<uint64_t> ne, GgmlType type, Distribution dist) {
    out_.push_back(TensorPlan{name, std::move(ne), type, dist});
  }

  const ModelSpec& s_;
  const model::MixContext mix_;
  std::vector<TensorPlan> out_;
};

}  // namespace

uint64_t TensorPlan::n_elements() const {
  uint64_t n = 1;
  for (uint64_t d : ne) n *= d;
  return n;
}

uint64_t TensorPlan::n_bytes() const {
  const gguf::TypeTraits& tt = gguf::traits(type);
  return n_elements() / tt.block_size * tt.type_size;
}

std::vector<TensorPlan> plan_tensors(const ModelSpec& s) {
  Planner p(s);
  const uint64_t d = s.n_embd, H = s.n_head, nope = s.qk_nope, rope = s.qk_rope, v = s.v_head;
  const uint64_t kv = s.kv_lora, E = s.n_expert, ff_exp = s.n_ff_exp;
  p.weight("token_embd.weight", {d, s.n_vocab}, d);
  for (uint32_t il = 0; il < s.n_layer; ++il) {
    const auto n = [il](std::string_view what) { return fmt::format("blk.{}.{}", il, what); };
    p.norm(n("attn_norm.weight"), d);
    if (s.q_lora > 0) {
      p.weight(n("attn_q_a.weight"), {d, s.q_lora}, d);
      p.norm(n("attn_q_a_norm.weight"), s.q_lora);
      p.weight(n("attn_q_b.weight"), {s.q_lora, H * (nope + rope)}, s.q_lora);
    } else {
      p.weight(n("attn_q.weight"), {d, H * (nope + rope)}, d);
    }
    p.weight(n("attn_kv_a_mqa.weight"), {d, kv + rope}, d);
    p.norm(n("attn_kv_a_norm.weight"), kv);
    if (s.mla == model::MlaLayout::kSplit) {
      // attn_k_b is kv_b's K part transposed per head: its input is still the latent, so it keeps kv_b's
      // scale.
      p.weight(n("attn_k_b.weight"), {nope, kv, H}, kv);
      p.weight(n("attn_v_b.weight"), {kv, v, H}, kv);
    } else {
      p.weight(n("attn_kv_b.weight"), {kv, H * (nope + v)}, kv);
    }
    p.weight(n("attn_output.weight"), {H * v, d}, H * v);
    p.norm(n("ffn_norm.weight"), d);
    if (il < s.n_dense) {
      p.weight(n("ffn_gate.weight"), {d, s.n_ff}, d);
      p.weight(n("ffn_up.weight"), {d, s.n_ff}, d);
      p.weight(n("ffn_down.weight"), {s.n_ff, d}, s.n_ff);
      continue;
    }
    p.f32(n("ffn_gate_inp.weight"), {d, E}, {0.0f, 1.0f / std::sqrt(static_cast<float>(d))});
    if (s.gating == model::Gating::kSigmoid) p.f32(n("exp_probs_b.bias"), {E}, {0.0f, 0.01f});
    p.weight(n("ffn_gate_exps.weight"), {d, ff_exp, E}, d);
    p.weight(n("ffn_up_exps.weight"), {d, ff_exp, E}, d);
    p.weight(n("ffn_down_exps.weight"), {ff_exp, d, E}, ff_exp);
    if (s.n_expert_shared > 0) {
      const uint64_t ff_sh = ff_exp * s.n_expert_shared;
      p.weight(n("ffn_gate_shexp.weight"), {d, ff_sh}, d);
      p.weight(n("ffn_up_shexp.weight"), {d, ff_sh}, d);
      p.weight(n("ffn_down_shexp.weight"), {ff_sh, d}, ff_sh);
    }
  }
  p.norm("output_norm.weight", d);
  p.weight("output.weight", {d, s.n_vocab}, d);
  return std::move(p).take();
}

}  // namespace onecard::synth
