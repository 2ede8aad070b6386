#include "runtime/session.h"

#include <chrono>

#include "sample/stop.h"
#include "text/detokenizer.h"

namespace onecard::runtime {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

std::string_view finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kContextFull:
      return "context";
    case FinishReason::kCancelled:
      return "cancelled";
  }
  return "stop";
}

Session::Session(model::DeepSeek2& model, const text::Tokenizer& tokenizer, int seq)
    : model_(model), tokenizer_(tokenizer), seq_(seq) {}

void Session::reset() {
  tokens_.clear();
  logits_.clear();
}

Status Session::evaluate(std::span<const int32_t> tokens, int first_pos, std::vector<float>& logits) {
  std::vector<model::BatchToken> batch;
  batch.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    batch.push_back({tokens[i], first_pos + static_cast<int32_t>(i), seq_, i + 1 == tokens.size()});
  }
  return model_.forward(batch, logits);
}

Status Session::set_prompt(std::span<const int32_t> prompt) {
  if (prompt.empty()) return make_error("the prompt is empty");
  if (static_cast<int>(prompt.size()) >= model_.n_ctx()) {
    return make_error(
        "the prompt has {} tokens, the context holds {} (leave room to generate; raise --ctx-size)",
        prompt.size(), model_.n_ctx());
  }
  size_t keep = 0;
  while (keep < tokens_.size() && keep < prompt.size() && tokens_[keep] == prompt[keep]) ++keep;
  // The last prompt token is always evaluated again: its logits start the generation.
  if (keep == prompt.size()) --keep;
  const auto start = std::chrono::steady_clock::now();
  tokens_.resize(keep);
  auto st = evaluate(prompt.subspan(keep), static_cast<int>(keep), logits_);
  if (!st.ok()) {
    tokens_.clear();
    return st;
  }
  tokens_.assign(prompt.begin(), prompt.end());
  last_prompt_tokens_ = static_cast<int>(prompt.size() - keep);
  last_prompt_seconds_ = seconds_since(start);
  return {};
}

Result<GenerationStats> Session::generate(const GenerateOptions& options,
                                          const std::function<void(std::string_view)>& on_text,
                                          const std::atomic<bool>* cancel) {
  if (tokens_.empty() || logits_.empty()) return make_error("generate needs a prompt first");
  ONECARD_TRY(options.sampling.validate(tokenizer_.n_vocab()));
  GenerationStats stats;
  stats.prompt_tokens = last_prompt_tokens_;
  stats.prompt_seconds = last_prompt_seconds_;
  last_prompt_tokens_ = 0;
  last_prompt_seconds_ = 0;

  sample::Sampler sampler(options.sampling, tokenizer_.n_vocab());
  for (int32_t t : tokens_) sampler.accept(t);
  sample::StopMatcher stops(options.stop);
  text::StreamDecoder decoder(tokenizer_);
  const auto start = std::chrono::steady_clock::now();
  auto emit = [&](const std::string& text) {
    const std::string shown = stops.feed(text);
    if (!shown.empty()) on_text(shown);
  };

  stats.finish = FinishReason::kLength;
  while (options.max_tokens < 0 || stats.generated_tokens < options.max_tokens) {
    if (cancel != nullptr && cancel->load()) {
      stats.finish = FinishReason::kCancelled;
      break;
    }
    const int32_t id = sampler.sample(logits_.data());
    if (!options.ignore_eos && tokenizer_.is_eog(id)) {
      stats.finish = FinishReason::kStop;
      break;
    }
    ++stats.generated_tokens;
    emit(decoder.push(id));
    if (stops.stopped()) {
      // The token that completed the stop string is not evaluated: the cache ends before it.
      stats.finish = FinishReason::kStop;
      break;
    }
    if (static_cast<int>(tokens_.size()) >= model_.n_ctx()) {
      stats.finish = FinishReason::kContextFull;
      break;
    }
    const int32_t one[1] = {id};
    ONECARD_TRY(evaluate(one, static_cast<int>(tokens_.size()), logits_));
    tokens_.push_back(id);
  }
  if (!stops.stopped()) {
    emit(decoder.flush());
    const std::string rest = stops.flush();
    if (!rest.empty()) on_text(rest);
  }
  stats.generate_seconds = seconds_since(start);
  return stats;
}

}  // namespace onecard::runtime
