#include "serve/choice_stream.h"

namespace onecard::serve {

ChoiceStream::ChoiceStream(int index, bool split_reasoning, bool opens_reasoning, text::ToolCallFormat tools)
    : split_reasoning_(split_reasoning),
      splitter_(opens_reasoning),
      tools_(tools, [](int) { return new_response_id("call_"); }) {
  choice_.index = index;
}

void ChoiceStream::add_tools(const text::ToolParseDelta& d, ChatDelta& out) {
  out.content += d.content;
  choice_.content += d.content;
  for (const text::ToolCallDelta& c : d.calls) {
    out.tool_calls.push_back({c.index, c.id, c.name, c.arguments});
  }
}

void ChoiceStream::add(const text::ReasoningDelta& d, ChatDelta& out) {
  out.reasoning_content += d.reasoning;
  choice_.reasoning_content += d.reasoning;
  if (!d.content.empty()) add_tools(tools_.feed(d.content), out);
}

ChatDelta ChoiceStream::feed(const std::string& text, int n_tokens) {
  ChatDelta out;
  out.index = choice_.index;
  out.first = first_;
  first_ = false;
  if (!split_reasoning_) {
    add_tools(tools_.feed(text), out);
    return out;
  }
  // Tokens count as reasoning when the think block was open as they came.
  if (splitter_.in_reasoning()) reasoning_tokens_ += n_tokens;
  add(splitter_.feed(text), out);
  return out;
}

ChatDelta ChoiceStream::finish(FinishReason engine_reason) {
  ChatDelta out;
  out.index = choice_.index;
  out.first = first_;
  first_ = false;
  if (split_reasoning_) {
    const text::ReasoningDelta rest = splitter_.finish();
    add(rest, out);
  }
  add_tools(tools_.finish(), out);
  choice_.tool_calls.clear();
  for (const text::ToolCall& c : tools_.calls()) choice_.tool_calls.push_back({c.id, c.name, c.arguments});
  out.finish_reason = choice_.tool_calls.empty() ? engine_reason : FinishReason::kToolCalls;
  choice_.finish_reason = out.finish_reason;
  return out;
}

}  // namespace onecard::serve
