// Conversations rendered through the model's chat template and tokenized, as `run --chat`, `chat` and the
// server send them.
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace onecard::text {

// The prompt ids of `messages` (OpenAI-style objects) with the assistant's turn opened. Control tokens the
// template writes (<｜User｜>, BOS, ...) become their ids; the template supplies BOS, so none is added.
// `opens_reasoning` says whether the prompt leaves the model inside a <think> block.
struct ChatPrompt {
  std::vector<int32_t> ids;
  bool opens_reasoning = false;
};
// `extra`: further template variables (tools, enable_thinking, ...) or null.
Result<ChatPrompt> render_chat(const ChatTemplate& tmpl, const Tokenizer& tokenizer,
                               const nlohmann::ordered_json& messages,
                               const nlohmann::ordered_json& extra = nullptr);

}  // namespace onecard::text
