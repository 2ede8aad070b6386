// Conversations rendered through the model's chat template and tokenized, as `run --chat` and `chat` send
// them.
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace onecard::app {

// The prompt ids of `messages` (OpenAI-style objects) with the assistant's turn opened. Control tokens the
// template writes (<｜User｜>, BOS, ...) become their ids; the template supplies BOS, so none is added.
// `opens_reasoning` says whether the prompt leaves the model inside a <think> block.
struct ChatPrompt {
  std::vector<int32_t> ids;
  bool opens_reasoning = false;
};
Result<ChatPrompt> render_chat(const text::ChatTemplate& tmpl, const text::Tokenizer& tokenizer,
                               const nlohmann::ordered_json& messages);

}  // namespace onecard::app
