#include "runtime/session.h"

#include <gtest/gtest.h>

#include "common/test_paths.h"

namespace onecard::runtime {
namespace {

class SessionTest : public testing::Test {
 protected:
  void SetUp() override {
    model::LoadOptions o;
    o.n_ctx = 96;
    o.n_threads = 2;
    model_ = model::DeepSeek2::load(test::golden_dir() + "/models/tiny-v3-f32.gguf", o).value();
    tokenizer_ = text::Tokenizer::from_gguf(model_->file()).value();
    engine_ = new_engine();
  }

  std::unique_ptr<Engine> new_engine() {
    EngineOptions o;
    o.kv_type = model::KvType::kF32;
    return std::make_unique<Engine>(*model_, *tokenizer_, o);
  }

  std::vector<int32_t> encode(const std::string& text) { return tokenizer_->encode(text).value(); }

  struct Output {
    std::string text;
    GenerationStats stats;
  };
  Output generate(Session& s, const GenerateOptions& o, const std::atomic<bool>* cancel = nullptr) {
    Output out;
    auto r = s.generate(
        o, [&](std::string_view piece) { out.text += piece; }, cancel);
    EXPECT_TRUE(r.ok()) << r.error().message();
    if (r.ok()) out.stats = r.value();
    return out;
  }

  static GenerateOptions options(int max_tokens, uint64_t seed) {
    GenerateOptions o;
    o.max_tokens = max_tokens;
    o.sampling.seed = seed;
    o.sampling.temperature = 1.0f;
    o.ignore_eos = true;
    return o;
  }

  std::unique_ptr<model::DeepSeek2> model_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(SessionTest, SameSeedSameTextOtherSeedOtherText) {
  Session s(*engine_);
  const auto prompt = encode("the quick brown fox");
  ASSERT_TRUE(s.set_prompt(prompt).ok());
  const Output a = generate(s, options(24, 11));
  ASSERT_TRUE(s.set_prompt(prompt).ok());
  const Output b = generate(s, options(24, 11));
  ASSERT_TRUE(s.set_prompt(prompt).ok());
  const Output c = generate(s, options(24, 12));
  EXPECT_EQ(a.text, b.text);
  EXPECT_NE(a.text, c.text);
  EXPECT_EQ(a.stats.generated_tokens, 24);
  EXPECT_EQ(a.stats.finish, FinishReason::kLength);
}

TEST_F(SessionTest, StopStringEndsTheTextBeforeIt) {
  Session s(*engine_);
  const auto prompt = encode("once upon a time");
  ASSERT_TRUE(s.set_prompt(prompt).ok());
  const Output full = generate(s, options(40, 5));
  ASSERT_GT(full.text.size(), 12u);
  // A stop string taken from the middle of what this seed writes, spanning several tokens.
  const std::string stop = full.text.substr(8, 4);
  GenerateOptions o = options(40, 5);
  o.stop = {stop};
  ASSERT_TRUE(s.set_prompt(prompt).ok());
  const Output cut = generate(s, o);
  EXPECT_EQ(cut.text, full.text.substr(0, full.text.find(stop)));
  EXPECT_EQ(cut.stats.finish, FinishReason::kStop);
  // The cache holds exactly what was evaluated: the next prompt can build on it.
  EXPECT_LE(s.tokens().size(), prompt.size() + 40);
}

TEST_F(SessionTest, SharedPrefixIsNotEvaluatedAgainAndGivesTheSameResult) {
  // Each on its own engine: the fresh one's prefix cache is empty.
  const auto other_engine = new_engine();
  Session fresh(*other_engine), reused(*engine_);
  const auto first = encode("alpha beta gamma");
  const auto longer = encode("alpha beta gamma delta epsilon");
  ASSERT_TRUE(reused.set_prompt(first).ok());
  GenerateOptions greedy = options(8, 0);
  greedy.sampling.temperature = 0.0f;
  (void)generate(reused, greedy);
  ASSERT_TRUE(reused.set_prompt(longer).ok());
  const Output a = generate(reused, greedy);
  size_t common = 0;
  while (common < first.size() && first[common] == longer[common]) ++common;
  EXPECT_EQ(a.stats.prompt_tokens, static_cast<int>(longer.size() - common));

  ASSERT_TRUE(fresh.set_prompt(longer).ok());
  const Output b = generate(fresh, greedy);
  EXPECT_EQ(b.stats.prompt_tokens, static_cast<int>(longer.size()));
  EXPECT_EQ(a.text, b.text);
}

TEST_F(SessionTest, PromptLongerThanTheContextIsRefused) {
  Session s(*engine_);
  std::vector<int32_t> long_prompt(200, 300);
  auto st = s.set_prompt(long_prompt);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("the prompt has 200 tokens, the context holds 96"), std::string::npos);
  EXPECT_FALSE(s.set_prompt({}).ok());
}

TEST_F(SessionTest, ContextFullEndsGeneration) {
  Session s(*engine_);
  ASSERT_TRUE(s.set_prompt(encode("a b c d e f g h")).ok());
  const Output out = generate(s, options(-1, 3));
  EXPECT_EQ(out.stats.finish, FinishReason::kContextFull);
  EXPECT_EQ(static_cast<int>(s.tokens().size()), 96);
}

TEST_F(SessionTest, CancelStopsAtTheNextToken) {
  Session s(*engine_);
  ASSERT_TRUE(s.set_prompt(encode("hello")).ok());
  std::atomic<bool> cancel{false};
  int pieces = 0;
  auto r = s.generate(
      options(50, 1), [&](std::string_view) { cancel = ++pieces >= 3; }, &cancel);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish, FinishReason::kCancelled);
  EXPECT_LT(r->generated_tokens, 50);
}

TEST_F(SessionTest, EndOfGenerationTokenStops) {
  Session s(*engine_);
  ASSERT_TRUE(s.set_prompt(encode("hello")).ok());
  GenerateOptions o = options(50, 1);
  o.ignore_eos = false;
  o.sampling.logit_bias = {{tokenizer_->eos(), 1000.0f}};
  const Output out = generate(s, o);
  EXPECT_EQ(out.stats.finish, FinishReason::kStop);
  EXPECT_EQ(out.stats.generated_tokens, 0);
  EXPECT_EQ(out.text, "");
}

TEST_F(SessionTest, BadSamplingParametersAreRefused) {
  Session s(*engine_);
  ASSERT_TRUE(s.set_prompt(encode("hello")).ok());
  GenerateOptions o = options(5, 1);
  o.sampling.top_p = 1.5f;
  auto r = s.generate(o, [](std::string_view) {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("top_p 1.5"), std::string::npos);
}

}  // namespace
}  // namespace onecard::runtime
