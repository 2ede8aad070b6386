#include "runtime/session.h"

#include <chrono>

namespace onecard::runtime {

Status Session::set_prompt(std::span<const int32_t> prompt) {
  if (prompt.empty()) return make_error("the prompt is empty");
  if (static_cast<int>(prompt.size()) >= engine_.n_ctx()) {
    return make_error(
        "the prompt has {} tokens, the context holds {} (leave room to generate; raise --ctx-size)",
        prompt.size(), engine_.n_ctx());
  }
  tokens_.assign(prompt.begin(), prompt.end());
  return {};
}

Result<GenerationStats> Session::generate(const GenerateOptions& options,
                                          const std::function<void(std::string_view)>& on_text,
                                          const std::atomic<bool>* cancel) {
  if (tokens_.empty()) return make_error("generate needs a prompt first");
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  auto first = start;
  GenerationStats stats;
  std::vector<int32_t> output;
  GenerationEvent last;
  bool done = false;
  GenerationRequest req;
  req.prompt = tokens_;
  req.options = options;
  req.on_event = [&](const GenerationEvent& e) {
    if (output.empty() && !e.tokens.empty()) first = Clock::now();
    output.insert(output.end(), e.tokens.begin(), e.tokens.end());
    if (!e.text.empty()) on_text(e.text);
    if (e.done) last = e, done = true;
  };
  const Submitted sub = engine_.submit(std::move(req));
  if (!sub.ok()) return Error(sub.message);
  while (!done) {
    if (cancel != nullptr && cancel->load()) sub.handle->cancel();
    engine_.step();
  }
  if (!last.error.empty()) return Error(last.error);
  if (output.empty()) first = Clock::now();
  stats.prompt_tokens = last.usage.prompt_tokens - last.usage.cached_tokens;
  stats.generated_tokens = last.usage.completion_tokens;
  stats.prompt_seconds = std::chrono::duration<double>(first - start).count();
  stats.generate_seconds = std::chrono::duration<double>(Clock::now() - first).count();
  stats.finish = last.finish;
  tokens_.insert(tokens_.end(), output.begin(), output.end());
  tokens_.resize(static_cast<size_t>(last.cached_positions));
  return stats;
}

}  // namespace onecard::runtime
