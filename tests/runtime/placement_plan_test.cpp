// The placement plan on the tensor lists of synthetic models, the whole DeepSeek-R1 Q4_K_M one among them
// (a header-only file: no data needed for a plan).
#include "runtime/placement_plan.h"

#include <gtest/gtest.h>

#include <string>

#include "base/format.h"
#include "common/test_paths.h"
#include "gguf/file.h"
#include "model/hparams.h"
#include "synth/generate.h"
#include "synth/spec.h"

namespace onecard::runtime {
namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;

struct Model {
  gguf::File file;
  model::HParams hp;
};

Model header_model(const std::string& preset, const synth::Overrides& overrides = {}) {
  // A file of its own per model: a mapped file must not be rewritten.
  static int serial = 0;
  const std::string path = test::temp_path(fmt::format("{}-header-{}.gguf", preset, ++serial));
  auto spec = synth::make_spec(preset, overrides);
  EXPECT_TRUE(spec.ok()) << spec.error().message();
  auto written = synth::generate_header(spec.value(), path);
  EXPECT_TRUE(written.ok()) << written.error().message();
  auto f = gguf::File::open_header(path);
  EXPECT_TRUE(f.ok()) << f.error().message();
  auto hp = model::read_hparams(f.value());
  EXPECT_TRUE(hp.ok()) << hp.error().message();
  return {std::move(f).value(), hp.value()};
}

PlanRequest request(const Model& m, std::optional<uint64_t> budget, uint64_t n_ctx = 256) {
  PlanRequest rq;
  rq.tensors = tensor_descs(m.file);
  rq.hp = m.hp;
  rq.n_ctx = n_ctx;
  rq.n_batch = 64;
  rq.gpu_budget = budget;
  rq.budget_source = "test";
  rq.no_gpu_reason = "the test has no GPU";
  return rq;
}

std::vector<PlaceRule> rules(std::initializer_list<const char*> texts) {
  std::vector<PlaceRule> out;
  for (const char* t : texts) {
    auto r = parse_place_rule(t);
    EXPECT_TRUE(r.ok()) << r.error().message();
    out.push_back(r.value());
  }
  return out;
}

const PlacedTensor& find(const PlacementPlan& p, const std::string& name) {
  for (const auto& t : p.tensors)
    if (t.name == name) return t;
  ADD_FAILURE() << name << " not in the plan";
  return p.tensors.front();
}

uint64_t sum(const PlacementPlan& p, Category c) {
  return p.bytes(Device::kCpu, c) + p.bytes(Device::kCuda, c);
}

TEST(PlaceRule, ParsesDevicesAndNamesTheRuleInErrors) {
  EXPECT_EQ(parse_place_rule("ffn_.*_exps.*=cpu")->device, Device::kCpu);
  EXPECT_EQ(parse_place_rule("blk\\.[0-2]\\..*=CUDA")->device, Device::kCuda);
  EXPECT_EQ(parse_place_rule("a=b=cuda0")->device, Device::kCuda);  // the last '=' splits
  const std::pair<const char*, const char*> bad[] = {
      {"ffn_exps", "expected REGEX=DEVICE"}, {"=cpu", "the regex before '=' is empty"},
      {"x=gpu", "unknown device 'gpu'"},     {"x=cuda1", "one GPU is supported"},
      {"([=cpu", "bad regex '(['"},
  };
  for (const auto& [rule, why] : bad) {
    const auto r = parse_place_rule(rule);
    ASSERT_FALSE(r.ok()) << rule;
    EXPECT_NE(r.error().message().find(fmt::format("--place '{}'", rule)), std::string::npos)
        << r.error().message();
    EXPECT_NE(r.error().message().find(why), std::string::npos) << r.error().message();
  }
}

TEST(Classify, DeepSeekTensorNames) {
  int layer = 0;
  EXPECT_EQ(classify_tensor("token_embd.weight", 61, &layer), Category::kEmbedding);
  EXPECT_EQ(layer, -1);
  EXPECT_EQ(classify_tensor("output.weight", 61, &layer), Category::kOutputHead);
  EXPECT_EQ(classify_tensor("output_norm.weight", 61, &layer), Category::kNorm);
  EXPECT_EQ(classify_tensor("blk.7.attn_kv_a_norm.weight", 61, &layer), Category::kNorm);
  EXPECT_EQ(layer, 7);
  EXPECT_EQ(classify_tensor("blk.7.attn_k_b.weight", 61, &layer), Category::kAttention);
  EXPECT_EQ(classify_tensor("blk.7.exp_probs_b.bias", 61, &layer), Category::kRouter);
  EXPECT_EQ(classify_tensor("blk.7.ffn_gate_inp.weight", 61, &layer), Category::kRouter);
  EXPECT_EQ(classify_tensor("blk.7.ffn_down_shexp.weight", 61, &layer), Category::kSharedExperts);
  EXPECT_EQ(classify_tensor("blk.7.ffn_up_exps.weight", 61, &layer), Category::kRoutedExperts);
  EXPECT_EQ(classify_tensor("blk.1.ffn_gate.weight", 61, &layer), Category::kDenseFfn);
  EXPECT_EQ(classify_tensor("blk.61.attn_q_b.weight", 61, &layer), Category::kUnused);  // MTP
  EXPECT_EQ(layer, 61);
  EXPECT_EQ(classify_tensor("rope_freqs.weight", 61, &layer), Category::kOther);
  EXPECT_EQ(classify_tensor("blk.x.attn_q_b.weight", 61, &layer), Category::kOther);
}

TEST(Plan, WithoutAGpuEverythingIsOnTheCpu) {
  const Model m = header_model("tiny");
  PlanRequest rq = request(m, std::nullopt);
  rq.rules = rules({"ffn_.*_exps.*=cpu"});
  const auto p = plan_placement(rq);
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(p->total(Device::kCuda), 0u);
  EXPECT_EQ(p->workspace, 0u);
  EXPECT_EQ(p->kv_bytes(Device::kCpu), 256u * (256 + 32) * 2 * 3);
  uint64_t bytes = 0;
  for (const auto& t : m.file.tensors()) bytes += t.n_bytes;
  EXPECT_EQ(p->weights(Device::kCpu), bytes);

  rq.rules = rules({"output\\.weight=cuda"});
  const auto refused = plan_placement(rq);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message(),
            "--place 'output\\.weight=cuda': places tensors on cuda, but the test has no GPU");
}

