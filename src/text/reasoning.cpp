#include "text/reasoning.h"

#include <utility>

namespace onecard::text {
namespace {

bool is_ws(char c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

// Length of the longest suffix of `text` that is a proper prefix of `tag`: text that may become the tag.
size_t partial_tag_suffix(std::string_view text, std::string_view tag) {
  const size_t max = std::min(text.size(), tag.size() - 1);
  for (size_t n = max; n > 0; --n) {
    if (text.substr(text.size() - n) == tag.substr(0, n)) return n;
  }
  return 0;
}

}  // namespace

ReasoningSplitter::ReasoningSplitter(bool start_in_reasoning, std::string open_tag, std::string close_tag)
    : open_(std::move(open_tag)),
      close_(std::move(close_tag)),
      state_(start_in_reasoning ? State::kReasoning : State::kStart) {}

bool ReasoningSplitter::prompt_opens_reasoning(std::string_view prompt, std::string_view open_tag,
                                               std::string_view close_tag) {
  const size_t open = prompt.rfind(open_tag);
  if (open == std::string_view::npos) return false;
  const size_t close = prompt.rfind(close_tag);
  return close == std::string_view::npos || close < open;
}

ReasoningDelta ReasoningSplitter::feed(std::string_view piece) {
  held_ += piece;
  ReasoningDelta out;
  // Each pass either consumes held text or waits for more; a state change loops to handle the rest.
  while (true) {
    if (state_ == State::kStart) {
      size_t i = 0;
      while (i < held_.size() && is_ws(held_[i])) ++i;
      const std::string_view rest = std::string_view(held_).substr(i);
      if (rest.starts_with(open_)) {
        held_.erase(0, i + open_.size());
        state_ = State::kReasoning;
        continue;
      }
      if (rest.empty() || std::string_view(open_).starts_with(rest)) return out;  // may still be the tag
      held_.erase(0, i);
      state_ = State::kAnswer;
      continue;
    }
    if (state_ == State::kReasoning) {
      if (!reasoning_started_) {
        size_t i = 0;
        while (i < held_.size() && is_ws(held_[i])) ++i;
        held_.erase(0, i);
        if (held_.empty()) return out;
        reasoning_started_ = true;
      }
      const size_t close = held_.find(close_);
      if (close != std::string::npos) {
        size_t end = close;
        while (end > 0 && is_ws(held_[end - 1])) --end;
        out.reasoning += held_.substr(0, end);
        held_.erase(0, close + close_.size());
        state_ = State::kAnswerStart;
        continue;
      }
      // Keep back a possible partial tag and the whitespace before it, which belongs to neither part
      // if the tag follows.
      size_t keep_from = held_.size() - partial_tag_suffix(held_, close_);
      while (keep_from > 0 && is_ws(held_[keep_from - 1])) --keep_from;
      out.reasoning += held_.substr(0, keep_from);
      held_.erase(0, keep_from);
      return out;
    }
    if (state_ == State::kAnswerStart) {
      size_t i = 0;
      while (i < held_.size() && is_ws(held_[i])) ++i;
      held_.erase(0, i);
      if (held_.empty()) return out;
      state_ = State::kAnswer;
      continue;
    }
    out.content += held_;
    held_.clear();
    return out;
  }
}

ReasoningDelta ReasoningSplitter::finish() {
  ReasoningDelta out;
  if (state_ == State::kReasoning) {
    out.reasoning = std::move(held_);
  } else if (state_ != State::kAnswerStart) {
    out.content = std::move(held_);
  }
  held_.clear();
  return out;
}

}  // namespace onecard::text
