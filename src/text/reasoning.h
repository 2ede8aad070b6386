// Separates a reasoning model's thinking from its answer while the text streams in, as DeepSeek's API
// returns them (`reasoning_content` and `content`). DeepSeek-R1 templates end the prompt inside a
// <think> block, so generation usually starts in reasoning; a model may also open <think> itself as the
// first thing it writes. </think> ends the reasoning; later tags are ordinary answer text. A tag split
// across pieces is held back until it is complete or proven not to be a tag. Whitespace between the
// tags and the text (the "\n" after <think>, the "\n\n" after </think>) is not part of either.
#pragma once

#include <string>
#include <string_view>

namespace onecard::text {

struct ReasoningDelta {
  std::string reasoning;
  std::string content;
  bool empty() const { return reasoning.empty() && content.empty(); }
};

class ReasoningSplitter {
 public:
  // `start_in_reasoning`: the prompt ended inside an open think block (see prompt_opens_reasoning).
  explicit ReasoningSplitter(bool start_in_reasoning, std::string open_tag = "<think>",
                             std::string close_tag = "</think>");

  // Whether a rendered prompt leaves the model inside a think block: its last open tag is not closed.
  static bool prompt_opens_reasoning(std::string_view prompt, std::string_view open_tag = "<think>",
                                     std::string_view close_tag = "</think>");

  // The text that can be attributed now; some may be held back until the next piece.
  ReasoningDelta feed(std::string_view piece);
  // At the end of generation: whatever was held back.
  ReasoningDelta finish();

  bool in_reasoning() const { return state_ == State::kReasoning; }

 private:
  enum class State {
    kStart,        // nothing written yet: an opening tag may come
    kReasoning,    // inside the think block
    kAnswerStart,  // after </think>, skipping whitespace
    kAnswer,       // the answer, passed through
  };

  std::string open_;
  std::string close_;
  State state_;
  bool reasoning_started_ = false;  // leading whitespace of the reasoning is dropped
  std::string held_;                // text not yet attributed
};

}  // namespace onecard::text
