// `onecard inspect --plan` and the GPU placement flags as a user runs them: the whole DeepSeek-R1 Q4_K_M
// planned from a header-only file, without a GPU; the model commands refusing GPU requests they cannot serve.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/run_command.h"
#include "common/test_paths.h"

namespace onecard {
namespace {

using nlohmann::json;

const std::string& r1_header() {
  static const std::string path = [] {
    const std::string p = test::temp_path("r1-header.gguf");
    const auto r = test::run_onecard("gen --preset r1 --header-only -o '" + p + "'");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("header only (describing 376.77 GiB of tensors, absent), 1025 tensors"),
              std::string::npos)
        << r.out;
    return p;
  }();
  return path;
}

const std::string& tiny_model() {
  static const std::string path = [] {
    const std::string p = test::temp_path("placement-tiny.gguf");
    const auto r = test::run_onecard("gen --preset tiny --quiet -o '" + p + "'");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return p;
  }();
  return path;
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(InspectPlan, R1Q4KMFitsA24GiBCardWith128KContext) {
  const auto r =
      test::run_onecard("inspect '" + r1_header() + "' --plan --gpu-memory 24GiB --ctx-size 131072");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* line : {
           "header only (no tensor data)",
           "Placement plan for a GPU budget of 24.00 GiB (--gpu-memory 24GiB)",
           "KV cache (131072 tokens x 70272 B, 61 layers, bf16)",
           "8.58 GiB",
           "routed experts (58 layers: 3-60)",
           "GPU: 18.67 GiB of 24.00 GiB: fits, 5.33 GiB spare",
           "no routed-expert layer fits the rest (the smallest takes 5.91 GiB)",
           "token embeddings stay on the CPU",
       }) {
    EXPECT_TRUE(has(r.out, line)) << line << "\n" << r.out;
  }

  const auto j =
      test::run_onecard("inspect --json '" + r1_header() + "' --plan --gpu-memory 24GiB --ctx-size 131072");
  ASSERT_EQ(j.exit_code, 0) << j.err;
  const json out = json::parse(j.out);
  EXPECT_FALSE(out["has_data"].get<bool>());
  const json& plan = out["plan"];
  EXPECT_EQ(plan["kv_bytes_per_token"], 70272);
  EXPECT_EQ(plan["devices"]["cuda"]["kv_cache"].get<uint64_t>(), 131072ull * 70272);
  EXPECT_LE(plan["devices"]["cuda"]["total"].get<uint64_t>(), 24ull << 30);
  EXPECT_EQ(plan["tensors"]["token_embd.weight"], "cpu");
  EXPECT_EQ(plan["tensors"]["blk.60.ffn_up_exps.weight"], "cpu");
  EXPECT_EQ(plan["tensors"]["blk.60.attn_kv_b.weight"], "cuda");
  EXPECT_EQ(plan["tensors"]["output.weight"], "cuda");
}

TEST(InspectPlan, WithoutAGpuOrBudgetTheGpuIsNamedMissing) {
  const auto r = test::run_onecard("inspect '" + r1_header() + "' --plan");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  if (has(r.out, "CUDA device 0")) GTEST_SKIP() << "this machine has a GPU";
  EXPECT_TRUE(has(r.out, "Placement plan: CPU only")) << r.out;
  EXPECT_TRUE(has(r.out, "no GPU: ")) << r.out;
  EXPECT_TRUE(has(r.out, "--gpu-memory SIZE (e.g. 24GiB) plans for one")) << r.out;
  EXPECT_TRUE(has(r.out, "KV cache (4096 tokens x 70272 B, 61 layers, bf16)")) << r.out;

  const auto cuda = test::run_onecard("inspect '" + r1_header() + "' --plan --place 'output\\.weight=cuda'");
  EXPECT_EQ(cuda.exit_code, 1);
  EXPECT_TRUE(has(cuda.err, "--place 'output\\.weight=cuda': places tensors on cuda, but ")) << cuda.err;
  EXPECT_TRUE(has(cuda.err, "and no --gpu-memory was given to plan for one")) << cuda.err;
}

TEST(InspectPlan, ErrorsNameTheFlagRuleOrTensor) {
  const std::string plan = "inspect '" + r1_header() + "' --plan ";
  auto r = test::run_onecard(plan + "--gpu-memory 8GiB");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.err, "does not fit the GPU budget of 8.00 GiB (--gpu-memory 8GiB)")) << r.err;
  EXPECT_TRUE(has(r.err, "tensor 'blk.")) << r.err;

  r = test::run_onecard(plan + "--gpu-memory 24GiB --place 'blk\\.[3-9]\\.ffn_.*_exps.*=cuda'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.err, "--place 'blk\\.[3-9]\\.ffn_.*_exps.*=cuda' puts tensor 'blk.")) << r.err;
  EXPECT_TRUE(has(r.err, "the GPU budget of 24.00 GiB (--gpu-memory 24GiB) is exhausted")) << r.err;

  r = test::run_onecard(plan + "--gpu-memory 16GiB --ctx-size 131072");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.err, "the KV cache of 131072 tokens x 1 sequence(s)")) << r.err;
  EXPECT_TRUE(has(r.err, "lower --ctx-size or raise --gpu-memory")) << r.err;

  r = test::run_onecard(plan + "--gpu-memory 24");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.err, "--gpu-memory: '24' has no unit")) << r.err;
  r = test::run_onecard(plan + "--gpu-memory 24GiB --place 'x=gpu'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.err, "--place 'x=gpu': unknown device 'gpu'")) << r.err;
  r = test::run_onecard(plan + "--gpu-memory 24GiB --place 'nothing=cpu'");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(has(r.out, "warning: --place 'nothing=cpu' matches no tensor")) << r.out;
}

