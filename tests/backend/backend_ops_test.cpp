// Every op of the backend interface on every backend present, against the CPU backend on its scalar kernels:
// the CPU at each ISA this machine runs (and, as they come, the other devices). Random inputs, odd sizes,
// several tokens. Float ops must agree to rounding; integer matmuls quantize activations identically on
// every backend, so they differ only in summation order; the MoE quantizes its hidden rows a second time,
// where one 8-bit level may move (moe_test.cpp explains the bound).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "base/rng.h"
#include "cpu/cpu_backend.h"
#include "cpu/random_weights.h"

namespace onecard::backend {
namespace {

using gguf::GgmlType;

std::unique_ptr<cpu::CpuBackend> cpu_backend(cpu::Isa isa, int threads) {
  return std::make_unique<cpu::CpuBackend>(std::make_unique<ThreadPool>(threads),
                                           cpu::CpuBackendOptions{.isa = isa, .repack_experts = true});
}

// The backends under test: the CPU at every ISA it supports, with two threads.
std::vector<std::unique_ptr<Backend>> backends_present() {
  std::vector<std::unique_ptr<Backend>> out;
  for (cpu::Isa isa : cpu::supported_isas()) out.push_back(cpu_backend(isa, 2));
  return out;
}

std::vector<float> gaussian(size_t n, uint64_t seed, float scale = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = rng.normal() * scale;
  return v;
}

// sqrt(sum (a - b)^2 / sum b^2)
double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    norm += static_cast<double>(b[i]) * b[i];
  }
  return norm == 0 ? diff : std::sqrt(diff / norm);
}

class BackendOps : public ::testing::Test {
 protected:
  std::unique_ptr<cpu::CpuBackend> reference_ = cpu_backend(cpu::Isa::Scalar, 1);
  std::vector<std::unique_ptr<Backend>> backends_ = backends_present();
};

TEST_F(BackendOps, Embed) {
  constexpr int64_t kVocab = 19, kDim = 512;
  const std::vector<uint8_t> bytes = cpu::testing::random_weights(GgmlType::Q4_K, kVocab, kDim, 7);
  const Weight table = make_weight(GgmlType::Q4_K, kDim, kVocab, bytes.data());
  const std::vector<BatchToken> batch = {{3, 0, 0, false}, {18, 1, 0, false}, {0, 2, 0, true}};
  const int n = static_cast<int>(batch.size());
  std::vector<float> want(n * kDim);
  reference_->embed(table, batch.data(), n, want.data(), kDim);
  for (auto& be : backends_) {
    std::vector<float> got(want.size());
    be->embed(table, batch.data(), n, got.data(), kDim);
    EXPECT_EQ(got, want) << be->name();
  }
}

TEST_F(BackendOps, RmsNormStridedAndInPlace) {
  constexpr int kTokens = 5;
  constexpr int64_t kDim = 37, kLd = 41;
  const std::vector<float> x = gaussian(kTokens * kLd, 1), w = gaussian(kDim, 2);
  const Vector norm{w.data(), kDim};
  std::vector<float> want(kTokens * kLd, 0.0f);
  reference_->rms_norm(x.data(), kLd, norm, 1e-6f, kTokens, want.data(), kLd);
  for (int t = 0; t < kTokens; ++t) {  // the reference itself, against the definition
    double sum2 = 0;
    for (int64_t i = 0; i < kDim; ++i) sum2 += static_cast<double>(x[t * kLd + i]) * x[t * kLd + i];
    const double inv = 1.0 / std::sqrt(sum2 / kDim + 1e-6);
    for (int64_t i = 0; i < kDim; ++i) EXPECT_NEAR(want[t * kLd + i], x[t * kLd + i] * inv * w[i], 1e-5);
  }
  for (auto& be : backends_) {
    std::vector<float> got = x;
    be->rms_norm(got.data(), kLd, norm, 1e-6f, kTokens, got.data(), kLd);
    for (int t = 0; t < kTokens; ++t) {
      for (int64_t i = 0; i < kLd; ++i) {
        const float expect = i < kDim ? want[t * kLd + i] : x[t * kLd + i];  // past w.n: untouched
        EXPECT_NEAR(got[t * kLd + i], expect, 1e-6f * (1 + std::fabs(expect))) << be->name();
      }
    }
  }
}

