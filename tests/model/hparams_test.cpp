#include "model/hparams.h"

#include <cmath>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_paths.h"
#include "gguf/writer.h"

namespace onecard::model {
namespace {

nlohmann::json load_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

class GoldenHParams : public testing::TestWithParam<std::string> {};

// The golden .json is the official implementation's ModelArgs; our reading of the GGUF must agree with it.
TEST_P(GoldenHParams, MatchTheReferenceConfig) {
  const std::string base = test::golden_dir() + "/models/" + GetParam();
  const auto cfg = load_json(base + ".json");
  auto file = gguf::File::open(base + ".gguf");
  ASSERT_TRUE(file.ok()) << file.error().message();
  auto r = read_hparams(file.value());
  ASSERT_TRUE(r.ok()) << r.error().message();
  const HParams& hp = r.value();
  EXPECT_EQ(hp.n_vocab, cfg["vocab_size"].get<uint32_t>());
  EXPECT_EQ(hp.n_embd, cfg["dim"].get<uint32_t>());
  EXPECT_EQ(hp.n_ff, cfg["inter_dim"].get<uint32_t>());
  EXPECT_EQ(hp.n_ff_exp, cfg["moe_inter_dim"].get<uint32_t>());
  EXPECT_EQ(hp.n_layer, cfg["n_layers"].get<uint32_t>());
  EXPECT_EQ(hp.n_layer_decode(), cfg["n_layers"].get<uint32_t>());
  EXPECT_EQ(hp.n_dense_lead, cfg["n_dense_layers"].get<uint32_t>());
  EXPECT_EQ(hp.n_head, cfg["n_heads"].get<uint32_t>());
  EXPECT_EQ(hp.n_expert, cfg["n_routed_experts"].get<uint32_t>());
  EXPECT_EQ(hp.n_expert_shared, cfg["n_shared_experts"].get<uint32_t>());
  EXPECT_EQ(hp.n_expert_used, cfg["n_activated_experts"].get<uint32_t>());
  EXPECT_EQ(hp.n_group, cfg["n_expert_groups"].get<uint32_t>());
  EXPECT_EQ(hp.n_group_used, cfg["n_limited_groups"].get<uint32_t>());
  EXPECT_EQ(gating_name(hp.gating), cfg["score_func"].get<std::string>());
  EXPECT_FLOAT_EQ(hp.expert_weights_scale, cfg["route_scale"].get<float>());
  // The reference normalises sigmoid weights and leaves softmax weights as they are.
  EXPECT_EQ(hp.expert_weights_norm, cfg["score_func"] == "sigmoid");
  EXPECT_EQ(hp.q_lora_rank, cfg["q_lora_rank"].get<uint32_t>());
  EXPECT_EQ(hp.kv_lora_rank, cfg["kv_lora_rank"].get<uint32_t>());
  EXPECT_EQ(hp.qk_nope, cfg["qk_nope_head_dim"].get<uint32_t>());
  EXPECT_EQ(hp.qk_rope, cfg["qk_rope_head_dim"].get<uint32_t>());
  EXPECT_EQ(hp.v_head, cfg["v_head_dim"].get<uint32_t>());
  EXPECT_FLOAT_EQ(hp.rope_freq_base, cfg["rope_theta"].get<float>());
  EXPECT_EQ(hp.n_ctx_train, cfg["max_seq_len"].get<uint32_t>());
  EXPECT_EQ(hp.layout == MlaLayout::kSplit, cfg["kv_layout"] == "k_b_v_b");
  EXPECT_EQ(hp.gating == Gating::kSigmoid, cfg["gate_bias"].get<bool>());
  // The reference applies YaRN only when the context exceeds the original one.
  const bool yarn = cfg["max_seq_len"].get<uint32_t>() > cfg["original_seq_len"].get<uint32_t>();
  EXPECT_EQ(hp.yarn.enabled, yarn);
  if (yarn) {
    EXPECT_FLOAT_EQ(hp.yarn.factor, cfg["rope_factor"].get<float>());
    EXPECT_EQ(hp.yarn.original_context, cfg["original_seq_len"].get<uint32_t>());
    EXPECT_NEAR(hp.yarn.log_multiplier, 0.1 * cfg["mscale"].get<double>(), 1e-7);
    const double mscale =
        0.1 * cfg["mscale"].get<double>() * std::log(cfg["rope_factor"].get<double>()) + 1.0;
    EXPECT_NEAR(hp.attention_scale(), mscale * mscale / std::sqrt(hp.qk_head_dim()), 1e-6);
  } else {
    EXPECT_NEAR(hp.attention_scale(), 1.0 / std::sqrt(hp.qk_head_dim()), 1e-7);
  }
}

// The analytic count must equal the parameters the file really holds.
TEST_P(GoldenHParams, ParameterCountEqualsTensors) {
  auto file = gguf::File::open(test::golden_dir() + "/models/" + GetParam() + ".gguf");
  ASSERT_TRUE(file.ok());
  uint64_t elements = 0;
  for (const auto& t : file->tensors()) elements += t.n_elements;
  EXPECT_EQ(count_params(read_hparams(file.value()).value()).total, elements);
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenHParams,
                         testing::Values("tiny-v3-f32", "tiny-v3-bf16", "tiny-v3-f16-kbvb",
                                         "tiny-v2lite-f16"));

// A deepseek2 header with V3's real hyper-parameters and no tensors.
gguf::Writer v3_header() {
  using gguf::MetaValue;
  gguf::Writer w;
  w.set("general.architecture", MetaValue::string("deepseek2"));
  auto u = [&w](const char* k, uint32_t v) { w.set(std::string("deepseek2.") + k, MetaValue::u32(v)); };
  auto f = [&w](const char* k, float v) { w.set(std::string("deepseek2.") + k, MetaValue::f32(v)); };
  u("block_count", 61);
  u("context_length", 163840);
  u("embedding_length", 7168);
  u("feed_forward_length", 18432);
  u("attention.head_count", 128);
  u("attention.head_count_kv", 128);
  u("attention.q_lora_rank", 1536);
  u("attention.kv_lora_rank", 512);
  u("attention.key_length", 192);
  u("attention.value_length", 128);
  u("rope.dimension_count", 64);
  f("rope.freq_base", 10000.0f);
  f("attention.layer_norm_rms_epsilon", 1e-6f);
  u("leading_dense_block_count", 3);
  u("expert_count", 256);
  u("expert_used_count", 8);
  u("expert_shared_count", 1);
  u("expert_feed_forward_length", 2048);
  f("expert_weights_scale", 2.5f);
  w.set("deepseek2.expert_weights_norm", MetaValue::boolean(true));
  u("expert_gating_func", 2);
  u("expert_group_count", 8);
  u("expert_group_used_count", 4);
  u("vocab_size", 129280);
  w.set("deepseek2.rope.scaling.type", MetaValue::string("yarn"));
  f("rope.scaling.factor", 40.0f);
  u("rope.scaling.original_context_length", 4096);
  f("rope.scaling.yarn_log_multiplier", 0.1f);
  return w;
}

Result<HParams> parse(const gguf::Writer& w, std::vector<uint8_t>& storage) {
  storage = w.header_bytes();
  ONECARD_ASSIGN_OR_RETURN(gguf::File f, gguf::File::parse(storage, "test.gguf"));
  return read_hparams(f);
}

TEST(HParams, DeepSeekV3Figures) {
  std::vector<uint8_t> bytes;
  auto r = parse(v3_header(), bytes);
  ASSERT_TRUE(r.ok()) << r.error().message();
  const ParamCount pc = count_params(r.value());
  EXPECT_EQ(pc.total, 671026419200ull);                                      // DeepSeek's "671B"
  EXPECT_NEAR(static_cast<double>(pc.active_per_token) / 1e9, 37.55, 0.01);  // "37B activated"
  EXPECT_EQ(r->kv_cache_bytes_per_token(2), 61u * 576u * 2u);                // 70 KB per token in bf16
  EXPECT_NEAR(r->yarn_mscale(), 1.0 + 0.1 * std::log(40.0), 1e-6);
}

TEST(HParams, MtpLayersAreSkipped) {
  auto w = v3_header();
  w.set("deepseek2.block_count", gguf::MetaValue::u32(62));
  w.set("deepseek2.nextn_predict_layers", gguf::MetaValue::u32(1));
  std::vector<uint8_t> bytes;
  auto r = parse(w, bytes);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->n_layer_decode(), 61u);
  EXPECT_EQ(count_params(r.value()).total, 671026419200ull);
}

TEST(HParams, OptionalKeysDefaultAsOldFilesImply) {
  // V3's header without the keys that old V2 files lack: gating, groups, norm, yarn, q_lora.
  std::vector<uint8_t> full = v3_header().header_bytes();
  gguf::Writer v2;
  auto f = gguf::File::parse(full, "v3.gguf").value();
  for (const auto& kv : f.metadata()) {
    const std::string key(kv.key);
    if (key.find("gating") != std::string::npos || key.find("group") != std::string::npos ||
        key.find("weights_norm") != std::string::npos || key.find("rope.scaling") != std::string::npos ||
        key.find("q_lora") != std::string::npos) {
      continue;
    }
    v2.set(key, gguf::MetaValue::from(kv.value));
  }
  std::vector<uint8_t> bytes;
  auto r = parse(v2, bytes);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->gating, Gating::kSoftmax);
  EXPECT_EQ(r->n_group, 1u);
  EXPECT_EQ(r->n_group_used, 1u);
  EXPECT_FALSE(r->expert_weights_norm);
  EXPECT_FALSE(r->yarn.enabled);
  EXPECT_EQ(r->q_lora_rank, 0u);
}

