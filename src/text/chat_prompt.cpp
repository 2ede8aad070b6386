#include "text/chat_prompt.h"

#include "text/reasoning.h"

namespace onecard::text {

Result<ChatPrompt> render_chat(const ChatTemplate& tmpl, const Tokenizer& tokenizer,
                               const nlohmann::ordered_json& messages, const nlohmann::ordered_json& extra) {
  ONECARD_ASSIGN_OR_RETURN(const std::string prompt, tmpl.apply(messages, true, extra));
  EncodeOptions enc;
  enc.parse_special = true;
  enc.add_bos = false;
  ChatPrompt out;
  ONECARD_ASSIGN_OR_RETURN(out.ids, tokenizer.encode(prompt, enc));
  out.opens_reasoning = ReasoningSplitter::prompt_opens_reasoning(prompt);
  return out;
}

}  // namespace onecard::text
