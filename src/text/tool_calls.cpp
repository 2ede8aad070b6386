#include "text/tool_calls.h"

#include <algorithm>
#include <array>
#include <utility>

#include "base/random_id.h"

namespace onecard::text {
namespace {

constexpr std::string_view kCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr std::string_view kCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kCallEnd = "<｜tool▁call▁end｜>";
constexpr std::string_view kSep = "<｜tool▁sep｜>";

// What opens the block in content. A bare <｜tool▁call▁begin｜> counts too: the model left out the opener.
constexpr std::array<std::string_view, 6> kOpeners = {kCallsBegin,
                                                      "<｜tool_calls_begin｜>",
                                                      "<｜tool calls begin｜>",
                                                      "<｜tool\\_calls\\_begin｜>",
                                                      "<｜tool▁calls｜>",
                                                      kCallBegin};
// What ends a call's header or arguments: its own end, or (when the model forgot that) the next call or
// the block's end.
constexpr std::array<std::string_view, 3> kCallStops = {kCallEnd, kCallBegin, kCallsEnd};
constexpr std::array<std::string_view, 4> kBlockMarkers = {kSep, kCallEnd, kCallBegin, kCallsEnd};

// How far into the block a call that lacks <｜tool▁call▁begin｜> may put its separator.
constexpr size_t kMaxBareHeader = 256;
// The longest code fence language tag accepted ("json", "JSON", "javascript", ...).
constexpr size_t kMaxFenceTag = 32;

bool is_ws(char c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

size_t skip_ws(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && is_ws(s[i])) ++i;
  return i;
}

struct Match {
  size_t pos = std::string_view::npos;
  std::string_view marker;
  bool found() const { return pos != std::string_view::npos; }
};

template <size_t N>
Match find_first(std::string_view text, const std::array<std::string_view, N>& markers) {
  Match best;
  for (std::string_view m : markers) {
    const size_t p = text.find(m);
    if (p < best.pos) best = {p, m};
  }
  return best;
}

// Length of the longest suffix of `text` that is a proper prefix of one of `markers`: text that may still
// become a marker.
template <size_t N>
size_t partial_suffix(std::string_view text, const std::array<std::string_view, N>& markers) {
  size_t best = 0;
  for (std::string_view m : markers) {
    for (size_t n = std::min(text.size(), m.size() - 1); n > best; --n) {
      if (text.substr(text.size() - n) == m.substr(0, n)) {
        best = n;
        break;
      }
    }
  }
  return best;
}

template <size_t N>
bool is_proper_prefix_of_any(std::string_view text, const std::array<std::string_view, N>& markers) {
  return std::any_of(markers.begin(), markers.end(),
                     [&](std::string_view m) { return m.size() > text.size() && m.starts_with(text); });
}

// End of `s[0, end)` without its trailing whitespace and backticks: the closing fence and what precedes it.
size_t trim_fence_tail(std::string_view s, size_t end) {
  while (end > 0 && (is_ws(s[end - 1]) || s[end - 1] == '`')) --end;
  return end;
}

bool is_fence_tag_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '+' || c == '.';
}

// The name in a V3-style header "TYPE<｜tool▁sep｜>NAME". Without a separator the whole header is the name
// (the type left out); with nothing after the separator, the part before it (V3.1's order).
std::string_view fenced_header_name(std::string_view header) {
  const size_t sep = header.find(kSep);
  if (sep == std::string_view::npos) return trim(header);
  const std::string_view after = trim(header.substr(sep + kSep.size()));
  return after.empty() ? trim(header.substr(0, sep)) : after;
}

// Whether a newline after `header` ends it: a name has been written on the line.
bool header_line_has_name(std::string_view header) {
  const size_t sep = header.find(kSep);
  return !trim(sep == std::string_view::npos ? header : header.substr(sep + kSep.size())).empty();
}

}  // namespace

std::string_view tool_call_format_name(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::kNone:
      return "none";
    case ToolCallFormat::kV3:
      return "deepseek-v3";
    case ToolCallFormat::kR1_0528:
      return "deepseek-r1-0528";
    case ToolCallFormat::kV31:
      return "deepseek-v3.1";
  }
  return "unknown";
}

ToolCallFormat detect_tool_call_format(std::string_view src) {
  constexpr auto npos = std::string_view::npos;
  if (src.find(kCallsBegin) == npos && src.find(kCallBegin) == npos) return ToolCallFormat::kNone;
  if (src.find("```") == npos) return ToolCallFormat::kV31;
  if (src.find("</think>") != npos && src.find("<think>") == npos) return ToolCallFormat::kR1_0528;
  return ToolCallFormat::kV3;
}

ToolCallParser::ToolCallParser(ToolCallFormat format, std::function<std::string(int)> make_id)
    : format_(format), make_id_(std::move(make_id)) {
  if (!make_id_) make_id_ = [](int) { return random_id("call_"); };
}

