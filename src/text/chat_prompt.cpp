#include "app/chat_prompt.h"

#include "text/reasoning.h"

namespace onecard::app {

Result<ChatPrompt> render_chat(const text::ChatTemplate& tmpl, const text::Tokenizer& tokenizer,
                               const nlohmann::ordered_json& messages) {
  ONECARD_ASSIGN_OR_RETURN(const std::string prompt, tmpl.apply(messages, true));
  text::EncodeOptions enc;
  enc.parse_special = true;
  enc.add_bos = false;
  ChatPrompt out;
  ONECARD_ASSIGN_OR_RETURN(out.ids, tokenizer.encode(prompt, enc));
  out.opens_reasoning = text::ReasoningSplitter::prompt_opens_reasoning(prompt);
  return out;
}

}  // namespace onecard::app
