// Decode over a context long enough that the attention is split over positions across threads (and its
// parts combined) gives the logits of one whole-prompt step in the expanded form, which is never split: for
// one sequence alone, and for two stepped together at different positions.
#include <gtest/gtest.h>

#include "base/rng.h"
#include "common/golden_logits.h"
#include "common/test_paths.h"
#include "model/deepseek2.h"
#include "synth/generate.h"

namespace onecard::model {
namespace {

constexpr int kTokens = 600;

class LongContext : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto spec = synth::make_spec("tiny");
    ASSERT_TRUE(spec.ok()) << spec.error().message();
    spec->n_ctx = 1024;
    path_ = test::temp_path("long-context.gguf");
    auto written = synth::generate(spec.value(), path_, false);
    ASSERT_TRUE(written.ok()) << written.error().message();
  }

  static std::unique_ptr<DeepSeek2> load(AttentionMode mode) {
    LoadOptions o;
    o.n_ctx = kTokens;
    o.n_threads = 2;
    o.attention = mode;
    auto m = DeepSeek2::load(path_, o);
    EXPECT_TRUE(m.ok()) << m.error().message();
    return m.ok() ? std::move(m.value()) : nullptr;
  }

  static std::vector<int32_t> prompt(uint64_t seed, int32_t vocab) {
    Rng rng(seed, "long-context");
    std::vector<int32_t> ids(kTokens);
    for (int32_t& id : ids) id = static_cast<int32_t>(rng.uniform() * static_cast<float>(vocab - 1));
    return ids;
  }

  // Every position's logits from one forward step of the whole prompt.
  static std::vector<float> whole(DeepSeek2& m, const std::vector<int32_t>& ids) {
    const KvCache cache(m.hparams(), 1, kTokens, KvType::kF32);
    std::vector<BatchToken> batch;
    for (int i = 0; i < kTokens; ++i) batch.push_back({ids[i], i, 0, true});
    std::vector<float> logits;
    EXPECT_TRUE(m.forward(batch, cache, logits).ok());
    return logits;
  }

  static std::string path_;
};
std::string LongContext::path_;

TEST_F(LongContext, SplitDecodeEqualsOneExpandedStep) {
  auto expanded = load(AttentionMode::kExpanded);
  auto automatic = load(AttentionMode::kAuto);
  ASSERT_TRUE(expanded && automatic);
  const auto vocab = static_cast<size_t>(automatic->hparams().n_vocab);
  const std::vector<int32_t> a = prompt(1, automatic->hparams().n_vocab),
                             b = prompt(2, automatic->hparams().n_vocab);
  const std::vector<float> want_a = whole(*expanded, a), want_b = whole(*expanded, b);

  // Sequence 0 alone up to position 299, then with sequence 1 (lagging 300 positions) beside it: runs of
  // one and of two tokens, some of whose parts lie past a token's own position.
  const KvCache cache(automatic->hparams(), 2, kTokens, KvType::kF32);
  std::vector<float> got_a, got_b, step;
  constexpr int kLag = 300;
  for (int s = 0; s < kTokens; ++s) {
    std::vector<BatchToken> batch = {{a[s], s, 0, true}};
    if (s >= kLag) batch.push_back({b[s - kLag], s - kLag, 1, true});
    ASSERT_TRUE(automatic->forward(batch, cache, step).ok());
    got_a.insert(got_a.end(), step.begin(), step.begin() + static_cast<std::ptrdiff_t>(vocab));
    if (s >= kLag) got_b.insert(got_b.end(), step.begin() + static_cast<std::ptrdiff_t>(vocab), step.end());
  }
  const test::Agreement alone = test::compare_logits(got_a, want_a, vocab);
  EXPECT_LE(alone.max_rel, 1e-4);
  EXPECT_EQ(alone.top1, 1.0);
  const std::vector<float> want_b_head(
      want_b.begin(), want_b.begin() + static_cast<std::ptrdiff_t>((kTokens - kLag) * vocab));
  const test::Agreement beside = test::compare_logits(got_b, want_b_head, vocab);
  EXPECT_LE(beside.max_rel, 1e-4);
  EXPECT_EQ(beside.top1, 1.0);
}

}  // namespace
}  // namespace onecard::model