ToolParseDelta ToolCallParser::feed(std::string_view piece) {
  ToolParseDelta out;
  if (format_ == ToolCallFormat::kNone) {
    out.content = piece;
    return out;
  }
  held_ += piece;
  while (step(out, false)) {
  }
  return out;
}

ToolParseDelta ToolCallParser::finish() {
  ToolParseDelta out;
  if (format_ == ToolCallFormat::kNone) return out;
  while (step(out, true)) {
  }
  held_.clear();
  state_ = State::kContent;
  return out;
}

bool ToolCallParser::step(ToolParseDelta& out, bool final) {
  switch (state_) {
    case State::kContent:
      return content_step(out, final);
    case State::kBlock:
      return block_step(final);
    case State::kHeader:
      return header_step(out, final);
    case State::kBodyStart:
      return body_start_step(final);
    case State::kArgs:
      return args_step(out, final);
    case State::kTrailer:
      return trailer_step(final);
  }
  return false;
}

bool ToolCallParser::content_step(ToolParseDelta& out, bool final) {
  if (skip_ws_) {
    held_.erase(0, skip_ws(held_));
    if (held_.empty()) return false;
    skip_ws_ = false;
  }
  const Match m = find_first(held_, kOpeners);
  if (m.found()) {
    // Whitespace right before the block is no content (and was held back, so none has gone out).
    std::string_view before = std::string_view(held_).substr(0, m.pos);
    while (!before.empty() && is_ws(before.back())) before.remove_suffix(1);
    out.content += before;
    const bool bare_call = m.marker == kCallBegin;
    held_.erase(0, m.pos + m.marker.size());
    state_ = bare_call ? State::kHeader : State::kBlock;
    return true;
  }
  if (final) {
    out.content += held_;
    held_.clear();
    return false;
  }
  // Keep back what may become the opener, and the whitespace before it, which is no content if it does.
  size_t end = held_.size() - partial_suffix(held_, kOpeners);
  while (end > 0 && is_ws(held_[end - 1])) --end;
  out.content.append(held_, 0, end);
  held_.erase(0, end);
  return false;
}

bool ToolCallParser::block_step(bool final) {
  held_.erase(0, skip_ws(held_));
  if (held_.empty()) return false;
  const std::string_view h = held_;
  if (h.starts_with(kCallBegin)) {
    held_.erase(0, kCallBegin.size());
    state_ = State::kHeader;
    return true;
  }
  if (h.starts_with(kCallsEnd)) {
    held_.erase(0, kCallsEnd.size());
    state_ = State::kContent;
    skip_ws_ = true;
    return true;
  }
  if (h.starts_with(kCallEnd)) {  // a stray one: nothing to end
    held_.erase(0, kCallEnd.size());
    return true;
  }
  if (!final && is_proper_prefix_of_any(h, kCallStops)) return false;
  // Other text: a call without <｜tool▁call▁begin｜> when a separator comes before the line ends, else the
  // block ended without <｜tool▁calls▁end｜> and this is content. Looking only at a fixed window keeps the
  // decision independent of how much text has arrived.
  const std::string_view window = h.substr(0, kMaxBareHeader);
  const Match m = find_first(window, kBlockMarkers);
  const size_t newline = window.find('\n');
  if (!m.found() && newline == std::string_view::npos) {
    if (!final && h.size() < kMaxBareHeader) return false;
    state_ = State::kContent;
    return true;
  }
  const bool header = m.found() && m.pos < newline && m.marker == kSep;
  state_ = header ? State::kHeader : State::kContent;
  return true;
}

bool ToolCallParser::header_step(ToolParseDelta& out, bool final) {
  const std::string_view h = held_;
  const Match stop = find_first(h, kCallStops);
  if (format_ == ToolCallFormat::kV31) {
    const size_t sep = h.find(kSep);
    if (sep != std::string_view::npos && sep < stop.pos) {
      start_call(std::string(trim(h.substr(0, sep))), out);
      held_.erase(0, sep + kSep.size());
      state_ = State::kBodyStart;
      return true;
    }
    if (!stop.found() && !final) return false;
  } else {
    // The header ends at a newline after the name, at the start of a fence or of JSON, or at a marker.
    const size_t limit = std::min(stop.pos, h.size());
    for (size_t i = 0; i < limit; ++i) {
      const char c = h[i];
      if (c == '\n' && header_line_has_name(h.substr(0, i))) {
        start_call(std::string(fenced_header_name(h.substr(0, i))), out);
        held_.erase(0, i + 1);
        state_ = State::kBodyStart;
        return true;
      }
      if (c == '`' || c == '{' || c == '[') {
        start_call(std::string(fenced_header_name(h.substr(0, i))), out);
        held_.erase(0, i);
        state_ = State::kBodyStart;
        return true;
      }
    }
    if (!stop.found() && !final) return false;
  }
  // The call ends (or generation does) before its arguments: a call without arguments, if it has a name.
  size_t end = stop.found() ? stop.pos : h.size() - partial_suffix(h, kBlockMarkers);
  std::string_view header = h.substr(0, end);
  if (format_ == ToolCallFormat::kV31) {
    const size_t sep = header.find(kSep);
    header = trim(header.substr(0, sep));
  } else {
    header = fenced_header_name(header);
  }
  if (!header.empty()) {
    start_call(std::string(header), out);
    end_call();
  }
  held_.erase(0, stop.found() ? stop.pos : held_.size());
  state_ = State::kBlock;
  return true;
}

