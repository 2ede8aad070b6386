// The chat template of a model: the Jinja text a GGUF file carries in `tokenizer.chat_template`, rendered
// as Hugging Face's apply_chat_template renders it (same Jinja2 environment and variables: messages,
// tools, documents, add_generation_prompt, bos_token, eos_token, plus any extra ones such as
// enable_thinking).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "gguf/file.h"
#include "text/jinja/template.h"

namespace onecard::text {

struct ChatMessage {
  std::string role;  // system, user, assistant, tool
  std::string content;
  std::optional<std::string> reasoning_content;  // an assistant's earlier thinking, for templates that use it
};

class ChatTemplate {
 public:
  // Reads `tokenizer.chat_template` and the texts of the BOS and EOS tokens (from tokenizer.ggml.tokens
  // and the *_token_id keys, when present). A file without a template, or a template the engine cannot
  // parse, is an error naming the file and (for the latter) the construct, line and column.
  static Result<ChatTemplate> from_gguf(const gguf::File& file);
  static Result<ChatTemplate> from_string(const std::string& source, std::string bos_token = "",
                                          std::string eos_token = "");

  // `messages`: an OpenAI-style array of message objects (role, content, tool_calls, reasoning_content,
  // ...). `extra`: an object of further variables (tools, enable_thinking, thinking, ...) or null.
  Result<std::string> apply(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                            const nlohmann::ordered_json& extra = nullptr) const;
  Result<std::string> apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                            const nlohmann::ordered_json& extra = nullptr) const;

  const std::string& source() const { return source_; }
  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }

 private:
  std::string source_;
  std::string bos_token_;
  std::string eos_token_;
  jinja::Template template_;
};

}  // namespace onecard::text
