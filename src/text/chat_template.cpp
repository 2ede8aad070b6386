#include "text/chat_template.h"

namespace onecard::text {
namespace {

// The text of the token whose id is stored under `id_key`, or "" when the file does not say.
Result<std::string> token_text(const gguf::File& file, std::string_view id_key) {
  if (!file.has(id_key)) return std::string();
  ONECARD_ASSIGN_OR_RETURN(uint32_t id, file.get<uint32_t>(id_key));
  const gguf::Value* tokens = file.find("tokenizer.ggml.tokens");
  if (tokens == nullptr || !tokens->is_array() || tokens->array_type() != gguf::ValueType::STRING) {
    return std::string();
  }
  if (id >= tokens->strings().size()) {
    return make_error("{}: {} = {} is outside the token list ({} tokens)", file.path(), id_key, id,
                      tokens->strings().size());
  }
  return std::string(tokens->strings()[id]);
}

}  // namespace

Result<ChatTemplate> ChatTemplate::from_gguf(const gguf::File& file) {
  if (!file.has("tokenizer.chat_template")) {
    return make_error("{}: the file has no chat template (metadata key 'tokenizer.chat_template')",
                      file.path());
  }
  ONECARD_ASSIGN_OR_RETURN(std::string source, file.get<std::string>("tokenizer.chat_template"));
  ONECARD_ASSIGN_OR_RETURN(std::string bos, token_text(file, "tokenizer.ggml.bos_token_id"));
  ONECARD_ASSIGN_OR_RETURN(std::string eos, token_text(file, "tokenizer.ggml.eos_token_id"));
  auto t = from_string(source, std::move(bos), std::move(eos));
  if (!t.ok()) return t.error().with_context(file.path());
  return t;
}

Result<ChatTemplate> ChatTemplate::from_string(const std::string& source, std::string bos_token,
                                               std::string eos_token) {
  auto parsed = jinja::Template::parse(source);
  if (!parsed.ok()) return parsed.error().with_context("chat template");
  ChatTemplate t;
  t.source_ = source;
  t.bos_token_ = std::move(bos_token);
  t.eos_token_ = std::move(eos_token);
  t.template_ = std::move(parsed).value();
  return t;
}

Result<std::string> ChatTemplate::apply(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                        const nlohmann::ordered_json& extra) const {
  if (!messages.is_array()) return Error("chat template: the messages must be an array");
  if (!extra.is_null() && !extra.is_object())
    return Error("chat template: extra variables must be an object");
  // The variables Hugging Face passes: tools and documents are None unless given.
  nlohmann::ordered_json context = {
      {"messages", messages},    {"tools", nullptr},
      {"documents", nullptr},    {"add_generation_prompt", add_generation_prompt},
      {"bos_token", bos_token_}, {"eos_token", eos_token_}};
  if (extra.is_object()) {
    for (const auto& [k, v] : extra.items()) context[k] = v;
  }
  auto r = template_.render(context);
  if (!r.ok()) return r.error().with_context("chat template");
  return r;
}

Result<std::string> ChatTemplate::apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                        const nlohmann::ordered_json& extra) const {
  auto list = nlohmann::ordered_json::array();
  for (const ChatMessage& m : messages) {
    nlohmann::ordered_json j = {{"role", m.role}, {"content", m.content}};
    if (m.reasoning_content) j["reasoning_content"] = *m.reasoning_content;
    list.push_back(std::move(j));
  }
  return apply(list, add_generation_prompt, extra);
}

}  // namespace onecard::text