TEST(Plan, TheWholeModelGoesToTheGpuWhenItFits) {
  const Model m = header_model("tiny");
  const auto p = plan_placement(request(m, 4 * kGiB));
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_TRUE(p->whole_model);
  EXPECT_EQ(p->weights(Device::kCpu), 0u);
  EXPECT_EQ(p->kv_bytes(Device::kCpu), 0u);
  EXPECT_EQ(p->kv_bytes(Device::kCuda), 256u * 288 * 2 * 3);
  EXPECT_EQ(p->workspace, workspace_bytes(m.hp, 64));
  EXPECT_EQ(find(p.value(), "token_embd.weight").device, Device::kCuda);
}

TEST(Plan, EverySequenceHasAFullContextOfCache) {
  const Model m = header_model("tiny");
  PlanRequest rq = request(m, 4 * kGiB);
  rq.n_seq = 3;
  rq.kv_bytes_per_value = 4;
  const auto p = plan_placement(rq);
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(p->kv_token_bytes(), 288u * 4 * 3);
  EXPECT_EQ(p->kv_bytes(Device::kCuda), 3u * 256 * 288 * 4 * 3);
}

TEST(Plan, DefaultSplitThenSpareToTheKvCacheThenWholeExpertLayers) {
  const Model m = header_model("tiny");
  const auto all = plan_placement(request(m, 4 * kGiB));
  ASSERT_TRUE(all.ok());
  const uint64_t whole = all->total(Device::kCuda);
  const uint64_t experts = sum(all.value(), Category::kRoutedExperts);
  const uint64_t embd = find(all.value(), "token_embd.weight").bytes;
  // tiny: 3 blocks, the first dense; both MoE layers' experts have the same types, so the same size.
  const uint64_t layer_experts = experts / 2;

  // One byte short of everything but the embeddings: they and one expert layer stay on the CPU.
  auto p = plan_placement(request(m, whole - embd - 1));
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_FALSE(p->whole_model);
  EXPECT_EQ(p->expert_layers_on_gpu, std::vector<int>{1});
  EXPECT_EQ(p->bytes(Device::kCuda, Category::kRoutedExperts), layer_experts);
  EXPECT_EQ(p->weights(Device::kCpu), embd + layer_experts);
  EXPECT_EQ(find(p.value(), "blk.1.ffn_gate_exps.weight").device, Device::kCuda);
  EXPECT_EQ(find(p.value(), "blk.2.ffn_gate_exps.weight").device, Device::kCpu);
  EXPECT_EQ(p->smallest_expert_layer_left, layer_experts);

  // Exactly the default set with its cache: no expert layer, everything else of the default on the GPU.
  const uint64_t need = whole - experts - embd;
  p = plan_placement(request(m, need));
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_TRUE(p->expert_layers_on_gpu.empty());
  EXPECT_EQ(p->total(Device::kCuda), need);
  for (const auto& t : p->tensors) {
    const bool gpu = t.category != Category::kRoutedExperts && t.category != Category::kEmbedding;
    EXPECT_EQ(t.device, gpu ? Device::kCuda : Device::kCpu) << t.name;
    EXPECT_EQ(t.rule, -1);
  }
  for (Device d : p->kv_device) EXPECT_EQ(d, Device::kCuda);

  // A byte less: the cache of 256 tokens no longer fits, and the error says what would.
  const auto short_kv = plan_placement(request(m, need - 1));
  ASSERT_FALSE(short_kv.ok());
  EXPECT_NE(short_kv.error().message().find("the KV cache of 256 tokens x 1 sequence(s)"), std::string::npos)
      << short_kv.error().message();
  EXPECT_NE(short_kv.error().message().find("enough for 255 tokens"), std::string::npos)
      << short_kv.error().message();
}

