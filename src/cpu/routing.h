// The CPU's expert selection (backend::RoutingConfig says what DeepSeek's reference gate does).
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"

namespace onecard::cpu {

// Buffers for one routing call, sized once per configuration.
struct RoutingScratch {
  explicit RoutingScratch(const backend::RoutingConfig& cfg)
      : scores(cfg.n_expert), select(cfg.n_expert), group_score(cfg.n_group), group_kept(cfg.n_group) {}
  std::vector<float> scores, select, group_score;
  std::vector<uint8_t> group_kept;
};

// For one token: logits[n_expert] in, ids[k] (distinct) and weights[k] out.
void route(const backend::RoutingConfig& cfg, const float* logits, int32_t* ids, float* weights,
           RoutingScratch& scratch);

}  // namespace onecard::cpu
