#include "synth/generate.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/test_paths.h"
#include "gguf/file.h"
#include "model/deepseek2.h"
#include "model/hparams.h"
#include "model/weight_scheme.h"
#include "synth/vocab.h"

namespace onecard::synth {
namespace {

using gguf::GgmlType;

ModelSpec spec_of(std::string_view preset, const Overrides& o = {}) {
  auto r = make_spec(preset, o);
  EXPECT_TRUE(r.ok()) << r.error().message();
  return r.ok() ? r.value() : ModelSpec{};
}

std::string write(const ModelSpec& s, const std::string& name) {
  const std::string path = test::temp_path(name);
  const auto r = generate(s, path, false);
  EXPECT_TRUE(r.ok()) << r.error().message();
  if (r.ok()) {
    EXPECT_EQ(r->file_bytes, std::filesystem::file_size(path));
    EXPECT_EQ(r->n_tensors, plan_tensors(s).size());
  }
  return path;
}

void expect_hparams(const gguf::File& f, const ModelSpec& s) {
  const auto r = model::read_hparams(f);
  ASSERT_TRUE(r.ok()) << r.error().message();
  const model::HParams& hp = r.value();
  EXPECT_EQ(hp.name, s.name);
  EXPECT_EQ(hp.n_vocab, s.n_vocab);
  EXPECT_EQ(hp.n_ctx_train, s.n_ctx);
  EXPECT_EQ(hp.n_layer, s.n_layer);
  EXPECT_EQ(hp.n_nextn, 0u);
  EXPECT_EQ(hp.n_embd, s.n_embd);
  EXPECT_EQ(hp.n_ff, s.n_ff);
  EXPECT_EQ(hp.n_head, s.n_head);
  EXPECT_EQ(hp.n_head_kv, s.mla == model::MlaLayout::kSplit ? 1u : s.n_head);
  EXPECT_EQ(hp.q_lora_rank, s.q_lora);
  EXPECT_EQ(hp.kv_lora_rank, s.kv_lora);
  EXPECT_EQ(hp.qk_nope, s.qk_nope);
  EXPECT_EQ(hp.qk_rope, s.qk_rope);
  EXPECT_EQ(hp.v_head, s.v_head);
  EXPECT_EQ(hp.layout, s.mla);
  EXPECT_EQ(hp.rope_freq_base, s.rope_base);
  EXPECT_EQ(hp.rms_eps, s.rms_eps);
  EXPECT_EQ(hp.yarn.enabled, s.yarn);
  if (s.yarn) {
    EXPECT_EQ(hp.yarn.factor, s.yarn_factor);
    EXPECT_EQ(hp.yarn.original_context, s.yarn_original_ctx);
    EXPECT_EQ(hp.yarn.log_multiplier, s.yarn_log_multiplier);
  }
  EXPECT_EQ(hp.n_dense_lead, s.n_dense);
  EXPECT_EQ(hp.n_expert, s.n_expert);
  EXPECT_EQ(hp.n_expert_used, s.n_expert_used);
  EXPECT_EQ(hp.n_expert_shared, s.n_expert_shared);
  EXPECT_EQ(hp.n_ff_exp, s.n_ff_exp);
  EXPECT_EQ(hp.expert_weights_scale, s.expert_weights_scale);
  EXPECT_EQ(hp.expert_weights_norm, s.expert_weights_norm);
  EXPECT_EQ(hp.gating, s.gating);
  EXPECT_EQ(hp.n_group, s.n_group);
  EXPECT_EQ(hp.n_group_used, s.n_group_used);
}

// The file holds exactly the planned tensors, in order, with the bytes a fresh stream gives for each; and the
// vocabulary of the requested size.
void expect_contents(const gguf::File& f, const ModelSpec& s) {
  const auto plan = plan_tensors(s);
  ASSERT_EQ(f.tensors().size(), plan.size());
  for (size_t i = 0; i < plan.size(); ++i) {
    const gguf::TensorInfo& t = f.tensors()[i];
    const TensorPlan& p = plan[i];
    ASSERT_EQ(t.name, p.name);
    EXPECT_EQ(std::vector<uint64_t>(t.dims().begin(), t.dims().end()), p.ne) << p.name;
    EXPECT_EQ(t.type, p.type) << p.name;
    const auto expected = tensor_bytes(s.seed, p);
    ASSERT_TRUE(expected.ok()) << expected.error().message();
    ASSERT_EQ(t.n_bytes, expected->size()) << p.name;
    EXPECT_EQ(std::memcmp(t.data, expected->data(), expected->size()), 0) << p.name;
  }
  const auto vocab = build_vocab(s.n_vocab);
  ASSERT_TRUE(vocab.ok());
  const gguf::Value* tokens = f.find("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  ASSERT_EQ(tokens->array_size(), s.n_vocab);
  for (uint32_t i = 0; i < s.n_vocab; i += 97) EXPECT_EQ(tokens->strings()[i], vocab->tokens[i]);
  EXPECT_EQ(f.get<uint32_t>("tokenizer.ggml.bos_token_id").value(), vocab->bos);
  EXPECT_EQ(f.get<uint32_t>("tokenizer.ggml.eos_token_id").value(), vocab->eos);
  EXPECT_EQ(f.find("tokenizer.ggml.merges")->array_size(), vocab->merges.size());
  EXPECT_EQ(f.get<uint32_t>("general.file_type").value(), model::scheme_file_type(s.type));
}

void check_file(const ModelSpec& s, const std::string& path) {
  const auto f = gguf::File::open(path);
  ASSERT_TRUE(f.ok()) << f.error().message();
  expect_hparams(f.value(), s);
  expect_contents(f.value(), s);
}

// Key names, value types and array element types, in file order. The chat template is left out: published
// files carry one, as ours do, but the golden tiny models were written without.
std::vector<std::string> key_signature(const gguf::File& f) {
  std::vector<std::string> out;
  for (const auto& kv : f.metadata()) {
    if (kv.key == "tokenizer.chat_template") continue;
    out.push_back(std::string(kv.key) + ": " + kv.value.type_description());
  }
  return out;
}

void expect_same_keys_as_golden(const std::string& path, const std::string& golden_name) {
  const std::string golden = test::golden_dir() + "/models/" + golden_name;
  if (!std::filesystem::exists(golden)) GTEST_SKIP() << golden << " is not available";
  const auto g = gguf::File::open(golden);
  ASSERT_TRUE(g.ok()) << g.error().message();
  const auto f = gguf::File::open(path);
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_EQ(key_signature(f.value()), key_signature(g.value()));
  EXPECT_EQ(f->find("tokenizer.ggml.token_type")->array_type(),
            g->find("tokenizer.ggml.token_type")->array_type());
  // Golden files name tensors the same way, in the same order; only the expert count differs for tiny.
  ASSERT_EQ(f->tensors().size(), g->tensors().size());
  for (size_t i = 0; i < f->tensors().size(); ++i) EXPECT_EQ(f->tensors()[i].name, g->tensors()[i].name);
}

TEST(SynthGenerate, TinyCombinedRoundTrip) {
  const ModelSpec s = spec_of("tiny");
  const std::string path = write(s, "tiny.gguf");
  check_file(s, path);
  expect_same_keys_as_golden(path, "tiny-v3-f32.gguf");
  const auto f = gguf::File::open(path);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->tensor("blk.1.attn_kv_b.weight")->shape_string(), "[256, 512]");
  EXPECT_EQ(f->tensor("blk.1.exp_probs_b.bias")->shape_string(), "[8]");
  EXPECT_EQ(f->get<uint32_t>("deepseek2.attention.key_length").value(), 96u);
  EXPECT_EQ(f->get<uint32_t>("deepseek2.attention.value_length").value(), 64u);
}

TEST(SynthGenerate, TinySplitMlaRoundTrip) {
  Overrides o;
  o.mla = model::MlaLayout::kSplit;
  const ModelSpec s = spec_of("tiny", o);
  const std::string path = write(s, "tiny-split.gguf");
  check_file(s, path);
  expect_same_keys_as_golden(path, "tiny-v3-f16-kbvb.gguf");
  const auto f = gguf::File::open(path);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->tensor("blk.0.attn_kv_b.weight"), nullptr);
  EXPECT_EQ(f->tensor("blk.2.attn_k_b.weight")->shape_string(), "[64, 256, 4]");
  EXPECT_EQ(f->tensor("blk.2.attn_v_b.weight")->shape_string(), "[256, 64, 4]");
  EXPECT_EQ(f->get<uint32_t>("deepseek2.attention.head_count_kv").value(), 1u);
  EXPECT_EQ(f->get<uint32_t>("deepseek2.attention.key_length").value(), 288u);
  EXPECT_EQ(f->get<uint32_t>("deepseek2.attention.value_length").value(), 256u);
  EXPECT_EQ(f->get<uint32_t>("deepseek2.attention.key_length_mla").value(), 96u);
  EXPECT_EQ(f->get<uint32_t>("deepseek2.attention.value_length_mla").value(), 64u);
}

TEST(SynthGenerate, V2LiteStructureAndFallbacks) {
  Overrides o;
  o.type = WeightType::kQ4_K_M;
  const ModelSpec s = spec_of("tiny-v2lite", o);
  const std::string path = write(s, "v2lite.gguf");
  check_file(s, path);
  expect_same_keys_as_golden(path, "tiny-v2lite-f16.gguf");
  const auto f = gguf::File::open(path);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->tensor("blk.0.attn_q_a.weight"), nullptr);
  EXPECT_EQ(f->tensor("blk.1.exp_probs_b.bias"), nullptr);
  EXPECT_EQ(f->tensor("blk.0.attn_q.weight")->type, GgmlType::Q8_0);         // rows of 160
  EXPECT_EQ(f->tensor("blk.0.attn_output.weight")->type, GgmlType::F16);     // rows of 200
  EXPECT_EQ(f->tensor("blk.1.ffn_down_exps.weight")->type, GgmlType::Q8_0);  // rows of 96
  EXPECT_EQ(f->tensor("blk.1.ffn_gate_shexp.weight")->shape_string(), "[160, 192]");
}