TEST(Plan, AnOverflowNamesTheTensorAndTheBudget) {
  const Model m = header_model("tiny");
  const auto all = plan_placement(request(m, 4 * kGiB));
  ASSERT_TRUE(all.ok());
  // Room for the workspace, the norms and the router: the first attention tensor is the one that does not
  // fit.
  const uint64_t budget = workspace_bytes(m.hp, 64) + sum(all.value(), Category::kNorm) +
                          sum(all.value(), Category::kRouter) + 100;
  const auto p = plan_placement(request(m, budget));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(
      p.error().message(),
      fmt::format("tensor 'blk.0.attn_q_a.weight' (attention, 128.00 KiB) does not fit the GPU budget of {} "
                  "(test): {} placed before it, the compute workspace included; raise --gpu-memory or keep "
                  "some on the CPU with --place (e.g. 'output\\.weight=cpu' or "
                  "'blk\\.[3-6][0-9]\\.attn_.*=cpu')",
                  human_bytes(budget), human_bytes(budget - 100)));
}

TEST(Plan, RulesFirstMatchWins) {
  const Model m = header_model("tiny");
  PlanRequest rq = request(m, 4 * kGiB);
  rq.rules = rules({"blk\\.1\\..*=cpu", "blk\\..*_exps.*=cuda", "token_embd\\.weight=cpu", "nothing=cpu"});
  const auto p = plan_placement(rq);
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(find(p.value(), "blk.1.ffn_up_exps.weight").device, Device::kCpu);
  EXPECT_EQ(find(p.value(), "blk.1.ffn_up_exps.weight").rule, 0);
  EXPECT_EQ(find(p.value(), "blk.1.attn_q_b.weight").device, Device::kCpu);
  EXPECT_EQ(find(p.value(), "blk.2.ffn_up_exps.weight").device, Device::kCuda);
  EXPECT_EQ(find(p.value(), "blk.2.ffn_up_exps.weight").rule, 1);
  EXPECT_EQ(find(p.value(), "token_embd.weight").device, Device::kCpu);
  EXPECT_EQ(find(p.value(), "blk.2.attn_q_b.weight").rule, -1);
  // Layer 1's attention is on the CPU, so is its cache.
  EXPECT_EQ(p->kv_device, (std::vector<Device>{Device::kCuda, Device::kCpu, Device::kCuda}));
  EXPECT_EQ(p->unmatched_rules, std::vector<std::string>{"nothing=cpu"});
  EXPECT_FALSE(describe_plan(p.value()).empty());
  EXPECT_EQ(describe_plan(p.value()).back(), "warning: --place 'nothing=cpu' matches no tensor");
}

