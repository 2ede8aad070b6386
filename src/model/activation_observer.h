// A hook on the forward pass that sees the input of every weight matrix it multiplies, for importance
// matrices (`onecard imatrix`). The inputs are those of the model's math, named by the weight tensor's GGUF
// name, whatever form the engine computes it in:
// - attn_kv_b (and an attn_kv_b beside attn_k_b/attn_v_b): the normalized KV latent c of each token, which
//   K_nope and V are made from.
// - attn_k_b [qk_nope, kv_lora, H]: its rows have qk_nope columns and give the latent-space query
//   q_lat[h] = W_UK[h]^T q_nope[h], so its input is each token's q_nope of head h (matrix h). The product the
//   other way, K_nope = W_UK c, sums over its rows rather than its columns and is not its input.
// - attn_v_b [kv_lora, v, H]: each token's attention output in the latent space of head h (matrix h),
//   o_lat[h] = softmax(scores) . c, which out[h] = W_UV[h] o_lat[h] maps to the head's values.
// - ffn_gate_exps / ffn_up_exps: the normalized hidden state of each token, once per expert it is routed
//   to; ffn_down_exps: silu(gate) * up of that expert for that token.
#pragma once

#include <cstdint>
#include <string_view>

namespace onecard::model {

struct ObservedInput {
  std::string_view weight;  // e.g. "blk.3.attn_q_a.weight", "blk.3.ffn_down_exps.weight"
  int64_t n_mat = 1;        // matrices in the tensor: 1, n_expert for experts, n_head for attn_k_b / v_b
  const float* x = nullptr;
  int64_t rows = 0, cols = 0;  // rows of `cols` inputs, `stride` floats apart
  int64_t stride = 0;
  // With n_mat > 1: row i went through matrices mats[i * mats_per_row .. (i + 1) * mats_per_row).
  const int32_t* mats = nullptr;
  int mats_per_row = 0;
};

class ActivationObserver {
 public:
  virtual ~ActivationObserver() = default;
  // Called on the thread that runs forward(), after the input exists and before the next step overwrites it.
  virtual void observe(const ObservedInput& in) = 0;
};

}  // namespace onecard::model
