#include "sample/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace onecard::sample {

Status SamplingParams::validate(int32_t n_vocab) const {
  if (!(temperature >= 0.0f) || !std::isfinite(temperature)) {
    return make_error("temperature {} must be a finite number >= 0", temperature);
  }
  if (top_k < 0) return make_error("top_k {} must be >= 0", top_k);
  if (!(top_p > 0.0f && top_p <= 1.0f)) return make_error("top_p {} must be in (0, 1]", top_p);
  if (!(min_p >= 0.0f && min_p <= 1.0f)) return make_error("min_p {} must be in [0, 1]", min_p);
  if (!(repeat_penalty > 0.0f) || !std::isfinite(repeat_penalty)) {
    return make_error("repeat_penalty {} must be a finite number > 0", repeat_penalty);
  }
  if (!std::isfinite(presence_penalty) || !std::isfinite(frequency_penalty)) {
    return make_error("presence_penalty and frequency_penalty must be finite");
  }
  if (penalty_last_n < 0) return make_error("penalty_last_n {} must be >= 0", penalty_last_n);
  for (const auto& [id, bias] : logit_bias) {
    if (id < 0 || id >= n_vocab)
      return make_error("logit_bias token {} is outside the vocabulary (0..{})", id, n_vocab - 1);
    if (std::isnan(bias)) return make_error("logit_bias of token {} is not a number", id);
  }
  return {};
}

Sampler::Sampler(SamplingParams params, int32_t n_vocab)
    : params_(std::move(params)), n_vocab_(n_vocab), rng_(params_.seed, "sampler"), counts_(n_vocab, 0) {
  cand_.reserve(static_cast<size_t>(n_vocab));
}

void Sampler::reset() {
  recent_.clear();
  std::fill(counts_.begin(), counts_.end(), 0);
  rng_ = Rng(params_.seed, "sampler");
}

void Sampler::accept(int32_t token) {
  if (params_.penalty_last_n == 0 || token < 0 || token >= n_vocab_) return;
  recent_.push_back(token);
  ++counts_[token];
  if (static_cast<int>(recent_.size()) > params_.penalty_last_n) {
    --counts_[recent_.front()];
    recent_.pop_front();
  }
}

void Sampler::apply_penalties() {
  const bool any =
      params_.repeat_penalty != 1.0f || params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f;
  if (!any || recent_.empty()) return;
  for (auto& c : cand_) {
    const int32_t n = counts_[c.id];
    if (n == 0) continue;
    c.logit = c.logit > 0 ? c.logit / params_.repeat_penalty : c.logit * params_.repeat_penalty;
    c.logit -= params_.presence_penalty + params_.frequency_penalty * static_cast<float>(n);
  }
}

void Sampler::keep_top_k() {
  // Sorted best first; ties keep the lower id, so that results do not depend on the sort's stability.
  auto better = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  const size_t k =
      params_.top_k > 0 ? std::min(cand_.size(), static_cast<size_t>(params_.top_k)) : cand_.size();
  std::partial_sort(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(k), cand_.end(), better);
  cand_.resize(k);
}

void Sampler::softmax() {
  const float mx = cand_.front().logit;
  double sum = 0;
  for (auto& c : cand_) {
    c.p = std::exp(c.logit - mx);
    sum += c.p;
  }
  for (auto& c : cand_) c.p = static_cast<float>(c.p / sum);
}

int32_t Sampler::sample(const float* logits) {
  cand_.clear();
  for (int32_t i = 0; i < n_vocab_; ++i) cand_.push_back({i, logits[i], 0.0f});
  for (const auto& [id, bias] : params_.logit_bias) cand_[id].logit += bias;
  apply_penalties();
  // Banned tokens (-inf) never count, whatever the filters leave.
  std::erase_if(cand_, [](const Candidate& c) { return c.logit == -std::numeric_limits<float>::infinity(); });
  if (cand_.empty()) {
    // Every token banned: fall back to the raw best, the only answer that is still well defined.
    const int32_t best = static_cast<int32_t>(std::max_element(logits, logits + n_vocab_) - logits);
    accept(best);
    return best;
  }
  int32_t chosen;
  if (params_.temperature == 0.0f) {
    const auto best =
        std::max_element(cand_.begin(), cand_.end(), [](const Candidate& a, const Candidate& b) {
          return a.logit < b.logit || (a.logit == b.logit && a.id > b.id);
        });
    chosen = best->id;
  } else {
    keep_top_k();
    softmax();
    if (params_.top_p < 1.0f) {
      double cum = 0;
      size_t keep = cand_.size();
      for (size_t i = 0; i < cand_.size(); ++i) {
        cum += cand_[i].p;
        if (cum >= params_.top_p) {
          keep = i + 1;
          break;
        }
      }
      cand_.resize(keep);
    }
    if (params_.min_p > 0.0f) {
      const float floor = params_.min_p * cand_.front().p;
      size_t keep = 1;
      while (keep < cand_.size() && cand_[keep].p >= floor) ++keep;
      cand_.resize(keep);
    }
    for (auto& c : cand_) c.logit /= params_.temperature;
    softmax();
    const float u = rng_.uniform();
    float cum = 0;
    chosen = cand_.back().id;
    for (const auto& c : cand_) {
      cum += c.p;
      if (u < cum) {
        chosen = c.id;
        break;
      }
    }
  }
  accept(chosen);
  return chosen;
}

}  // namespace onecard::sample
