// One conversation at a time through an Engine, for the command line: set a prompt, generate with sampling,
// end-of-generation tokens, stop strings and streaming UTF-8 text. Each generation is a request to the
// engine; a new prompt that shares a prefix with what the last one left in the cache reuses it through the
// engine's prefix cache (multi-turn chat re-sends the whole conversation).
#pragma once

#include <atomic>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "runtime/engine.h"

namespace onecard::runtime {

struct GenerationStats {
  int prompt_tokens = 0;  // evaluated by this call's prefill (a reused prefix is not counted)
  int generated_tokens = 0;
  double prompt_seconds = 0;
  double generate_seconds = 0;
  FinishReason finish = FinishReason::kStop;
};

class Session {
 public:
  // Steps the engine in the calling thread: the engine must not run its own thread (Engine::start).
  explicit Session(Engine& engine) : engine_(engine) {}

  // Makes `prompt` the context of the next generation. Fails when it is empty or does not fit the context.
  Status set_prompt(std::span<const int32_t> prompt);
  // Generates after the context; `on_text` receives each piece of text as soon as it is valid UTF-8 and past
  // any stop string. `cancel` (optional) ends generation at the next token.
  Result<GenerationStats> generate(const GenerateOptions& options,
                                   const std::function<void(std::string_view)>& on_text,
                                   const std::atomic<bool>* cancel = nullptr);

  // What the cache holds after the last generation (prompt and output, positions 0..), or the prompt set.
  const std::vector<int32_t>& tokens() const { return tokens_; }
  void reset() { tokens_.clear(); }

 private:
  Engine& engine_;
  std::vector<int32_t> tokens_;
};

}  // namespace onecard::runtime
