#include "app/weight_traffic.h"

#include <string>

#include <fmt/format.h>

namespace onecard::app {
namespace {

class Counter {
 public:
  explicit Counter(const gguf::File& file) : file_(file) {}

  // `share` of the tensor's bytes, as num/den (exact: expert tensors hold den equal slices).
  Status add(const std::string& name, uint64_t num = 1, uint64_t den = 1) {
    const gguf::TensorInfo* t = file_.tensor(name);
    if (t == nullptr) return make_error("{}: tensor '{}' not found", file_.path(), name);
    total_ += t->n_bytes / den * num;
    return {};
  }
  uint64_t total() const { return total_; }

 private:
  const gguf::File& file_;
  uint64_t total_ = 0;
};

}  // namespace

Result<uint64_t> weight_bytes_per_token(const gguf::File& file, const model::HParams& hp) {
  Counter c(file);
  ONECARD_TRY(c.add("token_embd.weight", 1, hp.n_vocab));
  ONECARD_TRY(c.add("output_norm.weight"));
  ONECARD_TRY(c.add("output.weight"));
  for (uint32_t il = 0; il < hp.n_layer_decode(); ++il) {
    const std::string p = fmt::format("blk.{}.", il);
    for (const char* name : {"attn_norm", "attn_kv_a_mqa", "attn_kv_a_norm", "attn_output", "ffn_norm"})
      ONECARD_TRY(c.add(p + name + ".weight"));
    if (hp.q_lora_rank > 0) {
      for (const char* name : {"attn_q_a", "attn_q_a_norm", "attn_q_b"})
        ONECARD_TRY(c.add(p + name + ".weight"));
    } else {
      ONECARD_TRY(c.add(p + "attn_q.weight"));
    }
    if (hp.layout == model::MlaLayout::kSplit) {
      ONECARD_TRY(c.add(p + "attn_k_b.weight"));
      ONECARD_TRY(c.add(p + "attn_v_b.weight"));
    } else {
      ONECARD_TRY(c.add(p + "attn_kv_b.weight"));
    }
    if (!hp.is_moe_layer(il)) {
      for (const char* name : {"ffn_gate", "ffn_up", "ffn_down"}) ONECARD_TRY(c.add(p + name + ".weight"));
      continue;
    }
    ONECARD_TRY(c.add(p + "ffn_gate_inp.weight"));
    if (file.tensor(p + "exp_probs_b.bias") != nullptr) ONECARD_TRY(c.add(p + "exp_probs_b.bias"));
    for (const char* name : {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"})
      ONECARD_TRY(c.add(p + name + ".weight", hp.n_expert_used, hp.n_expert));
    if (hp.n_expert_shared > 0) {
      for (const char* name : {"ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"})
        ONECARD_TRY(c.add(p + name + ".weight"));
    }
  }
  return c.total();
}

}  // namespace onecard::app
