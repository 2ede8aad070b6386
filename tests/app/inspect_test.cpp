// `onecard inspect` as a user runs it, checked against the reference configuration beside each golden model.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/run_command.h"
#include "common/test_paths.h"

namespace onecard {
namespace {

using nlohmann::json;

json inspect_json(const std::string& path) {
  const auto r = test::run_onecard("inspect --json '" + path + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out);
}

class InspectGolden : public testing::TestWithParam<std::string> {};

TEST_P(InspectGolden, PrintsTheReferenceHyperParameters) {
  const std::string base = test::golden_dir() + "/models/" + GetParam();
  std::ifstream in(base + ".json");
  const json cfg = json::parse(in);
  const json out = inspect_json(base + ".gguf");
  ASSERT_TRUE(out.contains("deepseek")) << out.dump();
  const json& hp = out["deepseek"];
  EXPECT_EQ(hp["n_vocab"], cfg["vocab_size"]);
  EXPECT_EQ(hp["n_embd"], cfg["dim"]);
  EXPECT_EQ(hp["n_ff"], cfg["inter_dim"]);
  EXPECT_EQ(hp["n_ff_exp"], cfg["moe_inter_dim"]);
  EXPECT_EQ(hp["n_layer"], cfg["n_layers"]);
  EXPECT_EQ(hp["n_dense_lead"], cfg["n_dense_layers"]);
  EXPECT_EQ(hp["n_head"], cfg["n_heads"]);
  EXPECT_EQ(hp["n_expert"], cfg["n_routed_experts"]);
  EXPECT_EQ(hp["n_expert_shared"], cfg["n_shared_experts"]);
  EXPECT_EQ(hp["n_expert_used"], cfg["n_activated_experts"]);
  EXPECT_EQ(hp["n_group"], cfg["n_expert_groups"]);
  EXPECT_EQ(hp["n_group_used"], cfg["n_limited_groups"]);
  EXPECT_EQ(hp["gating"], cfg["score_func"]);
  EXPECT_FLOAT_EQ(hp["expert_weights_scale"].get<float>(), cfg["route_scale"].get<float>());
  EXPECT_EQ(hp["q_lora_rank"], cfg["q_lora_rank"]);
  EXPECT_EQ(hp["kv_lora_rank"], cfg["kv_lora_rank"]);
  EXPECT_EQ(hp["qk_nope"], cfg["qk_nope_head_dim"]);
  EXPECT_EQ(hp["qk_rope"], cfg["qk_rope_head_dim"]);
  EXPECT_EQ(hp["v_head"], cfg["v_head_dim"]);
  EXPECT_EQ(hp["mla_layout"], cfg["kv_layout"] == "k_b_v_b" ? "split" : "combined");
  EXPECT_EQ(hp["n_ctx_train"], cfg["max_seq_len"]);
  EXPECT_FLOAT_EQ(hp["rope_freq_base"].get<float>(), cfg["rope_theta"].get<float>());
  const bool yarn = cfg["max_seq_len"].get<int>() > cfg["original_seq_len"].get<int>();
  EXPECT_EQ(hp["yarn"]["enabled"], yarn);
  if (yarn) {
    EXPECT_FLOAT_EQ(hp["yarn"]["factor"].get<float>(), cfg["rope_factor"].get<float>());
    EXPECT_EQ(hp["yarn"]["original_context"], cfg["original_seq_len"]);
  }
  // The implied figures: every parameter of the file, and 2 bytes per cached value per layer in bf16.
  uint64_t elements = 0;
  for (const auto& t : out["tensors"]) {
    uint64_t n = 1;
    for (const auto& d : t["shape"]) n *= d.get<uint64_t>();
    elements += n;
  }
  EXPECT_EQ(hp["params_total"].get<uint64_t>(), elements);
  EXPECT_EQ(hp["kv_cache_bytes_per_token_bf16"].get<uint64_t>(),
            2ull * cfg["n_layers"].get<uint64_t>() *
                (cfg["kv_lora_rank"].get<uint64_t>() + cfg["qk_rope_head_dim"].get<uint64_t>()));
}

TEST_P(InspectGolden, TextReportNamesTheKeyFigures) {
  const auto r = test::run_onecard("inspect '" + test::golden_dir() + "/models/" + GetParam() + ".gguf'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* line : {"DeepSeek hyper-parameters", "parameters ", "KV cache per token",
                           "Totals per type", "general.architecture", "\"deepseek2\""}) {
    EXPECT_NE(r.out.find(line), std::string::npos) << line;
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, InspectGolden,
                         testing::Values("tiny-v3-f32", "tiny-v3-bf16", "tiny-v3-f16-kbvb",
                                         "tiny-v2lite-f16"));

TEST(Inspect, VocabularyOnlyFiles) {
  for (const auto& [name, vocab] : {std::pair{"deepseek-llm", 102400}, std::pair{"deepseek-coder", 32256}}) {
    const json out = inspect_json(test::golden_dir() + "/tokenizer/ggml-vocab-" + name + ".gguf");
    EXPECT_EQ(out["tensors"].size(), 0u);
    EXPECT_EQ(out["metadata"]["general.architecture"], "llama");
    EXPECT_EQ(out["metadata"]["llama.vocab_size"], vocab);
    EXPECT_EQ(out["metadata"]["tokenizer.ggml.tokens"]["count"], vocab);
    EXPECT_EQ(out["metadata"]["tokenizer.ggml.pre"], name);
    EXPECT_FALSE(out.contains("deepseek"));
  }
}

TEST(Inspect, BadFilesFailWithTheirReason) {
  auto r = test::run_onecard("inspect /nonexistent.gguf");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent.gguf: cannot open"), std::string::npos) << r.err;
  const std::string not_gguf = test::golden_dir() + "/models/tiny-v3-f32.json";
  r = test::run_onecard("inspect '" + not_gguf + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not a GGUF file"), std::string::npos) << r.err;
  r = test::run_onecard("inspect");
  EXPECT_EQ(r.exit_code, 2);
}

TEST(Inspect, SystemReportShowsCpuFeatures) {
  const auto r = test::run_onecard("inspect --system");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("CPU features"), std::string::npos);
  EXPECT_NE(r.out.find("CUDA"), std::string::npos);
}

TEST(Inspect, HelpDescribesEveryOption) {
  const auto r = test::run_onecard("inspect --help");
  ASSERT_EQ(r.exit_code, 0);
  for (const char* opt : {"--system", "--json", "--all-tensors", "--max-array", "--plan", "--gpu-memory",
                          "--place", "--ctx-size", "--parallel", "--batch-size", "--kv-type"}) {
    EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
  }
}

}  // namespace
}  // namespace onecard