TEST_F(BackendOps, MatmulEveryFormat) {
  constexpr int kTokens = 7;
  constexpr int64_t kRows = 37, kCols = 512, kLdy = 40;
  const std::vector<float> x = gaussian(kTokens * kCols, 3);
  for (GgmlType type : cpu::testing::all_matmul_types()) {
    const std::vector<uint8_t> bytes = cpu::testing::random_weights(type, kRows, kCols, 11);
    const Weight w = make_weight(type, kCols, kRows, bytes.data());
    std::vector<float> want(kTokens * kLdy, 0.0f);
    reference_->matmul(w, x.data(), kCols, kTokens, want.data(), kLdy);
    for (auto& be : backends_) {
      std::vector<float> got(want.size(), 0.0f);
      be->matmul(w, x.data(), kCols, kTokens, got.data(), kLdy);
      EXPECT_LE(rel_error(got, want), 1e-5) << gguf::type_name(type) << " on " << be->name();
    }
  }
}

TEST_F(BackendOps, RopeWithYarn) {
  constexpr int kTokens = 4, kHeads = 3;
  constexpr int64_t kDims = 16, kHeadStride = 24, kLd = kHeads * kHeadStride;
  RopeConfig cfg;
  cfg.dims = kDims;
  cfg.base = 10000.0f;
  cfg.factor = 40.0f;
  cfg.original_context = 64;
  const std::vector<BatchToken> batch = {
      {0, 0, 0, false}, {0, 5, 0, false}, {0, 300, 1, false}, {0, 7, 2, true}};
  const std::vector<float> x = gaussian(kTokens * kLd, 4);
  std::vector<float> want = x;
  reference_->rope(cfg, want.data(), kLd, kHeads, kHeadStride, batch.data(), kTokens);
  EXPECT_NE(want, x);
  for (auto& be : backends_) {
    std::vector<float> got = x;
    be->rope(cfg, got.data(), kLd, kHeads, kHeadStride, batch.data(), kTokens);
    EXPECT_LE(rel_error(got, want), 1e-6) << be->name();
  }
}

TEST_F(BackendOps, SiluMulAndAdd) {
  constexpr int64_t kCount = 1003;
  const std::vector<float> gate = gaussian(kCount, 5, 3.0f), up = gaussian(kCount, 6),
                           y = gaussian(kCount, 7);
  std::vector<float> want_silu = gate, want_add = y, want_add2 = y;
  reference_->silu_mul(want_silu.data(), up.data(), kCount);
  reference_->add(want_add.data(), gate.data(), nullptr, kCount);
  reference_->add(want_add2.data(), gate.data(), up.data(), kCount);
  for (int64_t i = 0; i < kCount; ++i) {  // the reference itself, against the definitions
    EXPECT_NEAR(want_silu[i], gate[i] / (1 + std::exp(-gate[i])) * up[i],
                1e-5 * (1 + std::fabs(want_silu[i])));
    EXPECT_EQ(want_add[i], y[i] + gate[i]);
    EXPECT_EQ(want_add2[i], y[i] + (gate[i] + up[i]));
  }
  for (auto& be : backends_) {
    std::vector<float> silu = gate, add = y, add2 = y;
    be->silu_mul(silu.data(), up.data(), kCount);
    be->add(add.data(), gate.data(), nullptr, kCount);
    be->add(add2.data(), gate.data(), up.data(), kCount);
    EXPECT_LE(rel_error(silu, want_silu), 1e-6) << be->name();
    EXPECT_EQ(add, want_add) << be->name();
    EXPECT_EQ(add2, want_add2) << be->name();
  }
}

