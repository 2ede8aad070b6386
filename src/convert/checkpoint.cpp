#include "convert/checkpoint.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace onecard::convert {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// Typed access to config.json's keys; every error names the file and the key.
class ConfigReader {
 public:
  ConfigReader(const json& j, const std::string& path) : j_(j), path_(path) {}

  template <class T>
  Status req(const char* key, T& out) const {
    if (!j_.contains(key)) return make_error("{}: missing key '{}'", path_, key);
    return get(key, j_.at(key), out);
  }
  template <class T>
  Status opt(const char* key, T& out) const {
    if (!j_.contains(key) || j_.at(key).is_null()) return {};
    return get(key, j_.at(key), out);
  }

  template <class T>
  Status get(const char* key, const json& v, T& out) const {
    if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) return make_error("{}: key '{}' is {}, not a boolean", path_, key, v.dump());
      out = v.get<bool>();
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!v.is_string()) return make_error("{}: key '{}' is {}, not a string", path_, key, v.dump());
      out = v.get<std::string>();
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v.is_number()) return make_error("{}: key '{}' is {}, not a number", path_, key, v.dump());
      out = v.get<T>();
    } else {
      if (!v.is_number_integer())
        return make_error("{}: key '{}' is {}, not an integer", path_, key, v.dump());
      const int64_t x = v.get<int64_t>();
      if (x < 0 || static_cast<uint64_t>(x) > std::numeric_limits<T>::max())
        return make_error("{}: key '{}' is {}, out of range", path_, key, x);
      out = static_cast<T>(x);
    }
    return {};
  }

 private:
  const json& j_;
  const std::string& path_;
};

}  // namespace

Result<json> read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("{}: cannot be opened", path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error("{}: not valid JSON", path);
  return j;
}

Result<HfConfig> HfConfig::parse(const json& j, const std::string& path) {
  if (!j.is_object()) return make_error("{}: not a JSON object", path);
  const ConfigReader r(j, path);
  HfConfig c;
  ONECARD_TRY(r.opt("model_type", c.model_type));
  ONECARD_TRY(r.req("vocab_size", c.vocab_size));
  ONECARD_TRY(r.req("hidden_size", c.hidden_size));
  ONECARD_TRY(r.req("intermediate_size", c.intermediate_size));
  ONECARD_TRY(r.opt("moe_intermediate_size", c.moe_intermediate_size));
  ONECARD_TRY(r.req("num_hidden_layers", c.num_hidden_layers));
  ONECARD_TRY(r.opt("first_k_dense_replace", c.first_k_dense_replace));
  ONECARD_TRY(r.req("num_attention_heads", c.num_attention_heads));
  ONECARD_TRY(r.opt("n_routed_experts", c.n_routed_experts));
  ONECARD_TRY(r.opt("n_shared_experts", c.n_shared_experts));
  ONECARD_TRY(r.opt("num_experts_per_tok", c.num_experts_per_tok));
  ONECARD_TRY(r.opt("n_group", c.n_group));
  ONECARD_TRY(r.opt("topk_group", c.topk_group));
  ONECARD_TRY(r.opt("scoring_func", c.scoring_func));
  ONECARD_TRY(r.opt("norm_topk_prob", c.norm_topk_prob));
  ONECARD_TRY(r.opt("routed_scaling_factor", c.routed_scaling_factor));
  ONECARD_TRY(r.opt("q_lora_rank", c.q_lora_rank));
  ONECARD_TRY(r.req("kv_lora_rank", c.kv_lora_rank));
  ONECARD_TRY(r.req("qk_nope_head_dim", c.qk_nope_head_dim));
  ONECARD_TRY(r.req("qk_rope_head_dim", c.qk_rope_head_dim));
  ONECARD_TRY(r.req("v_head_dim", c.v_head_dim));
  ONECARD_TRY(r.opt("rope_theta", c.rope_theta));
  ONECARD_TRY(r.opt("rms_norm_eps", c.rms_norm_eps));
  ONECARD_TRY(r.opt("max_position_embeddings", c.max_position_embeddings));
  ONECARD_TRY(r.opt("num_nextn_predict_layers", c.num_nextn_predict_layers));
  ONECARD_TRY(r.opt("tie_word_embeddings", c.tie_word_embeddings));
  int64_t id = 0;
  if (j.contains("bos_token_id") && !j["bos_token_id"].is_null()) {
    ONECARD_TRY(r.get("bos_token_id", j["bos_token_id"], id));
    c.bos_token_id = id;
  }
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    ONECARD_TRY(r.get("eos_token_id", j["eos_token_id"], id));
    c.eos_token_id = id;
  }
  if (c.scoring_func != "softmax" && c.scoring_func != "sigmoid")
    return make_error("{}: key 'scoring_func' is '{}' (softmax or sigmoid expected)", path, c.scoring_func);

  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const json& rs = j["rope_scaling"];
    if (!rs.is_object()) return make_error("{}: key 'rope_scaling' is not an object", path);
    const std::string at = path + ": rope_scaling";
    const ConfigReader s(rs, at);
    std::string type;
    if (rs.contains("type")) {
      ONECARD_TRY(s.req("type", type));
    } else {
      ONECARD_TRY(s.req("rope_type", type));
    }
    if (type != "yarn") return make_error("{}: type '{}' is not supported (yarn)", at, type);
    c.yarn = true;
    ONECARD_TRY(s.req("factor", c.yarn_factor));
    ONECARD_TRY(s.req("original_max_position_embeddings", c.yarn_original_ctx));
    ONECARD_TRY(s.opt("mscale_all_dim", c.yarn_mscale_all_dim));
  }
  if (j.contains("quantization_config") && !j["quantization_config"].is_null()) {
    const json& q = j["quantization_config"];
    const std::string at = path + ": quantization_config";
    if (!q.is_object()) return make_error("{}: not an object", at);
    const ConfigReader s(q, at);
    std::string method;
    ONECARD_TRY(s.req("quant_method", method));
    if (method != "fp8") return make_error("{}: quant_method '{}' is not supported (fp8)", at, method);
    c.fp8 = true;
    if (q.contains("weight_block_size")) {
      const json& b = q["weight_block_size"];
      if (!b.is_array() || b.size() != 2 || !b[0].is_number_unsigned() || !b[1].is_number_unsigned() ||
          b[0].get<uint64_t>() == 0 || b[1].get<uint64_t>() == 0 || b[0].get<uint64_t>() > 65536 ||
          b[1].get<uint64_t>() > 65536)
        return make_error("{}: weight_block_size must be two positive sizes", at);
      c.fp8_block_rows = b[0].get<uint32_t>();
      c.fp8_block_cols = b[1].get<uint32_t>();
    }
  }
  if (c.hidden_size == 0 || c.num_hidden_layers == 0 || c.num_attention_heads == 0 || c.vocab_size == 0 ||
      c.kv_lora_rank == 0 || c.qk_rope_head_dim == 0 || c.v_head_dim == 0)
    return make_error(
        "{}: hidden_size, num_hidden_layers, num_attention_heads, vocab_size, kv_lora_rank, "
        "qk_rope_head_dim and v_head_dim must be positive",
        path);
  if (c.first_k_dense_replace > c.num_hidden_layers)
    return make_error("{}: first_k_dense_replace {} exceeds num_hidden_layers {}", path,
                      c.first_k_dense_replace, c.num_hidden_layers);
  if (c.first_k_dense_replace < c.num_hidden_layers &&
      (c.n_routed_experts == 0 || c.moe_intermediate_size == 0 || c.num_experts_per_tok == 0))
    return make_error("{}: MoE layers need n_routed_experts, moe_intermediate_size and num_experts_per_tok",
                      path);
  return c;
}