TEST(Plan, RulesMayKeepEverythingOnTheCpu) {
  const Model m = header_model("tiny");
  PlanRequest rq = request(m, 4 * kGiB);
  rq.rules = rules({".*=cpu"});
  const auto p = plan_placement(rq);
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_FALSE(p->whole_model);
  EXPECT_EQ(p->total(Device::kCuda), 0u);
  EXPECT_EQ(p->workspace, 0u);
  EXPECT_EQ(p->kv_bytes(Device::kCpu), 256u * 288 * 2 * 3);
}

TEST(Plan, CudaRulesBeyondTheBudgetNameTheRuleAndTheTensor) {
  const Model m = header_model("tiny");
  const auto all = plan_placement(request(m, 4 * kGiB));
  ASSERT_TRUE(all.ok());
  const uint64_t experts = sum(all.value(), Category::kRoutedExperts);
  PlanRequest rq = request(m, experts);  // the experts alone, but the workspace comes first
  rq.rules = rules({".*_exps.*=cuda"});
  const auto p = plan_placement(rq);
  ASSERT_FALSE(p.ok());
  const std::string& e = p.error().message();
  EXPECT_NE(e.find("--place '.*_exps.*=cuda' puts tensor 'blk.2."), std::string::npos) << e;
  EXPECT_NE(e.find(fmt::format("the GPU budget of {} (test)", human_bytes(experts))), std::string::npos) << e;
}

TEST(Plan, MtpLayersStayOnTheCpuUnread) {
  // A file with block_count 4 and nextn_predict_layers 0 planned as if its last block were MTP.
  synth::Overrides four_layers;
  four_layers.layers = 4;
  Model m = header_model("tiny", four_layers);
  m.hp.n_nextn = 1;
  const auto p = plan_placement(request(m, 4 * kGiB));
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(find(p.value(), "blk.3.attn_q_b.weight").category, Category::kUnused);
  EXPECT_EQ(find(p.value(), "blk.3.attn_q_b.weight").device, Device::kCpu);
  EXPECT_EQ(p->kv_device.size(), 3u);
}