TEST_F(BackendOps, RouteSoftmaxAndGroupedSigmoid) {
  constexpr int kTokens = 9;
  const std::vector<float> bias = gaussian(64, 8, 0.1f);
  RoutingConfig softmax{.n_expert = 16, .k = 3};
  RoutingConfig sigmoid{.n_expert = 64,
                        .k = 6,
                        .n_group = 8,
                        .n_group_used = 4,
                        .gating = Gating::kSigmoid,
                        .normalize = true,
                        .scale = 2.5f,
                        .bias = bias.data()};
  for (const RoutingConfig& cfg : {softmax, sigmoid}) {
    const std::vector<float> logits = gaussian(static_cast<size_t>(kTokens * cfg.n_expert), 9);
    std::vector<int32_t> want_ids(kTokens * cfg.k);
    std::vector<float> want_w(want_ids.size());
    reference_->route(cfg, logits.data(), kTokens, want_ids.data(), want_w.data());
    for (auto& be : backends_) {
      std::vector<int32_t> ids(want_ids.size());
      std::vector<float> w(want_w.size());
      be->route(cfg, logits.data(), kTokens, ids.data(), w.data());
      EXPECT_EQ(ids, want_ids) << be->name();
      EXPECT_LE(rel_error(w, want_w), 1e-6) << be->name();
    }
  }
}

TEST_F(BackendOps, MoePreparedAndNot) {
  constexpr int64_t kDim = 512, kFf = 256, kExperts = 8;
  constexpr int kTokens = 21, kK = 3;
  for (const auto& [type, down_type] : {std::pair{GgmlType::Q4_K, GgmlType::Q6_K},
                                        {GgmlType::Q8_0, GgmlType::Q8_0},
                                        {GgmlType::F16, GgmlType::F16}}) {
    const auto gate = cpu::testing::random_weights(type, kFf * kExperts, kDim, 21);
    const auto up = cpu::testing::random_weights(type, kFf * kExperts, kDim, 22);
    const auto down = cpu::testing::random_weights(down_type, kDim * kExperts, kFf, 23);
    ExpertTensors e;
    e.gate = make_weight(type, kDim, kFf, gate.data(), kExperts);
    e.up = make_weight(type, kDim, kFf, up.data(), kExperts);
    e.down = make_weight(down_type, kFf, kDim, down.data(), kExperts);
    const std::vector<float> x = gaussian(kTokens * kDim, 24);
    std::vector<int32_t> ids(kTokens * kK);
    Rng rng(25);
    for (int t = 0; t < kTokens; ++t) {
      for (int j = 0; j < kK; ++j)
        ids[t * kK + j] = static_cast<int32_t>((t * 5 + j * 3 + rng.next() % 2) % kExperts);
    }
    const std::vector<float> weights = gaussian(ids.size(), 26, 0.5f);
    std::vector<float> want(kTokens * kDim);
    reference_->moe(e, x.data(), kTokens, ids.data(), weights.data(), kK, want.data(), nullptr);
    for (auto& be : backends_) {
      for (bool prepare : {false, true}) {
        ExpertTensors mine = e;
        ExpertTensors* layers[] = {&mine};
        if (prepare) be->prepare_experts(layers);
        std::vector<float> got(want.size());
        MoeDownInputs down_inputs;
        be->moe(mine, x.data(), kTokens, ids.data(), weights.data(), kK, got.data(), &down_inputs);
        EXPECT_LE(rel_error(got, want), 2e-3)
            << gguf::type_name(type) << " on " << be->name() << (prepare ? ", prepared" : "");
        EXPECT_NE(down_inputs.h, nullptr);
        EXPECT_NE(down_inputs.order, nullptr);
      }
    }
  }
}