TEST(SynthGenerate, EveryWeightType) {
  for (auto wt : {WeightType::kF32, WeightType::kF16, WeightType::kBF16, WeightType::kQ8_0, WeightType::kQ4_K,
                  WeightType::kQ6_K, WeightType::kQ4_K_M}) {
    SCOPED_TRACE(std::string(model::scheme_name(wt)));
    Overrides o;
    o.type = wt;
    o.layers = 2;
    const ModelSpec s = spec_of("tiny", o);
    const std::string path = write(s, fmt::format("tiny-{}.gguf", model::scheme_name(wt)));
    check_file(s, path);
    std::filesystem::remove(path);
  }
}

// `onecard gen` must give every tensor the type `onecard quantize` would for the file it writes: the mix
// rules depend on the layer count (ffn_down and attn_v get more bits in some layers only) and the heads per
// KV head, which quantize reads back from the file's keys.
TEST(SynthGenerate, MixTypesAgreeWithQuantize) {
  for (auto mla : {model::MlaLayout::kCombined, model::MlaLayout::kSplit}) {
    for (auto wt : {WeightType::kQ4_K_M}) {  // the one mix gen draws
      SCOPED_TRACE(fmt::format("{} {}", model::scheme_name(wt), mla_name(mla)));
      Overrides o;
      o.type = wt;
      o.layers = 8;
      o.mla = mla;
      const ModelSpec s = spec_of("tiny", o);
      const std::string path = write(s, fmt::format("tiny-mix-{}.gguf", model::scheme_name(wt)));
      const auto f = gguf::File::open(path);
      ASSERT_TRUE(f.ok()) << f.error().message();
      const model::MixContext ctx = model::mix_context(f.value(), false);
      EXPECT_EQ(ctx.n_layer, 8u);
      int layer_dependent = 0;
      for (const gguf::TensorInfo& t : f->tensors()) {
        const GgmlType want = model::scheme_tensor_type(wt, t.name, t.ne[0], t.n_dims, ctx);
        EXPECT_EQ(t.type, want) << t.name;
        if (model::scheme_tensor_type(wt, t.name, t.ne[0], t.n_dims) != want) ++layer_dependent;
      }
      // Some tensor's type depends on the context, or the check above would prove nothing.
      EXPECT_GT(layer_dependent, 0);
      std::filesystem::remove(path);
    }
  }
}

