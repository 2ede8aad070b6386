// Hugging Face DeepSeek-V2/V3 tensor names and shapes → the `deepseek2` GGUF tensors of the design page: each
// GGUF tensor with the checkpoint tensors it is made of and how (copied; experts stacked in order; attn_k_b
// and attn_v_b cut out of kv_b_proj for the split MLA convention), and the shape config.json implies for
// each.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "convert/checkpoint.h"
#include "model/hparams.h"

namespace onecard::convert {

enum class Transform {
  kRows,  // the sources' rows, one source after the other (one source, or experts stacked)
  kKb,    // kv_b_proj's K rows of each head, transposed: [qk_nope, kv_lora, H]
  kVb,    // kv_b_proj's V rows of each head: [kv_lora, v_head, H]
};

struct Source {
  std::string name;             // the checkpoint's tensor name
  std::vector<uint64_t> shape;  // as config.json implies it, PyTorch order ([out, in])
};

struct TensorMap {
  std::string name;          // GGUF name, e.g. blk.3.ffn_up_exps.weight
  std::vector<uint64_t> ne;  // GGUF shape, ne[0] contiguous
  Transform transform = Transform::kRows;
  std::vector<Source> sources;

  uint64_t n_elements() const;
  uint64_t n_rows() const { return n_elements() / ne[0]; }
};

struct MappingOptions {
  model::MlaLayout mla = model::MlaLayout::kCombined;
  bool keep_mtp = false;  // also map the multi-token-prediction layers appended after num_hidden_layers
};

// The GGUF tensors in file order (token_embd, blocks, output_norm, output).
std::vector<TensorMap> map_tensors(const HfConfig& config, const MappingOptions& options);

// Checks that every source exists with the shape config.json implies (FP8 weights with their block scales),
// and that the checkpoint holds no tensor the mapping does not know; errors name the file and tensor.
Status check_sources(const Checkpoint& ck, const std::vector<TensorMap>& maps, const MappingOptions& options);

// The layer index of a checkpoint name "model.layers.N....", or -1.
int64_t layer_of(const std::string& hf_name);

}  // namespace onecard::convert
