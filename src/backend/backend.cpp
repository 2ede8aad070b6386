#include "backend/backend.h"

#include <algorithm>
#include <cmath>

namespace onecard::backend {

std::vector<float> rope_frequencies(const RopeConfig& cfg) {
  const int dims = cfg.dims, half = dims / 2;
  const float base = cfg.base;
  std::vector<float> freqs(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i) {
    freqs[i] = static_cast<float>(1.0 / std::pow(static_cast<double>(base), 2.0 * i / dims));
  }
  if (cfg.factor <= 1.0f || cfg.original_context <= 0) return freqs;
  // YaRN: pairs that turn fewer than beta_slow times over the original context are interpolated (divided by
  // the factor), those turning more than beta_fast times are kept, and a linear ramp blends between.
  auto correction_dim = [&](float rotations) {
    return dims * std::log(cfg.original_context / (rotations * 2 * static_cast<float>(M_PI))) /
           (2 * std::log(base));
  };
  float low = std::max(0.0f, std::floor(correction_dim(cfg.beta_fast)));
  float high = std::min(static_cast<float>(dims - 1), std::ceil(correction_dim(cfg.beta_slow)));
  if (low == high) high += 0.001f;
  for (int i = 0; i < half; ++i) {
    const float ramp = std::clamp((static_cast<float>(i) - low) / (high - low), 0.0f, 1.0f);
    freqs[i] = freqs[i] / cfg.factor * ramp + freqs[i] * (1.0f - ramp);
  }
  return freqs;
}

std::string_view attention_mode_name(AttentionMode m) {
  switch (m) {
    case AttentionMode::kAbsorbed:
      return "absorbed";
    case AttentionMode::kExpanded:
      return "expanded";
    case AttentionMode::kAuto:
      break;
  }
  return "auto";
}

}  // namespace onecard::backend