TEST(SynthGenerate, DemoReduced) {
  Overrides o;
  o.layers = 3;
  o.experts = 8;
  o.vocab = 2048;
  o.mla = model::MlaLayout::kSplit;
  const ModelSpec s = spec_of("demo", o);
  const std::string path = write(s, "demo.gguf");
  check_file(s, path);
  std::filesystem::remove(path);
}

// The real layer shapes with 4 experts and a small vocabulary: ~600 MB, written and read back in full.
TEST(SynthGenerate, V3SliceReduced) {
  Overrides o;
  o.layers = 2;
  o.experts = 4;
  o.vocab = 1024;
  const ModelSpec s = spec_of("v3-slice", o);
  const std::string path = write(s, "v3-slice.gguf");
  check_file(s, path);
  std::filesystem::remove(path);
}

std::vector<char> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(SynthGenerate, SeedDecidesTheBytes) {
  Overrides o;
  o.type = WeightType::kQ4_K_M;
  const ModelSpec a = spec_of("tiny", o);
  o.seed = 43;
  const ModelSpec b = spec_of("tiny", o);
  const auto a1 = slurp(write(a, "seed-a1.gguf"));
  const auto a2 = slurp(write(a, "seed-a2.gguf"));
  const auto b1 = slurp(write(b, "seed-b.gguf"));
  EXPECT_EQ(a1, a2);
  ASSERT_EQ(a1.size(), b1.size());
  EXPECT_NE(a1, b1);
  const auto fa = gguf::File::open(test::temp_path("seed-a1.gguf"));
  const auto fb = gguf::File::open(test::temp_path("seed-b.gguf"));
  ASSERT_TRUE(fa.ok() && fb.ok());
  EXPECT_EQ(fa->data_offset(), fb->data_offset());
  for (size_t i = 0; i < fa->tensors().size(); ++i) {
    const auto& ta = fa->tensors()[i];
    EXPECT_NE(std::memcmp(ta.data, fb->tensors()[i].data, ta.n_bytes), 0) << ta.name;
  }
}

