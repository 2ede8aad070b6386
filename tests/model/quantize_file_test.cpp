// Quantized copies of the golden models, made with the project's own quantizer, against the reference logits:
// the figures the issue asks for (mean KL divergence and top-1 agreement) are printed and bounded.
#include "model/quantize_file.h"

#include <cmath>
#include <fstream>
#include <ostream>

#include <gtest/gtest.h>

#include "common/golden_logits.h"
#include "common/test_paths.h"
#include "model/deepseek2.h"

namespace onecard::model {
namespace {

using test::read_all;

struct Closeness {
  double mean_kl = 0;
  double top1 = 0;
};

// KL(reference || quantized) of the next-token distributions, averaged over positions.
Closeness closeness(const std::vector<float>& got, const std::vector<float>& want, size_t vocab) {
  const size_t n = want.size() / vocab;
  Closeness c;
  for (size_t t = 0; t < n; ++t) {
    const float* p = want.data() + t * vocab;
    const float* q = got.data() + t * vocab;
    const double mp = *std::max_element(p, p + vocab), mq = *std::max_element(q, q + vocab);
    double zp = 0, zq = 0;
    for (size_t i = 0; i < vocab; ++i) zp += std::exp(p[i] - mp), zq += std::exp(q[i] - mq);
    double kl = 0;
    for (size_t i = 0; i < vocab; ++i) {
      const double lp = p[i] - mp - std::log(zp), lq = q[i] - mq - std::log(zq);
      kl += std::exp(lp) * (lp - lq);
    }
    c.mean_kl += kl / static_cast<double>(n);
    const size_t ap = static_cast<size_t>(std::max_element(p, p + vocab) - p);
    const size_t aq = static_cast<size_t>(std::max_element(q, q + vocab) - q);
    c.top1 += (ap == aq ? 1.0 : 0.0) / static_cast<double>(n);
  }
  return c;
}

struct Case {
  std::string model;
  WeightScheme scheme;
  double max_mean_kl;
  double min_top1;
};
std::ostream& operator<<(std::ostream& os, const Case& c) {
  return os << c.model << " as " << scheme_name(c.scheme);
}

class QuantizedCopy : public testing::TestWithParam<Case> {};

TEST_P(QuantizedCopy, StaysCloseToTheReference) {
  const Case& c = GetParam();
  const std::string base = test::golden_dir() + "/models/" + c.model;
  const std::string out = test::temp_path(c.model + "-" + std::string(scheme_name(c.scheme)) + ".gguf");
  QuantizeFileOptions qo;
  qo.scheme = c.scheme;
  qo.n_threads = 2;
  qo.progress = false;
  auto report = quantize_file(base + ".gguf", out, qo);
  ASSERT_TRUE(report.ok()) << report.error().message();
  EXPECT_LT(report->bytes_out, report->bytes_in);

  const auto tokens = read_all<int32_t>(base + ".tokens.i32");
  const auto want = read_all<float>(base + ".logits.f32");
  LoadOptions o;
  o.n_ctx = static_cast<int>(tokens.size());
  o.n_threads = 2;
  auto m = DeepSeek2::load(out, o);
  ASSERT_TRUE(m.ok()) << m.error().message();
  const KvCache cache(m.value()->hparams(), 1, o.n_ctx, KvType::kF32);
  std::vector<BatchToken> batch;
  for (size_t i = 0; i < tokens.size(); ++i) batch.push_back({tokens[i], static_cast<int32_t>(i), 0, true});
  std::vector<float> got;
  ASSERT_TRUE(m.value()->forward(batch, cache, got).ok());
  const Closeness cl = closeness(got, want, want.size() / tokens.size());
  std::printf("[ figures  ] %s as %s: mean KL %.3g, top-1 %.1f%%, %.2f -> %.2f MiB\n", c.model.c_str(),
              std::string(scheme_name(c.scheme)).c_str(), cl.mean_kl, 100 * cl.top1,
              report->bytes_in / 1048576.0, report->bytes_out / 1048576.0);
  EXPECT_LE(cl.mean_kl, c.max_mean_kl);
  EXPECT_GE(cl.top1, c.min_top1);
}

// Bounds about twice the figures measured on 2026-11-25 (in the closing note of the forward-pass issue), so
// that a regression shows; the mixes of llama-quantize measured on 2026-12-01 (mean KL, top-1): q4_k_m
// 0.057 64% (5.02 MiB), q5_k_m 0.024 84% (5.88), q3_k_m 0.12 39% (4.04), q2_k 0.29 17% (3.10), iq4_xs on the
// split-MLA file 0.056 56% (4.49, its attn_k_b rows of 64 in IQ4_NL). Random-weight models are harsh on
// quantization: their next-token distributions are flat, so small logit errors move the top-1 token more
// often than in a trained model.
INSTANTIATE_TEST_SUITE_P(Golden, QuantizedCopy,
                         testing::Values(Case{"tiny-v3-f32", WeightScheme::kF16, 1e-6, 1.0},
                                         Case{"tiny-v3-f32", WeightScheme::kQ8_0, 0.0065, 0.9},
                                         Case{"tiny-v3-f32", WeightScheme::kQ6_K, 0.018, 0.9},
                                         Case{"tiny-v3-f32", WeightScheme::kQ4_K_M, 0.1, 0.55},
                                         Case{"tiny-v3-bf16", WeightScheme::kQ4_K_M, 0.1, 0.55},
                                         Case{"tiny-v3-f32", WeightScheme::kQ5_K_M, 0.05, 0.7},
                                         Case{"tiny-v3-f32", WeightScheme::kQ3_K_M, 0.25, 0.25},
                                         Case{"tiny-v3-f32", WeightScheme::kQ2_K, 0.6, 0.08},
                                         Case{"tiny-v3-f16-kbvb", WeightScheme::kIQ4_XS, 0.11, 0.45},
                                         Case{"tiny-v2lite-f16", WeightScheme::kQ8_0, 0.001, 0.9}),
                         [](const auto& param_info) {
                           std::string n = param_info.param.model + "_" +
                                           std::string(scheme_name(param_info.param.scheme));
                           for (char& ch : n) ch = ch == '-' ? '_' : ch;
                           return n;
                         });

TEST(QuantizedCopy, TypesFollowTheScheme) {
  const std::string out = test::temp_path("types-q4_k_m.gguf");
  QuantizeFileOptions qo;
  qo.progress = false;
  ASSERT_TRUE(quantize_file(test::golden_dir() + "/models/tiny-v3-f32.gguf", out, qo).ok());
  auto f = gguf::File::open(out).value();
  EXPECT_EQ(f.get<uint32_t>("general.file_type").value(), 15u);  // MOSTLY_Q4_K_M
  auto type = [&](const char* name) { return f.tensor(name)->type; };
  EXPECT_EQ(type("blk.0.attn_norm.weight"), gguf::GgmlType::F32);
  EXPECT_EQ(type("blk.1.ffn_gate_inp.weight"), gguf::GgmlType::F32);
  EXPECT_EQ(type("blk.1.exp_probs_b.bias"), gguf::GgmlType::F32);
  EXPECT_EQ(type("blk.1.ffn_up_exps.weight"), gguf::GgmlType::Q4_K);
  // Of 3 layers only the last is a use-more-bits layer (the last eighth): Q6_K for its ffn_down and
  // attn_kv_b.
  EXPECT_EQ(type("blk.1.ffn_down_exps.weight"), gguf::GgmlType::Q4_K);
  EXPECT_EQ(type("blk.2.ffn_down_exps.weight"), gguf::GgmlType::Q6_K);
  EXPECT_EQ(type("blk.2.ffn_down_shexp.weight"), gguf::GgmlType::Q6_K);
  EXPECT_EQ(type("blk.0.attn_kv_b.weight"), gguf::GgmlType::Q4_K);
  EXPECT_EQ(type("blk.2.attn_kv_b.weight"), gguf::GgmlType::Q6_K);
  EXPECT_EQ(type("output.weight"), gguf::GgmlType::Q6_K);
  EXPECT_EQ(type("token_embd.weight"), gguf::GgmlType::Q4_K);

  const std::string v2 = test::temp_path("types-v2lite.gguf");
  ASSERT_TRUE(quantize_file(test::golden_dir() + "/models/tiny-v2lite-f16.gguf", v2, qo).ok());
  auto g = gguf::File::open(v2).value();
  // Rows of 160 values: no 256-block fits, Q8_0's 32 does.
  EXPECT_EQ(g.tensor("blk.0.attn_q.weight")->type, gguf::GgmlType::Q8_0);
}

// On AVX-512 VNNI CPUs the Q4_K and Q6_K experts (Q4_K_M's gate/up and down) are repacked at load; the logits
// must be those of the file's layout up to the rounding of a different summation order.
TEST(QuantizedCopy, RepackedExpertsGiveTheFileLayoutsLogits) {
  const std::string base = test::golden_dir() + "/models/tiny-v3-f32";
  const std::string out = test::temp_path("repack-q4_k_m.gguf");
  QuantizeFileOptions qo;
  qo.scheme = WeightScheme::kQ4_K_M;
  qo.progress = false;
  ASSERT_TRUE(quantize_file(base + ".gguf", out, qo).ok());
  const auto tokens = read_all<int32_t>(base + ".tokens.i32");
  std::vector<BatchToken> batch;
  for (size_t i = 0; i < tokens.size(); ++i) batch.push_back({tokens[i], static_cast<int32_t>(i), 0, true});
  std::vector<float> logits[2];
  for (int repack = 0; repack < 2; ++repack) {
    LoadOptions o;
    o.n_ctx = static_cast<int>(tokens.size());
    o.repack_experts = repack == 1;
    auto m = DeepSeek2::load(out, o);
    ASSERT_TRUE(m.ok()) << m.error().message();
    if (repack == 1 && m.value()->repacked_bytes() == 0)
      GTEST_SKIP() << "experts are repacked on AVX-512 VNNI only";
    EXPECT_EQ(m.value()->repacked_bytes() > 0, repack == 1);
    const KvCache cache(m.value()->hparams(), 1, o.n_ctx, KvType::kF32);
    ASSERT_TRUE(m.value()->forward(batch, cache, logits[repack]).ok());
  }
  double diff = 0, norm = 0;
  for (size_t i = 0; i < logits[0].size(); ++i) {
    diff += std::pow(static_cast<double>(logits[1][i]) - logits[0][i], 2);
    norm += std::pow(static_cast<double>(logits[0][i]), 2);
  }
  std::printf("[ figures  ] repacked vs file layout: relative L2 difference %.3g\n", std::sqrt(diff / norm));
  EXPECT_LE(std::sqrt(diff / norm), 1e-3);
}

TEST(QuantizedCopy, UnknownSchemeIsRefusedWithTheValidOnes) {
  auto s = parse_scheme("q4_k_xl");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("'q4_k_xl' is not one of f32, f16, bf16, q8_0"), std::string::npos);
}

}  // namespace
}  // namespace onecard::model
