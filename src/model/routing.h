// Expert selection as DeepSeek's reference gate does it: scores (softmax or sigmoid of the router logits),
// the selection bias, group-limited choice, top-k, and the routing weights.
#pragma once

#include <cstdint>
#include <vector>

#include "model/hparams.h"

namespace onecard::model {

struct RoutingConfig {
  int n_expert = 0;
  int k = 0;
  int n_group = 1;
  int n_group_used = 1;
  Gating gating = Gating::kSoftmax;
  bool normalize = false;       // divide the chosen weights by their sum
  float scale = 1.0f;           // then multiply them by this
  const float* bias = nullptr;  // added to the scores for selection only

  static RoutingConfig from(const HParams& hp, const float* bias);
};

// Buffers for one routing call, sized once per configuration.
struct RoutingScratch {
  explicit RoutingScratch(const RoutingConfig& cfg)
      : scores(cfg.n_expert), select(cfg.n_expert), group_score(cfg.n_group), group_kept(cfg.n_group) {}
  std::vector<float> scores, select, group_score;
  std::vector<uint8_t> group_kept;
};

// For one token: logits[n_expert] in, ids[k] (distinct) and weights[k] out.
void route(const RoutingConfig& cfg, const float* logits, int32_t* ids, float* weights,
           RoutingScratch& scratch);

}  // namespace onecard::model
