// Splits a DeepSeek model's answer into plain content and OpenAI-style tool calls while it streams in. The
// input is the answer after the reasoning split (see reasoning.h), with special tokens rendered as their
// text.
//
// The formats, by the chat template that asks for them (｜ is U+FF5C, ▁ is U+2581):
//   kV3, kR1_0528  <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```
//                  <｜tool▁call▁end｜>, repeated (the templates put "\n" between calls), then
//                  <｜tool▁calls▁end｜>
//   kV31           <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>...
//                  <｜tool▁calls▁end｜>
// The templates of V3, V3-0324, R1 and R1-0528 all write the first layout; R1-0528 is told apart for the
// record (and for prompts), not because it needs another grammar. What models actually write varies more
// than their templates, so every format accepts: a call without its "function" type or without
// <｜tool▁call▁begin｜>, a code fence with any language tag or none, whitespace around the markers, a
// missing <｜tool▁calls▁end｜>, and the plain-text spellings of the block opener that R1 distills write
// (<｜tool_calls_begin｜>, <｜tool calls begin｜>, <｜tool\_calls\_begin｜>, <｜tool▁calls｜>).
// DeepSeek-V3.2's DSML markup is not parsed (its templates detect as kNone).
//
// Text before the block is content; whitespace right before and after the block and between calls is not.
// Text after <｜tool▁calls▁end｜> is content again. A marker split across pieces is held back until it is
// complete or proven not to be one, so the concatenated output never depends on how the text was split.
//
// Arguments are passed on as the model wrote them, never re-serialised, and stream as they arrive. When they
// start with `{` or `[`, they end where that JSON value closes (brackets inside strings do not count) and
// anything between there and <｜tool▁call▁end｜> (the closing fence, stray text) is dropped. Otherwise they
// run to the call's end marker, less trailing whitespace and backticks. They are not validated: invalid JSON
// comes back as written (a truncated object stays truncated), and the caller decides what to do with it.
// Trailing whitespace and backticks are held back until more text follows, so a closing fence, or a prefix
// of one, never reaches the arguments.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace onecard::text {

enum class ToolCallFormat { kNone, kV3, kR1_0528, kV31 };

// "none", "deepseek-v3", "deepseek-r1-0528", "deepseek-v3.1".
std::string_view tool_call_format_name(ToolCallFormat format);

// The format a chat template's source produces, judged by the markers it writes: kNone when it writes no
// tool calls, kV31 when arguments follow the separator without a code fence, kR1_0528 when it strips
// </think> from earlier answers but never opens a think block itself (R1-0528's model writes <think>), kV3
// otherwise.
ToolCallFormat detect_tool_call_format(std::string_view chat_template_source);

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text, as written (see above)
  bool operator==(const ToolCall&) const = default;
};

// A piece of one call. The first delta of a call carries its id and name (and maybe arguments), later ones
// only more arguments. Concatenating a call's `arguments` deltas gives ToolCall::arguments.
struct ToolCallDelta {
  int index = 0;  // 0, 1, ... in the order the calls appear
  std::string id;
  std::string name;
  std::string arguments;
};

struct ToolParseDelta {
  std::string content;
  std::vector<ToolCallDelta> calls;  // at most one entry per call and piece
  bool empty() const { return content.empty() && calls.empty(); }
};

class ToolCallParser {
 public:
  // `make_id(n)` names the n-th call (from 0); by default "call_" and 24 random letters and digits.
  explicit ToolCallParser(ToolCallFormat format, std::function<std::string(int)> make_id = {});

  // Pieces of any size; what can be attributed now. With kNone the piece is returned as content.
  ToolParseDelta feed(std::string_view piece);
  // At the end of generation, once: the held-back rest. An unterminated call is still returned once its
  // name is known, with its arguments as received; held text that turned out not to be a marker is content.
  ToolParseDelta finish();

  // The complete calls so far (after finish(), every call).
  const std::vector<ToolCall>& calls() const { return calls_; }
  ToolCallFormat format() const { return format_; }

 private:
  enum class State {
    kContent,    // before (or after) the block: looking for its opener
    kBlock,      // inside the block, between calls
    kHeader,     // a call's type, separator and name
    kBodyStart,  // after the name: an optional code fence
    kArgs,       // the arguments, streamed
    kTrailer,    // after a complete JSON value, up to the call's end marker
  };

  // One step of the state machine; false when it needs more text. `final`: no more text will come.
  bool step(ToolParseDelta& out, bool final);
  bool content_step(ToolParseDelta& out, bool final);
  bool block_step(bool final);
  bool header_step(ToolParseDelta& out, bool final);
  bool body_start_step(bool final);
  bool args_step(ToolParseDelta& out, bool final);
  bool trailer_step(bool final);

  void start_call(std::string name, ToolParseDelta& out);
  void add_arguments(std::string_view text, ToolParseDelta& out);
  void end_call();

  ToolCallFormat format_;
  std::function<std::string(int)> make_id_;
  State state_ = State::kContent;
  std::string held_;         // text not yet attributed
  bool skip_ws_ = false;     // after the block: whitespace before further content is dropped
  bool in_call_ = false;     // current_ has been started
  ToolCall current_;         // the call being parsed
  bool fence_done_ = false;  // the current call's code fence (if any) is behind
  bool json_ = false;        // the arguments start a JSON object or array: find where it closes
  size_t scanned_ = 0;       // bytes of held_ whose JSON structure is counted in depth_/in_string_
  int depth_ = 0;            // open brackets
  bool in_string_ = false;
  bool escaped_ = false;
  std::vector<ToolCall> calls_;
};

}  // namespace onecard::text