Result<Checkpoint> Checkpoint::open(const std::string& dir) {
  Checkpoint ck;
  ck.dir_ = dir;
  const std::string config_path = (fs::path(dir) / "config.json").string();
  ONECARD_ASSIGN_OR_RETURN(const json cj, read_json_file(config_path));
  ONECARD_ASSIGN_OR_RETURN(ck.config_, HfConfig::parse(cj, config_path));

  // shard file name -> the tensors the index places in it
  std::map<std::string, std::vector<std::string>> plan;
  const std::string index_path = (fs::path(dir) / "model.safetensors.index.json").string();
  if (fs::exists(index_path)) {
    ONECARD_ASSIGN_OR_RETURN(const json ij, read_json_file(index_path));
    if (!ij.is_object() || !ij.contains("weight_map") || !ij["weight_map"].is_object())
      return make_error("{}: field 'weight_map' is missing or not an object", index_path);
    for (const auto& [name, file] : ij["weight_map"].items()) {
      if (!file.is_string())
        return make_error("{}: weight_map: tensor '{}': the shard is not a string", index_path, name);
      const std::string shard = file.get<std::string>();
      // Shards are plain file names beside the index: a path could reach outside the checkpoint.
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
        return make_error("{}: weight_map: tensor '{}': shard '{}' is not a file name", index_path, name,
                          shard);
      plan[shard].push_back(name);
    }
  } else if (fs::exists(fs::path(dir) / "model.safetensors")) {
    plan["model.safetensors"];  // every tensor of the one file
  } else {
    return make_error("{}: neither model.safetensors.index.json nor model.safetensors is there", dir);
  }

  for (const auto& [shard, names] : plan) {
    const std::string path = (fs::path(dir) / shard).string();
    if (!fs::exists(path))
      return make_error("{}: shard missing (listed in the index for tensor '{}')", path,
                        names.empty() ? std::string("?") : names.front());
    ONECARD_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::open(path));
    ck.shards_.push_back(std::make_unique<SafetensorsFile>(std::move(f)));
    const size_t si = ck.shards_.size() - 1;
    const SafetensorsFile& sf = *ck.shards_.back();
    if (names.empty()) {
      for (const StTensor& t : sf.tensors()) ck.tensors_[t.name] = {&t, si};
      continue;
    }
    for (const std::string& name : names) {
      const StTensor* t = sf.find(name);
      if (t == nullptr)
        return make_error("{}: tensor '{}' is listed in the index but missing in the shard", path, name);
      ck.tensors_[name] = {t, si};
    }
  }
  return ck;
}

const StTensor* Checkpoint::find(std::string_view name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : it->second.first;
}

std::string Checkpoint::file_of(std::string_view name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? std::string() : shards_[it->second.second]->path();
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> v;
  for (const auto& kv : tensors_) v.push_back(kv.first);
  return v;
}

}  // namespace onecard::convert