bool ToolCallParser::body_start_step(bool final) {
  held_.erase(0, skip_ws(held_));
  if (held_.empty()) {
    if (!final) return false;
    end_call();
    state_ = State::kBlock;
    return true;
  }
  const std::string_view h = held_;
  if (!fence_done_ && h[0] == '`') {
    size_t n = 0;
    while (n < h.size() && h[n] == '`') ++n;
    if (n == h.size() && !final) return false;  // may still become a fence
    if (n >= 3) {
      // "```" and a language tag (or none), then the line's end when it comes right after.
      size_t j = n;
      while (j < h.size() && j - n < kMaxFenceTag && is_fence_tag_char(h[j])) ++j;
      if (j == h.size() && !final) return false;
      if (j < h.size() && h[j] == '\n') ++j;
      held_.erase(0, j);
      fence_done_ = true;
      return true;
    }
  }
  fence_done_ = true;
  if (find_first(h, kCallStops).pos == 0) {
    end_call();
    state_ = State::kBlock;
    return true;
  }
  if (!final && is_proper_prefix_of_any(h, kCallStops)) return false;
  json_ = h[0] == '{' || h[0] == '[';
  state_ = State::kArgs;
  return true;
}

bool ToolCallParser::args_step(ToolParseDelta& out, bool final) {
  const std::string_view h = held_;
  const Match stop = find_first(h, kCallStops);
  size_t limit = h.size();
  if (stop.found()) {
    limit = stop.pos;
  } else if (!final) {
    limit -= partial_suffix(h, kCallStops);
  }
  if (json_) {
    for (; scanned_ < limit; ++scanned_) {
      const char c = h[scanned_];
      if (in_string_) {
        if (escaped_) {
          escaped_ = false;
        } else if (c == '\\') {
          escaped_ = true;
        } else if (c == '"') {
          in_string_ = false;
        }
      } else if (c == '"') {
        in_string_ = true;
      } else if (c == '{' || c == '[') {
        ++depth_;
      } else if ((c == '}' || c == ']') && --depth_ == 0) {
        // The value is complete: what follows up to the end marker is no argument.
        add_arguments(h.substr(0, scanned_ + 1), out);
        held_.erase(0, scanned_ + 1);
        scanned_ = 0;
        state_ = State::kTrailer;
        return true;
      }
    }
  }
  const size_t end = trim_fence_tail(h, limit);
  add_arguments(h.substr(0, end), out);
  if (stop.found() || final) {
    held_.erase(0, limit);
    end_call();
    state_ = State::kBlock;
    return true;
  }
  held_.erase(0, end);
  scanned_ = json_ ? scanned_ - end : 0;
  return false;
}

bool ToolCallParser::trailer_step(bool final) {
  const Match stop = find_first(held_, kCallStops);
  if (stop.found() || final) {
    held_.erase(0, stop.found() ? stop.pos : held_.size());
    end_call();
    state_ = State::kBlock;
    return true;
  }
  held_.erase(0, held_.size() - partial_suffix(held_, kCallStops));
  return false;
}

void ToolCallParser::start_call(std::string name, ToolParseDelta& out) {
  const int index = static_cast<int>(calls_.size());
  current_ = ToolCall{make_id_(index), std::move(name), ""};
  in_call_ = true;
  fence_done_ = false;
  json_ = false;
  scanned_ = 0;
  depth_ = 0;
  in_string_ = false;
  escaped_ = false;
  out.calls.push_back(ToolCallDelta{index, current_.id, current_.name, ""});
}

void ToolCallParser::add_arguments(std::string_view text, ToolParseDelta& out) {
  if (text.empty()) return;
  const int index = static_cast<int>(calls_.size());
  current_.arguments += text;
  if (out.calls.empty() || out.calls.back().index != index)
    out.calls.push_back(ToolCallDelta{index, "", "", ""});
  out.calls.back().arguments += text;
}

void ToolCallParser::end_call() {
  if (!in_call_) return;
  calls_.push_back(std::move(current_));
  current_ = ToolCall{};
  in_call_ = false;
}

}  // namespace onecard::text
