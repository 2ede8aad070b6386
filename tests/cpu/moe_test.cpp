// moe_forward against a per-token composition of single-token scalar matmuls, for float, integer and
// dequantized formats, every ISA and several thread counts; batches large enough that experts take the
// batched kernel. Float formats agree to rounding. Integer formats quantize the hidden rows a second time:
// where kernels round gate/up differently in the last bit, a hidden value near a level boundary may land one
// 8-bit level (amax / 127) apart, which moves y by about 1e-4 relative (seen: up to 4e-4); a wrong row,
// expert or weight moves it by order 1. Q2_K, Q4_K and Q6_K experts run from the file's layout and repacked
// for each table with a packer (pack_experts).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "base/rng.h"
#include "cpu/kernels.h"
#include "cpu/matmul.h"
#include "cpu/moe.h"
#include "cpu/ops.h"
#include "cpu/random_weights.h"

namespace onecard::cpu {
namespace {

using gguf::GgmlType;

struct Experts {
  std::vector<uint8_t> gate, up, down;
  ExpertWeights w;
};

Experts make_experts(GgmlType type, GgmlType down_type, int64_t d, int64_t ff, int64_t n_expert) {
  Experts ex;
  ex.gate = testing::random_weights(type, ff * n_expert, d, 1);
  ex.up = testing::random_weights(type, ff * n_expert, d, 2);
  ex.down = testing::random_weights(down_type, d * n_expert, ff, 3);
  ex.w.gate = make_matrix(type, d, ff, ex.gate.data());
  ex.w.up = make_matrix(type, d, ff, ex.up.data());
  ex.w.down = make_matrix(down_type, ff, d, ex.down.data());
  ex.w.n_expert = n_expert;
  return ex;
}

std::vector<float> reference(const ExpertWeights& w, const std::vector<float>& x, int64_t nt,
                             const std::vector<int32_t>& ids, const std::vector<float>& weights, int k) {
  const int64_t d = w.gate.cols, ff = w.gate.rows;
  std::vector<float> y(nt * d, 0.0f), g(ff), u(ff), o(d);
  for (int64_t t = 0; t < nt; ++t) {
    for (int j = 0; j < k; ++j) {
      const int32_t e = ids[t * k + j];
      matmul_isa(w.expert(w.gate, e), x.data() + t * d, d, 1, g.data(), ff, nullptr, Isa::Scalar);
      matmul_isa(w.expert(w.up, e), x.data() + t * d, d, 1, u.data(), ff, nullptr, Isa::Scalar);
      silu_mul(g.data(), u.data(), ff);
      matmul_isa(w.expert(w.down, e), g.data(), ff, 1, o.data(), d, nullptr, Isa::Scalar);
      for (int64_t c = 0; c < d; ++c) y[t * d + c] += weights[t * k + j] * o[c];
    }
  }
  return y;
}

TEST(Moe, MatchesPerTokenComposition) {
  const int64_t d = 256, ff = 512, n_expert = 6;
  const int k = 2;
  const std::pair<GgmlType, GgmlType> formats[] = {
      {GgmlType::Q4_K, GgmlType::Q6_K},     {GgmlType::Q4_K, GgmlType::Q4_K},
      {GgmlType::Q8_0, GgmlType::Q8_0},     {GgmlType::Q4_0, GgmlType::Q5_K},
      {GgmlType::F32, GgmlType::F32},       {GgmlType::BF16, GgmlType::F16},
      {GgmlType::IQ2_XS, GgmlType::IQ4_XS}, {GgmlType::Q2_K, GgmlType::Q2_K}};
  std::vector<std::unique_ptr<ThreadPool>> pools;
  for (int n : {1, 2, 3}) pools.push_back(std::make_unique<ThreadPool>(n));
  for (const auto& [type, down_type] : formats) {
    const Experts ex = make_experts(type, down_type, d, ff, n_expert);
    // Each table's packed layout is its own: the experts are repacked for every ISA with a packer.
    const std::vector<Isa> isas = supported_isas();
    std::vector<ExpertWeights> repacked(isas.size(), ex.w);
    std::vector<PackedBuffer> packed(isas.size());
    for (size_t i = 0; i < isas.size(); ++i)
      packed[i] = pack_experts(repacked[i], *pools[1], kernels(isas[i]));
    for (int64_t nt : {1, 3, 18, 40}) {
      const std::vector<float> x = testing::gaussian(nt * d, 50 + nt);
      Rng rng(nt, "moe-route");
      std::vector<int32_t> ids(nt * k);
      std::vector<float> weights(nt * k);
      for (int64_t t = 0; t < nt; ++t) {
        // Expert 0 takes most tokens (the batched kernel), the others a few (the row kernel); with 18 tokens
        // it takes all, a full panel and a tail of two; distinct experts per token.
        const bool other = nt != 18 && rng.below(4) == 0;
        ids[t * k] = other ? static_cast<int32_t>(1 + rng.below(n_expert - 1)) : 0;
        ids[t * k + 1] = static_cast<int32_t>((ids[t * k] + 1 + rng.below(n_expert - 1)) % n_expert);
        weights[t * k] = 0.25f + rng.uniform();
        weights[t * k + 1] = 0.25f + rng.uniform();
      }
      const std::vector<float> want = reference(ex.w, x, nt, ids, weights, k);
      double norm = 0;
      for (float v : want) norm += static_cast<double>(v) * v;
      norm = std::sqrt(norm);
      for (const bool repack : {false, true}) {
        for (size_t j = 0; j < isas.size(); ++j) {
          if (repack && packed[j].data == nullptr) continue;
          const ExpertWeights* w = repack ? &repacked[j] : &ex.w;
          const Isa isa = isas[j];
          for (auto& pool : pools) {
            MoeScratch scratch;
            std::vector<float> y(nt * d, NAN);
            moe_forward_isa(*w, x.data(), nt, ids.data(), weights.data(), k, y.data(), *pool, scratch, isa);
            double err = 0;
            for (int64_t i = 0; i < nt * d; ++i)
              err += (y[i] - want[i]) * static_cast<double>(y[i] - want[i]);
            const bool float_path =
                type == GgmlType::F32 || type == GgmlType::BF16 || type == GgmlType::IQ2_XS;
            EXPECT_LE(std::sqrt(err), (float_path ? 1e-5 : 3e-3) * norm)
                << gguf::type_name(type) << "/" << gguf::type_name(down_type) << (repack ? " repacked " : " ")
                << isa_name(isa) << " threads " << pool->size() << " tokens " << nt;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace onecard::cpu
