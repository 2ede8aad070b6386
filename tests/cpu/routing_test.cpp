#include "cpu/routing.h"

#include <cmath>

#include <gtest/gtest.h>

namespace onecard::cpu {
using backend::Gating;
using backend::RoutingConfig;
namespace {

float sigmoid(float x) {
  return 1.0f / (1.0f + std::exp(-x));
}

TEST(Routing, SoftmaxTopKWithoutGroups) {
  RoutingConfig c;
  c.n_expert = 6;
  c.k = 2;
  c.gating = Gating::kSoftmax;
  RoutingScratch s(c);
  const float logits[6] = {0.1f, 2.0f, -1.0f, 1.5f, 0.0f, 1.5f};
  int32_t ids[2];
  float w[2];
  route(c, logits, ids, w, s);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 3);  // tie with expert 5: the lower id wins
  double sum = 0;
  for (float l : logits) sum += std::exp(l);
  EXPECT_NEAR(w[0], std::exp(2.0) / sum, 1e-6);  // V2 weights: the softmax probabilities, not renormalised
  EXPECT_NEAR(w[1], std::exp(1.5) / sum, 1e-6);
}

// V3: the bias steers the choice but not the weights; groups are ranked by their two best biased scores.
TEST(Routing, SigmoidWithBiasAndGroupLimit) {
  RoutingConfig c;
  c.n_expert = 8;
  c.k = 2;
  c.n_group = 4;
  c.n_group_used = 1;
  c.gating = Gating::kSigmoid;
  c.normalize = true;
  c.scale = 2.5f;
  //                     group 0      group 1      group 2      group 3
  const float logits[8] = {3.0f, -4.0f, 1.0f, 1.0f, 0.0f, 0.0f, 2.0f, -9.0f};
  const float bias[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  c.bias = bias;
  RoutingScratch s(c);
  int32_t ids[2];
  float w[2];
  route(c, logits, ids, w, s);
  // Top-2 sums: g0 = s(3)+s(-4) = 0.97, g1 = 2 s(1) = 1.46, g2 = 1.0, g3 = 0.88: only group 1 stays, although
  // expert 0 has the best single score.
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[1], 3);
  EXPECT_NEAR(w[0], 1.25f, 1e-6);
  EXPECT_NEAR(w[1], 1.25f, 1e-6);

  // A bias lifts expert 5 into the choice; its weight is still its unbiased score, normalised.
  const float bias2[8] = {0, 0, 0, 0, 0, 2.0f, 0, 0};
  c.bias = bias2;
  c.n_group_used = 2;
  route(c, logits, ids, w, s);
  EXPECT_EQ(ids[0], 5);
  EXPECT_EQ(ids[1], 2);
  const float s5 = sigmoid(0.0f), s2 = sigmoid(1.0f);
  EXPECT_NEAR(w[0], 2.5f * s5 / (s5 + s2), 1e-6);
  EXPECT_NEAR(w[1], 2.5f * s2 / (s5 + s2), 1e-6);
}

TEST(Routing, GroupsRankedByMaxWithoutBias) {
  RoutingConfig c;
  c.n_expert = 6;
  c.k = 2;
  c.n_group = 3;
  c.n_group_used = 1;
  c.gating = Gating::kSoftmax;
  RoutingScratch s(c);
  // Group maxima: 1.0, 0.9, 2.0 (group 2 wins on its single best, though group 0's pair sums higher).
  const float logits[6] = {1.0f, 0.95f, 0.9f, 0.0f, 2.0f, -3.0f};
  int32_t ids[2];
  float w[2];
  route(c, logits, ids, w, s);
  EXPECT_EQ(ids[0], 4);
  EXPECT_EQ(ids[1], 5);
}

TEST(Routing, ChosenExpertsAreDistinct) {
  RoutingConfig c;
  c.n_expert = 4;
  c.k = 4;
  c.gating = Gating::kSigmoid;
  RoutingScratch s(c);
  const float logits[4] = {0, 0, 0, 0};
  int32_t ids[4];
  float w[4];
  route(c, logits, ids, w, s);
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(ids[1], 1);
  EXPECT_EQ(ids[2], 2);
  EXPECT_EQ(ids[3], 3);
}

}  // namespace
}  // namespace onecard::cpu