// DeepSeek-R1 at Q4_K_M (unsloth's published mix: Q4_K, Q6_K for output, half of attn_kv_b, ffn_down in the
// use-more-bits layers) on a 24 GiB card with 128K tokens of context.
TEST(Plan, DeepSeekR1Q4KMFitsA24GiBCardWith128KContext) {
  const Model m = header_model("r1");
  ASSERT_FALSE(m.file.has_data());
  PlanRequest rq = request(m, 24 * kGiB, 131072);
  rq.n_batch = 512;
  const auto p = plan_placement(rq);
  ASSERT_TRUE(p.ok()) << p.error().message();

  // Q4_K: 144 bytes per 256 weights, Q6_K 210.
  const auto q4k = [](uint64_t n) { return n / 256 * 144; };
  const auto q6k = [](uint64_t n) { return n / 256 * 210; };
  // Per layer q_a [7168, 1536], q_b [1536, 128*192], kv_a_mqa [7168, 576], attn_output [128*128, 7168] in
  // Q4_K; kv_b [512, 128*256] Q6_K in 30 of the 61 layers.
  const uint64_t attention = 61 * q4k(7168 * 1536 + 1536 * 24576 + 7168 * 576 + 16384 * 7168) +
                             31 * q4k(512 * 32768) + 30 * q6k(512 * 32768);
  EXPECT_EQ(attention, 6549811200u);
  EXPECT_EQ(p->bytes(Device::kCuda, Category::kAttention), attention);
  // 58 MoE layers: gate and up [7168, 2048] Q4_K, down [2048, 7168] Q6_K in 27 of them.
  const uint64_t shared = 58 * 2 * q4k(7168 * 2048) + 31 * q4k(2048 * 7168) + 27 * q6k(2048 * 7168);
  EXPECT_EQ(p->bytes(Device::kCuda, Category::kSharedExperts), shared);
  // 3 dense layers: gate and up [7168, 18432] Q4_K, down Q6_K.
  EXPECT_EQ(p->bytes(Device::kCuda, Category::kDenseFfn), 3 * (2 * q4k(7168 * 18432) + q6k(18432 * 7168)));
  EXPECT_EQ(p->bytes(Device::kCuda, Category::kOutputHead), q6k(7168ull * 129280));
  // F32 router [7168, 256] and selection bias [256].
  EXPECT_EQ(p->bytes(Device::kCuda, Category::kRouter), 58 * (7168 * 256 + 256) * 4u);
  EXPECT_EQ(p->bytes(Device::kCuda, Category::kNorm), (61 * (7168 * 2 + 1536 + 512) + 7168) * 4u);
  // The MLA cache: (512 + 64) values x 61 layers x 2 bytes = 70272 bytes per token.
  EXPECT_EQ(p->kv_token_bytes(), 70272u);
  EXPECT_EQ(p->kv_bytes(Device::kCuda), 131072ull * 70272);
  EXPECT_EQ(p->kv_bytes(Device::kCpu), 0u);

  // f32 activations per token: residual, normed input, attention and FFN outputs (4 x 7168), queries
  // (128 x 192), absorbed queries and latent outputs (2 x 128 x 512), head outputs (128 x 128), a block of
  // 128 scores per head, the dense MLP's gate and up (2 x 18432), logits (129280); for 512 tokens: 748.5 MiB.
  EXPECT_EQ(p->workspace,
            512ull * 4 * (4 * 7168 + 128 * 192 + 2 * 128 * 512 + 128 * 128 + 128 * 128 + 2 * 18432 + 129280));
  EXPECT_FALSE(p->whole_model);
  EXPECT_TRUE(p->expert_layers_on_gpu.empty());  // 5.3 GiB spare, the smallest expert layer is 5.9
  EXPECT_LE(p->total(Device::kCuda), 24 * kGiB);
  EXPECT_NEAR(static_cast<double>(p->total(Device::kCuda)) / kGiB, 18.67, 0.01);
  EXPECT_EQ(p->bytes(Device::kCpu, Category::kEmbedding), q4k(7168ull * 129280));
  // Routed experts [7168, 2048, 256] x 3 per layer, ffn_down Q6_K in 27 layers.
  const uint64_t experts_per = 7168ull * 2048 * 256;
  EXPECT_EQ(p->bytes(Device::kCpu, Category::kRoutedExperts),
            58 * 2 * q4k(experts_per) + 31 * q4k(experts_per) + 27 * q6k(experts_per));
  EXPECT_EQ(p->smallest_expert_layer_left, 3 * q4k(experts_per));
  EXPECT_NEAR(static_cast<double>(p->total(Device::kCpu)) / kGiB, 367.41, 0.01);

  // 40 GiB: 21.3 GiB spare take the first three routed-expert layers (5.9-6.8 GiB each), whole.
  rq.gpu_budget = 40 * kGiB;
  const auto bigger = plan_placement(rq);
  ASSERT_TRUE(bigger.ok()) << bigger.error().message();
  EXPECT_EQ(bigger->expert_layers_on_gpu, (std::vector<int>{3, 4, 5}));
  EXPECT_LE(bigger->total(Device::kCuda), 40 * kGiB);
  EXPECT_GT(bigger->total(Device::kCuda) + bigger->smallest_expert_layer_left, 40 * kGiB);
}

}  // namespace
}  // namespace onecard::runtime
