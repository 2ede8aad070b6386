// The text of one choice on its way to the client: the engine's text is split into reasoning and answer
// (DeepSeek-R1's <think> block, unless the request turns that off), and the answer into content and tool
// calls (DeepSeek's tool-call markers, when the request offered tools). Each feed gives the delta to stream;
// the whole choice accumulates for a non-streamed answer.
#pragma once

#include <string>
#include <vector>

#include "serve/openai_response.h"
#include "text/reasoning.h"
#include "text/tool_calls.h"

namespace onecard::serve {

class ChoiceStream {
 public:
  ChoiceStream(int index, bool split_reasoning, bool opens_reasoning, text::ToolCallFormat tools);

  // The delta for `text`, which came with `n_tokens` generated tokens.
  ChatDelta feed(const std::string& text, int n_tokens);
  // At the end: the held-back rest, with the finish reason (tool_calls when the answer called tools).
  ChatDelta finish(FinishReason engine_reason);

  // The whole choice so far.
  const ChatChoice& choice() const { return choice_; }
  int reasoning_tokens() const { return reasoning_tokens_; }

 private:
  void add(const text::ReasoningDelta& d, ChatDelta& out);
  void add_tools(const text::ToolParseDelta& d, ChatDelta& out);

  bool split_reasoning_;
  text::ReasoningSplitter splitter_;
  text::ToolCallParser tools_;
  ChatChoice choice_;
  int reasoning_tokens_ = 0;
  bool first_ = true;
};

}  // namespace onecard::serve
