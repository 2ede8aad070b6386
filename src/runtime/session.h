// One conversation on one sequence of a model: the tokens in its KV cache, prefill, and generation with
// sampling, end-of-generation tokens, stop strings and streaming UTF-8 text. A new prompt that shares a
// prefix with what is cached reuses that prefix (multi-turn chat re-sends the whole conversation).
#pragma once

#include <atomic>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "model/deepseek2.h"
#include "sample/sampler.h"
#include "text/tokenizer.h"

namespace onecard::runtime {

struct GenerateOptions {
  int max_tokens = 256;  // < 0: until an end-of-generation token, a stop string or the end of the context
  sample::SamplingParams sampling;
  std::vector<std::string> stop;
  bool ignore_eos = false;
};

enum class FinishReason { kStop, kLength, kContextFull, kCancelled };
std::string_view finish_reason_name(FinishReason r);

struct GenerationStats {
  int prompt_tokens = 0;  // evaluated by this call's prefill (a reused prefix is not counted)
  int generated_tokens = 0;
  double prompt_seconds = 0;
  double generate_seconds = 0;
  FinishReason finish = FinishReason::kStop;
};

class Session {
 public:
  // The model and tokenizer must outlive the session.
  Session(model::DeepSeek2& model, const text::Tokenizer& tokenizer, int seq = 0);

  // Makes `prompt` the context, evaluating only what differs from the cached tokens. Fails, without changing
  // the cache, when the prompt does not fit the context.
  Status set_prompt(std::span<const int32_t> prompt);
  // Generates after the context; `on_text` receives each piece of text as soon as it is valid UTF-8 and past
  // any stop string. `cancel` (optional) ends generation at the next token.
  Result<GenerationStats> generate(const GenerateOptions& options,
                                   const std::function<void(std::string_view)>& on_text,
                                   const std::atomic<bool>* cancel = nullptr);

  const std::vector<int32_t>& tokens() const { return tokens_; }
  void reset();

 private:
  Status evaluate(std::span<const int32_t> tokens, int first_pos, std::vector<float>& logits);

  model::DeepSeek2& model_;
  const text::Tokenizer& tokenizer_;
  int seq_;
  std::vector<int32_t> tokens_;  // in the cache, positions 0..
  std::vector<float> logits_;    // of the last token in the cache
  double last_prompt_seconds_ = 0;
  int last_prompt_tokens_ = 0;
};

}  // namespace onecard::runtime
