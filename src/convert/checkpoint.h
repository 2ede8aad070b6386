// A Hugging Face checkpoint folder: config.json (the hyper-parameters), the safetensors shards named by
// model.safetensors.index.json (or one model.safetensors), tokenizer.json and tokenizer_config.json. Opening
// it checks that every shard exists and holds every tensor the index assigns to it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "convert/safetensors.h"

namespace onecard::convert {

// The fields of a DeepSeek-V2/V3 config.json the conversion reads (Hugging Face's names).
struct HfConfig {
  std::string model_type;  // deepseek_v2, deepseek_v3
  uint32_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, moe_intermediate_size = 0;
  uint32_t num_hidden_layers = 0, first_k_dense_replace = 0, num_attention_heads = 0;
  uint32_t n_routed_experts = 0, n_shared_experts = 0, num_experts_per_tok = 0;
  uint32_t n_group = 1, topk_group = 1;
  std::string scoring_func = "softmax";
  bool norm_topk_prob = false;
  float routed_scaling_factor = 1.0f;
  uint32_t q_lora_rank = 0;  // 0: no q compression (V2-Lite)
  uint32_t kv_lora_rank = 0, qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;
  float rope_theta = 10000.0f, rms_norm_eps = 1e-6f;
  uint32_t max_position_embeddings = 0;
  uint32_t num_nextn_predict_layers = 0;
  bool tie_word_embeddings = false;
  std::optional<int64_t> bos_token_id, eos_token_id;
  // rope_scaling of type yarn
  bool yarn = false;
  float yarn_factor = 1.0f, yarn_mscale_all_dim = 0.0f;
  uint32_t yarn_original_ctx = 0;
  // quantization_config of quant_method fp8: the block size of weight_scale_inv
  bool fp8 = false;
  uint32_t fp8_block_rows = 128, fp8_block_cols = 128;

  // Reads and checks config.json; errors name the file and key.
  static Result<HfConfig> parse(const nlohmann::json& j, const std::string& path);
};

class Checkpoint {
 public:
  static Result<Checkpoint> open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const HfConfig& config() const { return config_; }
  // The tensor named `name` (from the index), or nullptr.
  const StTensor* find(std::string_view name) const;
  // The shard file holding `name` ("" if none), for messages.
  std::string file_of(std::string_view name) const;
  // Every tensor name of the checkpoint, sorted.
  std::vector<std::string> names() const;

 private:
  std::string dir_;
  HfConfig config_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, std::pair<const StTensor*, size_t>, std::less<>> tensors_;  // name -> (tensor, shard)
};

// Reads a JSON file; errors name it.
Result<nlohmann::json> read_json_file(const std::string& path);

}  // namespace onecard::convert
