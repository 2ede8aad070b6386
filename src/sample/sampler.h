// Picks the next token from logits. The chain, in order: logit bias, repetition / presence / frequency
// penalties over the recent tokens, top-k, top-p, min-p, temperature, then a draw from the seeded generator
// (temperature 0: the most likely token). The same seed and settings give the same tokens on every machine.
#pragma once

#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/rng.h"

namespace onecard::sample {

struct SamplingParams {
  float temperature = 0.8f;        // 0: greedy
  int top_k = 40;                  // 0: off
  float top_p = 0.95f;             // 1: off
  float min_p = 0.05f;             // 0: off; drop tokens below min_p times the best token's probability
  float repeat_penalty = 1.0f;     // 1: off; divides positive (multiplies negative) logits of recent tokens
  float presence_penalty = 0.0f;   // subtracted once from each recent token's logit
  float frequency_penalty = 0.0f;  // subtracted per occurrence among the recent tokens
  int penalty_last_n = 64;         // how many recent tokens the penalties look at
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the token's logit (-inf bans it)
  uint64_t seed = 0;

  // An error naming the first parameter out of range (for vocabulary size n_vocab).
  Status validate(int32_t n_vocab) const;
};

class Sampler {
 public:
  Sampler(SamplingParams params, int32_t n_vocab);

  // Chooses a token from n_vocab logits and remembers it for the penalties.
  int32_t sample(const float* logits);
  // Remembers a token that was not sampled (the prompt), for the penalties.
  void accept(int32_t token);
  void reset();

  const SamplingParams& params() const { return params_; }

 private:
  struct Candidate {
    int32_t id;
    float logit;
    float p;
  };
  void apply_penalties();
  void keep_top_k();
  void softmax();

  SamplingParams params_;
  int32_t n_vocab_;
  Rng rng_;
  std::deque<int32_t> recent_;
  std::vector<Candidate> cand_;  // reused: no allocation per token
  std::vector<int32_t> counts_;  // occurrences of each token among the recent ones
};

}  // namespace onecard::sample
