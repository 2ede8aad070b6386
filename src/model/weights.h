// The tensors of a DeepSeek GGUF bound by name to the places the forward pass uses them. Nothing is copied:
// matrices point into the mapped file (norm vectors stored in another float format are converted once).
#pragma once

#include <memory>
#include <vector>

#include "base/result.h"
#include "cpu/matrix.h"
#include "cpu/moe.h"
#include "gguf/file.h"
#include "model/hparams.h"

namespace onecard::model {

struct LayerWeights {
  const float* attn_norm = nullptr;
  cpu::Matrix q_a, q_b;  // with q_lora
  const float* q_a_norm = nullptr;
  cpu::Matrix q;     // without q_lora (V2-Lite)
  cpu::Matrix kv_a;  // d -> kv_lora + qk_rope
  const float* kv_a_norm = nullptr;
  // Per head, the latent's up-projections used in absorbed form: q_lat = W_UK^T q_nope, out = W_UV o_lat.
  // Combined files give W_UK as qk_nope rows of kv_lora (multiply transposed); split files give it as kv_lora
  // rows of qk_nope (multiply as is).
  std::vector<cpu::Matrix> uk, uv;
  bool uk_transposed = false;
  // For combined files, W_UK per head turned at load into kv_lora rows of qk_nope (F16; F32 when the file's
  // is F32 or BF16), so that decode's q_lat is a plain product instead of a row dequantized per step; empty
  // for split files, or where the copy could not be made.
  std::vector<cpu::Matrix> uk_rows;
  cpu::Matrix wo;
  const float* ffn_norm = nullptr;

  cpu::Matrix gate, up, down;  // dense blocks

  cpu::Matrix router;                  // MoE blocks: d -> E, float32
  const float* router_bias = nullptr;  // selection bias (V3), or null
  cpu::ExpertWeights experts;
  cpu::Matrix shared_gate, shared_up, shared_down;  // absent (rows 0) without shared experts
};

struct Weights {
  cpu::Matrix token_embd;  // rows = vocab, cols = d
  const float* output_norm = nullptr;
  cpu::Matrix output;                               // rows = vocab, cols = d
  std::vector<LayerWeights> layers;                 // decode layers only (MTP layers are not bound)
  std::vector<std::unique_ptr<float[]>> converted;  // norm vectors converted to float32
  std::vector<cpu::PackedBuffer> packed;            // experts repacked at load (DeepSeek2::repack_experts)
  std::vector<std::vector<uint8_t>> uk_copies;      // the uk_rows of each combined layer
};

// Binds every tensor the forward pass needs, checking each one's presence, exact shape and type. Errors name
// the file, the tensor, and the shape expected.
Result<Weights> bind_weights(const gguf::File& file, const HParams& hp);

}  // namespace onecard::model