// A batch of two sequences: a prefill chunk of one (positions 20..31 after a cached prefix) and one decode
// token of the other at position 70, written to the cache by kv_store and attended in every form.
TEST_F(BackendOps, KvStoreAndMlaAttendEveryForm) {
  MlaShape s{.n_head = 4,
             .nope = 16,
             .rope = 8,
             .kv_lora = 32,
             .v = 16,
             .width = 40,
             .scale = 0.2f,
             .key_block = 16};
  const int64_t kvl = s.kv_lora;
  std::vector<std::vector<float>> uk_data, uv_data;
  LatentProjections p;
  p.uk_transposed = true;  // the combined layout: W_UK as nope rows of kv_lora
  for (int64_t h = 0; h < s.n_head; ++h) {
    uk_data.push_back(gaussian(static_cast<size_t>(s.nope * kvl), 30 + h, 0.2f));
    uv_data.push_back(gaussian(static_cast<size_t>(s.v * kvl), 40 + h, 0.2f));
    p.uk.push_back(make_weight(GgmlType::F32, kvl, s.nope, uk_data.back().data()));
    p.uv.push_back(make_weight(GgmlType::F32, kvl, s.v, uv_data.back().data()));
  }
  std::vector<BatchToken> batch;
  for (int pos = 20; pos < 32; ++pos) batch.push_back({0, pos, 0, true});
  batch.push_back({0, 70, 1, true});
  const int n = static_cast<int>(batch.size());
  const std::vector<float> q = gaussian(n * s.q_stride(), 50), rows = gaussian(n * s.width, 51);
  const std::vector<float> prefix = gaussian(80 * s.width, 52);
  constexpr int kPageTokens = 8, kPagesPerSeq = 10;
  const std::vector<int32_t> table0 = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
                             table1 = {19, 18, 17, 16, 15, 14, 13, 12, 11, 10};

  for (KvType type : {KvType::kF32, KvType::kBF16}) {
    // Each backend writes into a cache of its own, filled alike beforehand.
    auto attend = [&](Backend& be, AttentionMode mode, std::vector<float>* latents) {
      KvPages pages(1, static_cast<int>(s.width), kPageTokens, 2 * kPagesPerSeq, type);
      KvView kv{&pages, {table0, table1}};
      for (int pos = 0; pos < 20; ++pos) kv.store(0, 0, pos, prefix.data() + pos * s.width);
      for (int pos = 0; pos < 70; ++pos) kv.store(0, 1, pos, prefix.data() + pos * s.width);
      be.kv_store(kv, 0, batch.data(), n, rows.data(), s.width);
      std::vector<float> out(n * s.out_stride());
      be.mla_attend(s, p, q.data(), batch.data(), n, kv, 0, mode, out.data(),
                    latents == nullptr ? nullptr : latents->data());
      return out;
    };
    const std::vector<float> want = attend(*reference_, AttentionMode::kExpanded, nullptr);
    std::vector<float> want_latents(n * s.n_head * kvl);
    EXPECT_LE(rel_error(attend(*reference_, AttentionMode::kAbsorbed, &want_latents), want), 1e-5);
    for (auto& be : backends_) {
      LatentProjections mine = p;
      LatentProjections* layers[] = {&mine};
      be->prepare_latent(layers);
      for (AttentionMode mode : {AttentionMode::kAuto, AttentionMode::kAbsorbed, AttentionMode::kExpanded}) {
        std::vector<float> latents(want_latents.size());
        const bool absorbed = mode == AttentionMode::kAbsorbed;
        const std::vector<float> got = attend(*be, mode, absorbed ? &latents : nullptr);
        EXPECT_LE(rel_error(got, want), 1e-5)
            << be->name() << ", " << attention_mode_name(mode) << ", " << kv_type_name(type);
        if (absorbed) {
          EXPECT_LE(rel_error(latents, want_latents), 1e-5) << be->name();
        }
      }
    }
  }
}

}  // namespace
}  // namespace onecard::backend
