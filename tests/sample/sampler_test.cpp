#include "sample/sampler.h"

#include <cmath>
#include <limits>
#include <map>

#include <gtest/gtest.h>

namespace onecard::sample {
namespace {

SamplingParams plain(float temperature, uint64_t seed = 1) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

const std::vector<float> kLogits = {1.0f, 3.0f, 2.0f, 0.5f, -1.0f, 2.9f};

TEST(Sampler, GreedyTakesTheBestAndRespectsBias) {
  Sampler s(plain(0.0f), 6);
  EXPECT_EQ(s.sample(kLogits.data()), 1);
  SamplingParams p = plain(0.0f);
  p.logit_bias = {{1, -std::numeric_limits<float>::infinity()}, {3, 2.0f}};
  Sampler banned(p, 6);
  EXPECT_EQ(banned.sample(kLogits.data()), 5);  // 1 banned; 3 lifted to 2.5 stays below 2.9
}

TEST(Sampler, SameSeedSameTokensOtherSeedOtherTokens) {
  std::vector<int32_t> a, b, c;
  Sampler sa(plain(1.0f, 7), 6), sb(plain(1.0f, 7), 6), sc(plain(1.0f, 8), 6);
  for (int i = 0; i < 200; ++i) {
    a.push_back(sa.sample(kLogits.data()));
    b.push_back(sb.sample(kLogits.data()));
    c.push_back(sc.sample(kLogits.data()));
  }
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  sa.reset();
  std::vector<int32_t> again;
  for (int i = 0; i < 200; ++i) again.push_back(sa.sample(kLogits.data()));
  EXPECT_EQ(a, again);
}

TEST(Sampler, DrawsFollowTheSoftmaxAtTemperature) {
  for (float temp : {1.0f, 0.5f}) {
    Sampler s(plain(temp, 3), 6);
    std::map<int32_t, int> hist;
    constexpr int kDraws = 40000;
    for (int i = 0; i < kDraws; ++i) ++hist[s.sample(kLogits.data())];
    double z = 0;
    for (float l : kLogits) z += std::exp(l / temp);
    for (int32_t id = 0; id < 6; ++id) {
      const double p = std::exp(kLogits[id] / temp) / z;
      const double sd = std::sqrt(p * (1 - p) / kDraws);
      EXPECT_NEAR(hist[id] / static_cast<double>(kDraws), p, 5 * sd + 1e-4)
          << "token " << id << " T " << temp;
    }
  }
}

TEST(Sampler, FiltersRemoveTheTail) {
  SamplingParams k = plain(1.0f);
  k.top_k = 2;  // only tokens 1 and 5
  SamplingParams top_p = plain(1.0f);
  top_p.top_p = 0.5f;  // p(1) = 0.39 < 0.5, with token 5 (0.35) the nucleus holds 0.74
  SamplingParams min_p = plain(1.0f);
  min_p.min_p = 0.5f;  // tokens with at least half of token 1's probability: 1, 5 and 2 (e^-1 = 0.37 no)
  for (const auto& [params, allowed] :
       {std::pair{k, std::vector<int32_t>{1, 5}}, std::pair{top_p, std::vector<int32_t>{1, 5}},
        std::pair{min_p, std::vector<int32_t>{1, 5}}}) {
    Sampler s(params, 6);
    std::map<int32_t, int> seen;
    for (int i = 0; i < 2000; ++i) ++seen[s.sample(kLogits.data())];
    for (const auto& [id, n] : seen) {
      EXPECT_NE(std::find(allowed.begin(), allowed.end(), id), allowed.end())
          << "token " << id << " drawn " << n;
    }
    EXPECT_EQ(seen.size(), allowed.size());
  }
  SamplingParams one = plain(1.0f);
  one.top_k = 1;
  Sampler s(one, 6);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(s.sample(kLogits.data()), 1);
}

TEST(Sampler, PenaltiesDiscourageRepeats) {
  SamplingParams p = plain(0.0f);
  p.presence_penalty = 0.5f;
  Sampler s(p, 6);
  EXPECT_EQ(s.sample(kLogits.data()), 1);  // 3.0
  EXPECT_EQ(s.sample(kLogits.data()), 5);  // 1 is now 2.5 < 2.9
  EXPECT_EQ(s.sample(kLogits.data()), 1);  // 1 at 2.5 beats 5 at 2.4 and 2 at 2.0
}

TEST(Sampler, RepeatPenaltyScalesByTheSignAndWindowForgets) {
  SamplingParams p = plain(0.0f);
  p.repeat_penalty = 2.0f;
  p.penalty_last_n = 1;
  Sampler s(p, 6);
  s.accept(1);  // 3.0 -> 1.5
  EXPECT_EQ(s.sample(kLogits.data()), 5);
  // The window of one now holds only 5 (2.9 -> 1.45): token 1 is back to 3.0.
  EXPECT_EQ(s.sample(kLogits.data()), 1);
}

TEST(Sampler, RejectsParametersOutOfRange) {
  auto err = [](SamplingParams p) {
    return p.validate(6).ok() ? std::string() : p.validate(6).error().message();
  };
  SamplingParams p;
  p.temperature = -1;
  EXPECT_NE(err(p).find("temperature -1"), std::string::npos);
  p = {};
  p.top_p = 0;
  EXPECT_NE(err(p).find("top_p 0"), std::string::npos);
  p = {};
  p.min_p = 2;
  EXPECT_NE(err(p).find("min_p 2"), std::string::npos);
  p = {};
  p.top_k = -3;
  EXPECT_NE(err(p).find("top_k -3"), std::string::npos);
  p = {};
  p.logit_bias = {{6, 1.0f}};
  EXPECT_NE(err(p).find("logit_bias token 6"), std::string::npos);
  EXPECT_TRUE(SamplingParams{}.validate(6).ok());
}

}  // namespace
}  // namespace onecard::sample
