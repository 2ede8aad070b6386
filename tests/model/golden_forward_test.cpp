// The forward pass against the logits DeepSeek's official implementation computed for the golden models.
#include <cmath>
#include <fstream>
#include <ostream>

#include <gtest/gtest.h>

#include "common/golden_logits.h"
#include "common/test_paths.h"
#include "model/deepseek2.h"

namespace onecard::model {
namespace {

using test::Agreement;
using test::compare_logits;
using test::read_all;

struct Golden {
  std::string gguf;
  std::vector<int32_t> tokens;
  std::vector<float> logits;  // [tokens, vocab]
};

Golden load_golden(const std::string& name) {
  const std::string base = test::golden_dir() + "/models/" + name;
  return {base + ".gguf", read_all<int32_t>(base + ".tokens.i32"), read_all<float>(base + ".logits.f32")};
}

std::vector<float> run(const Golden& g, int chunk, KvType kv, int threads,
                       AttentionMode mode = AttentionMode::kAuto) {
  LoadOptions o;
  o.attention = mode;
  o.n_ctx = static_cast<int>(g.tokens.size());
  o.n_batch = chunk;
  o.n_threads = threads;
  auto m = DeepSeek2::load(g.gguf, o);
  EXPECT_TRUE(m.ok()) << m.error().message();
  const KvCache cache(m.value()->hparams(), 1, o.n_ctx, kv);
  std::vector<BatchToken> batch;
  for (size_t i = 0; i < g.tokens.size(); ++i)
    batch.push_back({g.tokens[i], static_cast<int32_t>(i), 0, true});
  std::vector<float> logits;
  auto st = m.value()->forward(batch, cache, logits);
  EXPECT_TRUE(st.ok()) << st.error().message();
  return logits;
}

struct Case {
  std::string model;
  double tolerance;  // with an f32 KV cache; the bound for the weight type
};
std::ostream& operator<<(std::ostream& os, const Case& c) {
  return os << c.model;
}

class GoldenForward : public testing::TestWithParam<std::tuple<Case, int>> {};

TEST_P(GoldenForward, MatchesTheReferenceWithF32Cache) {
  const auto& [c, chunk] = GetParam();
  const Golden g = load_golden(c.model);
  const size_t vocab = g.logits.size() / g.tokens.size();
  const int step = chunk > 0 ? chunk : static_cast<int>(g.tokens.size());
  const Agreement a = compare_logits(run(g, step, KvType::kF32, 2), g.logits, vocab);
  EXPECT_LE(a.max_rel, c.tolerance);
  EXPECT_EQ(a.top1, 1.0);
}

TEST_P(GoldenForward, StaysCloseWithBf16Cache) {
  const auto& [c, chunk] = GetParam();
  const Golden g = load_golden(c.model);
  const size_t vocab = g.logits.size() / g.tokens.size();
  const int step = chunk > 0 ? chunk : static_cast<int>(g.tokens.size());
  const Agreement a = compare_logits(run(g, step, KvType::kBF16, 3), g.logits, vocab);
  EXPECT_LE(a.max_rel, 1e-2);
  EXPECT_GE(a.top1, 0.98);
}

INSTANTIATE_TEST_SUITE_P(
    Golden, GoldenForward,
    testing::Combine(testing::Values(Case{"tiny-v3-f32", 1e-4}, Case{"tiny-v3-bf16", 1e-3},
                                     Case{"tiny-v3-f16-kbvb", 1e-3}, Case{"tiny-v2lite-f16", 1e-3}),
                     testing::Values(1, 7, 0)),
    [](const auto& param_info) {
      std::string name =
          std::get<0>(param_info.param).model + "_chunk" + std::to_string(std::get<1>(param_info.param));
      for (char& ch : name) ch = ch == '-' ? '_' : ch;
      return name;
    });

// Both attention forms, forced, on every golden model: the absorbed one as in decode, the expanded one as in
// a long prefill (over several key blocks when the prompt is long).
class AttentionForms : public testing::TestWithParam<std::tuple<Case, AttentionMode>> {};

TEST_P(AttentionForms, EachMatchesTheReference) {
  const auto& [c, mode] = GetParam();
  const Golden g = load_golden(c.model);
  const size_t vocab = g.logits.size() / g.tokens.size();
  for (int chunk : {7, static_cast<int>(g.tokens.size())}) {
    const Agreement a = compare_logits(run(g, chunk, KvType::kF32, 2, mode), g.logits, vocab);
    EXPECT_LE(a.max_rel, c.tolerance) << "chunk " << chunk;
    EXPECT_EQ(a.top1, 1.0) << "chunk " << chunk;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Golden, AttentionForms,
    testing::Combine(testing::Values(Case{"tiny-v3-f32", 1e-4}, Case{"tiny-v3-f16-kbvb", 1e-3},
                                     Case{"tiny-v2lite-f16", 1e-3}),
                     testing::Values(AttentionMode::kAbsorbed, AttentionMode::kExpanded)));

// Two sequences stepped together, token by token, at different positions: each must get the logits it gets
// alone.
TEST(BatchedForward, SequencesDoNotDisturbEachOther) {
  const Golden g = load_golden("tiny-v3-f32");
  const size_t vocab = g.logits.size() / g.tokens.size();
  LoadOptions o;
  o.n_ctx = 64;
  o.n_threads = 2;
  auto m = DeepSeek2::load(g.gguf, o);
  ASSERT_TRUE(m.ok()) << m.error().message();
  // Pages of 16 positions: both sequences cross page boundaries.
  const KvCache cache(m.value()->hparams(), 2, o.n_ctx, KvType::kF32);
  // Sequence 0 is the golden prompt; sequence 1 the same tokens reversed, started 5 steps later.
  const int n = 40, lag = 5;
  std::vector<int32_t> other(g.tokens.rbegin(), g.tokens.rbegin() + n);
  std::vector<float> seq0, seq1, step;
  for (int s = 0; s < n + lag; ++s) {
    std::vector<BatchToken> batch;
    if (s < n) batch.push_back({g.tokens[s], s, 0, true});
    if (s >= lag) batch.push_back({other[s - lag], s - lag, 1, true});
    ASSERT_TRUE(m.value()->forward(batch, cache, step).ok());
    size_t at = 0;
    if (s < n) seq0.insert(seq0.end(), step.begin(), step.begin() + vocab), at = vocab;
    if (s >= lag) seq1.insert(seq1.end(), step.begin() + at, step.begin() + at + vocab);
  }
  const std::vector<float> want0(g.logits.begin(), g.logits.begin() + n * vocab);
  EXPECT_LE(compare_logits(seq0, want0, vocab).max_rel, 1e-4);

  // Sequence 1 alone, in one fresh model.
  auto alone = DeepSeek2::load(g.gguf, o);
  ASSERT_TRUE(alone.ok());
  const KvCache alone_cache(alone.value()->hparams(), 1, o.n_ctx, KvType::kF32);
  std::vector<BatchToken> batch;
  for (int i = 0; i < n; ++i) batch.push_back({other[i], i, 0, true});
  std::vector<float> want1;
  ASSERT_TRUE(alone.value()->forward(batch, alone_cache, want1).ok());
  EXPECT_LE(compare_logits(seq1, want1, vocab).max_rel, 1e-5);
}

TEST(BatchedForward, RefusesTokensOutsideTheModelOrContext) {
  const Golden g = load_golden("tiny-v3-f32");
  LoadOptions o;
  o.n_ctx = 16;
  auto m = DeepSeek2::load(g.gguf, o);
  ASSERT_TRUE(m.ok());
  const KvCache cache(m.value()->hparams(), 1, o.n_ctx, KvType::kF32);
  std::vector<float> logits;
  auto st = m.value()->forward({{512, 0, 0, true}}, cache, logits);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("id 512 is outside the vocabulary"), std::string::npos);
  st = m.value()->forward({{1, 16, 0, true}}, cache, logits);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("position 16 is outside the context of 16 tokens"), std::string::npos);
  st = m.value()->forward({{1, 0, 1, true}}, cache, logits);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("sequence 1"), std::string::npos);
}

}  // namespace
}  // namespace onecard::model