TEST(InspectPlan, ASmallModelGoesWhole) {
  const auto r = test::run_onecard("inspect '" + tiny_model() + "' --plan --gpu-memory 1GiB --ctx-size 256");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "the whole model is on the GPU")) << r.out;
  EXPECT_FALSE(has(r.out, "  cpu ")) << r.out;

  const auto capped =
      test::run_onecard("inspect '" + tiny_model() + "' --plan --gpu-memory 1GiB --ctx-size 9999");
  ASSERT_EQ(capped.exit_code, 0) << capped.err;
  EXPECT_TRUE(has(capped.out, "--ctx-size 9999 is capped at the model's context of 256")) << capped.out;
}

TEST(InspectPlan, ATruncatedFileIsShownWithAWarning) {
  const std::string cut = test::temp_path("truncated.gguf");
  ASSERT_EQ(test::run_command("head -c 200000 '" + tiny_model() + "' > '" + cut + "'").exit_code, 0);
  const auto r = test::run_onecard("inspect '" + cut + "' --plan");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "tensor data missing (truncated?)")) << r.out;
  EXPECT_TRUE(has(r.err, "warning: " + cut + ": offset ")) << r.err;
  EXPECT_TRUE(has(r.err, "extend past the end of the file")) << r.err;
  EXPECT_TRUE(has(r.out, "Placement plan")) << r.out;
}

TEST(ModelFlags, GpuRequestsFailClearlyBeforeLoading) {
  const std::string run = "run -m '" + tiny_model() + "' -p 'Hi' -n 2 -t 2 ";
  auto r = test::run_onecard(run + "--gpu-memory 24GiB");
  // With a card the model runs on it (model_gpu_test checks its logits); the refusals are for machines
  // without.
  if (r.exit_code == 0) GTEST_SKIP() << "a usable CUDA device is present";
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.err, "--gpu-memory asks for the GPU")) << r.err;
  EXPECT_TRUE(has(r.err, "no usable CUDA device") || has(r.err, "this build has no CUDA backend")) << r.err;
  EXPECT_TRUE(has(r.err, "--plan")) << r.err;

  r = test::run_onecard(run + "--place 'output\\.weight=cuda'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.err, "--place 'output\\.weight=cuda' asks for the GPU")) << r.err;
  r = test::run_onecard(run + "--gpu-memory lots");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.err, "--gpu-memory: 'lots' is not a size")) << r.err;
  r = test::run_onecard(run + "--place 'x=tpu'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.err, "--place 'x=tpu': unknown device 'tpu'")) << r.err;

  r = test::run_onecard(run + "--place 'ffn_.*_exps.*=cpu' --place '.*=cpu'");
  EXPECT_EQ(r.exit_code, 0) << r.err;

  r = test::run_onecard("logits -m '" + tiny_model() +
                        "' --tokens /dev/null --out /dev/null --gpu-memory 1GiB");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.err, "--gpu-memory asks for the GPU")) << r.err;
}

TEST(ModelFlags, AHeaderOnlyFileIsNotLoaded) {
  const auto r = test::run_onecard("run -m '" + r1_header() + "' -p 'Hi' -n 1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.err, "this is a header-only file")) << r.err;
  EXPECT_TRUE(has(r.err, "it cannot be loaded, only inspected")) << r.err;
}

}  // namespace
}  // namespace onecard
