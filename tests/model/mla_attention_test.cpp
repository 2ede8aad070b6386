// The two attention forms compute the same function: checked head by head on a golden model's weights and a
// cache of random latents, over several key blocks and for both cache types and both MLA file layouts; and so
// does the absorbed form split over positions into parts that are combined afterwards.
#include "cpu/mla_attention.h"

#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>

#include "base/rng.h"
#include "common/test_paths.h"
#include "model/kv_cache.h"
#include "model/weights.h"

namespace onecard::model {
namespace {

using backend::MlaShape;
using cpu::attend_absorbed;
using cpu::attend_absorbed_part;
using cpu::attend_expanded;
using cpu::finish_absorbed;
using cpu::latent_queries;
using cpu::LatentPartial;
using cpu::MlaScratch;
using cpu::prefer_expanded;

class MlaForms : public testing::TestWithParam<std::tuple<std::string, KvType>> {};

TEST_P(MlaForms, AbsorbedEqualsExpanded) {
  const auto& [name, kv_type] = GetParam();
  auto file = gguf::File::open(test::golden_dir() + "/models/" + name + ".gguf").value();
  const HParams hp = read_hparams(file).value();
  const Weights w = bind_weights(file, hp).value();
  const cpu::LatentWeights l = cpu::latent_weights(w.layers[0].latent);
  MlaShape s{hp.n_head, hp.qk_nope,          hp.qk_rope,           hp.kv_lora_rank,
             hp.v_head, hp.kv_cache_width(), hp.attention_scale(), 16};

  constexpr int kCtx = 53, kQueries = 9;  // 53 keys: three full blocks of 16 and a partial one
  // Pages of 8 positions: the keys span seven pages, the last one partly filled.
  KvCache cache(hp, 1, kCtx, kv_type, 8);
  Rng rng(5);
  std::vector<float> row(static_cast<size_t>(s.width));
  for (int p = 0; p < kCtx; ++p) {
    for (auto& x : row) x = rng.normal();
    cache.store(0, 0, p, row);
  }
  // The last kQueries positions, as a chunk of a prefill would have them.
  std::vector<BatchToken> tokens;
  for (int i = 0; i < kQueries; ++i) tokens.push_back({0, kCtx - kQueries + i, 0, true});
  std::vector<float> q(static_cast<size_t>(kQueries * s.q_stride()));
  for (auto& x : q) x = rng.normal() * 0.3f;

  std::vector<float> expanded(static_cast<size_t>(kQueries * s.out_stride()));
  MlaScratch scratch;
  for (int64_t h = 0; h < s.n_head; ++h)
    attend_expanded(s, l, h, q.data(), tokens.data(), kQueries, cache.view(), 0, expanded.data(), scratch);
  // The absorbed form in groups of heads: one at a time, an uneven split, all at once.
  for (int64_t group : {int64_t{1}, int64_t{3}, s.n_head}) {
    std::vector<float> absorbed(expanded.size());
    for (int64_t h = 0; h < s.n_head; h += group) {
      attend_absorbed(s, l, h, static_cast<int>(std::min(group, s.n_head - h)), q.data(), tokens.data(),
                      kQueries, cache.view(), 0, absorbed.data(), scratch);
    }
    double diff = 0, norm = 0;
    for (size_t i = 0; i < absorbed.size(); ++i) {
      diff += (absorbed[i] - expanded[i]) * (absorbed[i] - expanded[i]);
      norm += absorbed[i] * absorbed[i];
    }
    EXPECT_GT(norm, 0.0) << "groups of " << group;
    EXPECT_LE(std::sqrt(diff / norm), 1e-5) << "groups of " << group;
  }
  // Split over positions as decode splits a long context, then combined: page-aligned and unaligned cuts,
  // a part some tokens see nothing of (positions past theirs), and the parts in reverse order.
  const std::vector<std::vector<int64_t>> splits = {{0, 8, 24, kCtx}, {0, 5, 47, 50, kCtx}, {0, 1, kCtx}};
  for (const std::vector<int64_t>& cuts : splits) {
    std::vector<LatentPartial> parts(cuts.size() - 1);
    std::vector<float> absorbed(expanded.size());
    for (int64_t h = 0; h < s.n_head; h += 2) {
      const int g = static_cast<int>(std::min<int64_t>(2, s.n_head - h));
      std::vector<float> qcat;
      latent_queries(s, l, h, g, q.data(), kQueries, qcat);
      for (size_t c = 0; c + 1 < cuts.size(); ++c) {
        attend_absorbed_part(s, g, qcat.data(), tokens.data(), kQueries, cache.view(), 0, cuts[c],
                             cuts[c + 1], parts[parts.size() - 1 - c], scratch);
      }
      finish_absorbed(s, l, h, g, kQueries, parts, absorbed.data(), scratch);
    }
    double diff = 0, norm = 0;
    for (size_t i = 0; i < absorbed.size(); ++i) {
      diff += (absorbed[i] - expanded[i]) * (absorbed[i] - expanded[i]);
      norm += absorbed[i] * absorbed[i];
    }
    EXPECT_LE(std::sqrt(diff / norm), 1e-5) << cuts.size() - 1 << " parts";
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, MlaForms,
                         testing::Combine(testing::Values("tiny-v3-f32", "tiny-v3-f16-kbvb",
                                                          "tiny-v2lite-f16"),
                                          testing::Values(KvType::kF32, KvType::kBF16)));

TEST(MlaForms, CostModelPrefersAbsorbedForDecodeAndExpandedForPrefill) {
  // DeepSeek-V3's shapes.
  const MlaShape v3{128, 128, 64, 512, 128, 576, 0.1f};
  const BatchToken decode[1] = {{0, 4000, 0, true}};
  EXPECT_FALSE(prefer_expanded(v3, decode, 1));
  std::vector<BatchToken> prefill;
  for (int i = 0; i < 512; ++i) prefill.push_back({0, i, 0, true});
  EXPECT_TRUE(prefer_expanded(v3, prefill.data(), 512));
}

}  // namespace
}  // namespace onecard::model
