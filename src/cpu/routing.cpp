#include "cpu/routing.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace onecard::cpu {

void route(const backend::RoutingConfig& cfg, const float* logits, int32_t* ids, float* weights,
           RoutingScratch& sc) {
  const int E = cfg.n_expert;
  float* scores = sc.scores.data();  // unbiased: the weights come from these
  float* select = sc.select.data();  // what the choice is made on
  if (cfg.gating == backend::Gating::kSoftmax) {
    const float mx = *std::max_element(logits, logits + E);
    double sum = 0;
    for (int e = 0; e < E; ++e) sum += scores[e] = std::exp(logits[e] - mx);
    for (int e = 0; e < E; ++e) scores[e] = static_cast<float>(scores[e] / sum);
  } else {
    for (int e = 0; e < E; ++e) scores[e] = 1.0f / (1.0f + std::exp(-logits[e]));
  }
  for (int e = 0; e < E; ++e) select[e] = cfg.bias ? scores[e] + cfg.bias[e] : scores[e];

  // Excluded and already chosen experts are marked by -inf, below any real score.
  constexpr float kOut = -std::numeric_limits<float>::infinity();
  if (cfg.n_group > 1) {
    // A group's score is its best selection score, or with a bias the sum of its best two; the groups outside
    // the best n_group_used are excluded.
    const int per = E / cfg.n_group;
    for (int g = 0; g < cfg.n_group; ++g) {
      const float* s = select + g * per;
      float best = kOut, second = kOut;
      for (int i = 0; i < per; ++i) {
        if (s[i] > best) {
          second = best;
          best = s[i];
        } else if (s[i] > second) {
          second = s[i];
        }
      }
      sc.group_score[g] = cfg.bias && per > 1 ? best + second : best;
      sc.group_kept[g] = 0;
    }
    for (int n = 0; n < cfg.n_group_used; ++n) {
      int best = -1;
      for (int g = 0; g < cfg.n_group; ++g) {
        if (!sc.group_kept[g] && (best < 0 || sc.group_score[g] > sc.group_score[best])) best = g;
      }
      sc.group_kept[best] = 1;
    }
    for (int g = 0; g < cfg.n_group; ++g) {
      if (!sc.group_kept[g]) std::fill(select + g * per, select + (g + 1) * per, kOut);
    }
  }

  // Top-k by selection score; ties go to the lower expert id. Group limits leave at least k candidates
  // (checked when the hyper-parameters are read), so every pick is a real one.
  for (int j = 0; j < cfg.k; ++j) {
    int best = 0;
    for (int e = 1; e < E; ++e) {
      if (select[e] > select[best]) best = e;
    }
    ids[j] = best;
    weights[j] = scores[best];
    select[best] = kOut;
  }
  if (cfg.normalize) {
    float sum = 0;
    for (int j = 0; j < cfg.k; ++j) sum += weights[j];
    for (int j = 0; j < cfg.k; ++j) weights[j] /= sum;
  }
  for (int j = 0; j < cfg.k; ++j) weights[j] *= cfg.scale;
}

}  // namespace onecard::cpu
