// The tensors of a DeepSeek GGUF bound by name to the places the forward pass uses them. Nothing is copied:
// weights point into the mapped file (norm vectors stored in another float format are converted once), and
// a backend may rearrange them at load into a copy of its own (backend::Backend::prepare_*).
#pragma once

#include <memory>
#include <vector>

#include "backend/tensor.h"
#include "base/result.h"
#include "gguf/file.h"
#include "model/hparams.h"

namespace onecard::model {

struct LayerWeights {
  backend::Vector attn_norm;
  backend::Weight q_a, q_b;  // with q_lora
  backend::Vector q_a_norm;
  backend::Weight q;     // without q_lora (V2-Lite)
  backend::Weight kv_a;  // d -> kv_lora + qk_rope
  backend::Vector kv_a_norm;
  backend::LatentProjections latent;  // W_UK and W_UV per head
  backend::Weight wo;
  backend::Vector ffn_norm;

  backend::Weight gate, up, down;  // dense blocks

  backend::Weight router;       // MoE blocks: d -> E, float32
  backend::Vector router_bias;  // selection bias (V3), or absent
  backend::ExpertTensors experts;
  backend::Weight shared_gate, shared_up, shared_down;  // absent without shared experts
};

struct Weights {
  backend::Weight token_embd;  // rows = vocab, cols = d
  backend::Vector output_norm;
  backend::Weight output;                           // rows = vocab, cols = d
  std::vector<LayerWeights> layers;                 // decode layers only (MTP layers are not bound)
  std::vector<std::unique_ptr<float[]>> converted;  // norm vectors converted to float32
};

// Binds every tensor the forward pass needs, checking each one's presence, exact shape and type. Errors name
// the file, the tensor, and the shape expected.
Result<Weights> bind_weights(const gguf::File& file, const HParams& hp);

}  // namespace onecard::model