void expect_refused(gguf::Writer w, const std::string& fragment) {
  std::vector<uint8_t> bytes;
  auto r = parse(w, bytes);
  ASSERT_FALSE(r.ok()) << "expected an error containing: " << fragment;
  EXPECT_NE(r.error().message().find(fragment), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("test.gguf"), std::string::npos) << r.error().message();
}

TEST(HParams, RefusesUnsupportedOrInconsistentFiles) {
  auto w = v3_header();
  w.set("general.architecture", gguf::MetaValue::string("llama"));
  expect_refused(std::move(w), "architecture 'llama' is not supported");

  w = v3_header();
  w.set("deepseek2.block_count", gguf::MetaValue::string("61"));
  expect_refused(std::move(w), "metadata key 'deepseek2.block_count': expected uint32, found string");

  w = v3_header();
  w.set("deepseek2.expert_group_count", gguf::MetaValue::u32(7));
  expect_refused(std::move(w), "expert_group_count 7 must divide expert_count 256");

  w = v3_header();
  w.set("deepseek2.expert_group_used_count", gguf::MetaValue::u32(9));
  expect_refused(std::move(w), "expert_group_used_count 9");

  w = v3_header();
  w.set("deepseek2.expert_used_count", gguf::MetaValue::u32(300));
  expect_refused(std::move(w), "expert_used_count 300");

  w = v3_header();
  w.set("deepseek2.expert_gating_func", gguf::MetaValue::u32(3));
  expect_refused(std::move(w), "gating function 3 is unknown");

  w = v3_header();
  w.set("deepseek2.attention.head_count_kv", gguf::MetaValue::u32(1));
  expect_refused(std::move(w), "attention.key_length_mla is missing");

  w = v3_header();
  w.set("deepseek2.rope.scaling.type", gguf::MetaValue::string("linear"));
  expect_refused(std::move(w), "rope scaling 'linear' is not supported");

  w = v3_header();
  w.set("deepseek2.rope.dimension_count", gguf::MetaValue::u32(63));
  expect_refused(std::move(w), "rope.dimension_count 63 must be even");
}

TEST(HParams, MissingRequiredKeyIsNamed) {
  gguf::Writer w;
  w.set("general.architecture", gguf::MetaValue::string("deepseek2"));
  w.set("deepseek2.block_count", gguf::MetaValue::u32(3));
  expect_refused(std::move(w), "missing metadata key 'deepseek2.embedding_length'");
}

}  // namespace
}  // namespace onecard::model