// The header-only file holds exactly the metadata (plus the marker) and tensor infos of the full file.
TEST(SynthGenerate, HeaderOnlyIsTheFullFilesHeader) {
  const ModelSpec s = spec_of("tiny");
  const auto full = gguf::File::open(write(s, "header-full.gguf"));
  const std::string path = test::temp_path("header-only.gguf");
  const auto r = generate_header(s, path);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->file_bytes, std::filesystem::file_size(path));
  ASSERT_TRUE(full.ok()) << full.error().message();
  uint64_t tensor_bytes = 0;
  for (const auto& t : full->tensors()) tensor_bytes += t.n_bytes;
  EXPECT_EQ(r->tensor_bytes, tensor_bytes);
  EXPECT_EQ(r->n_tensors, full->tensors().size());

  const auto header = gguf::File::open_header(path);
  ASSERT_TRUE(header.ok()) << header.error().message();
  EXPECT_FALSE(header->has_data());
  EXPECT_TRUE(header->get<bool>(gguf::kHeaderOnlyKey).value());
  ASSERT_EQ(header->metadata().size(), full->metadata().size() + 1);
  ASSERT_EQ(header->tensors().size(), full->tensors().size());
  for (size_t i = 0; i < full->tensors().size(); ++i) {
    const auto& a = full->tensors()[i];
    const auto& b = header->tensors()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.type, b.type);
    EXPECT_EQ(a.shape_string(), b.shape_string());
    EXPECT_EQ(a.offset, b.offset);
  }
  expect_hparams(header.value(), s);
}

// DeepSeek-R1 whole at Q4_K_M: 377 GiB of tensors described in a few MB, which no model load accepts.
TEST(SynthGenerate, R1HeaderOnly) {
  const ModelSpec s = spec_of("r1");
  const std::string path = test::temp_path("r1-header.gguf");
  const auto r = generate_header(s, path);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_LT(r->file_bytes, 8u << 20);
  EXPECT_NEAR(static_cast<double>(r->tensor_bytes) / (1ull << 30), 376.77, 0.01);
  // token_embd, output_norm, output; 3 dense blocks of 12 tensors, 58 MoE blocks of 17.
  EXPECT_EQ(r->n_tensors, 3u + 3 * 12 + 58 * 17);

  const auto refused = gguf::File::open(path);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("extend past the end of the file"), std::string::npos);
  EXPECT_NE(refused.error().message().find("this is a header-only file"), std::string::npos);
  const auto load = model::DeepSeek2::load(path, model::LoadOptions{});
  ASSERT_FALSE(load.ok());
  EXPECT_NE(load.error().message().find(path + ": offset "), std::string::npos) << load.error().message();
  EXPECT_NE(load.error().message().find("it has no tensor data, so it cannot be loaded, only inspected"),
            std::string::npos)
      << load.error().message();

  const auto f = gguf::File::open_header(path);
  ASSERT_TRUE(f.ok()) << f.error().message();
  expect_hparams(f.value(), s);
  const auto hp = model::read_hparams(f.value());
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->n_layer, 61u);
  EXPECT_EQ(hp->n_dense_lead, 3u);
  EXPECT_EQ(hp->n_vocab, 129280u);
  EXPECT_EQ(hp->kv_cache_bytes_per_token(2), 70272u);
  EXPECT_EQ(f->tensor("blk.60.ffn_down_exps.weight")->shape_string(), "[2048, 7168, 256]");
  EXPECT_EQ(f->tensor("output.weight")->type, GgmlType::Q6_K);
}

TEST(SynthGenerate, UnwritableOutputNamesThePath) {
  const std::string path = test::temp_path("no-such-dir/model.gguf");
  const auto r = generate(spec_of("tiny"), path, false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find(path), std::string::npos) << r.error().message();
}

}  // namespace
}  // namespace onecard::synth
