// Server-sent events (the text/event-stream format of streamed OpenAI responses): a reader that turns bytes
// arriving in arbitrary pieces into events, and the encoder of one event. The reader follows the WHATWG
// rules: lines end with \n, \r\n or \r (a \r\n may be split between two pieces), `field: value` with one
// optional space after the colon, `:` starts a comment, a blank line ends the event, and several data lines
// join with \n.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace onecard::serve {

struct SseEvent {
  std::string type;  // the `event:` field; empty means "message"
  std::string data;
  std::string id;
};

class SseReader {
 public:
  // The events that these bytes complete, in order.
  std::vector<SseEvent> feed(std::string_view bytes);
  // At the end of the stream: the event still pending when the server closed without its blank line. The
  // standard drops it; a benchmark would rather count it, so the caller chooses.
  std::optional<SseEvent> finish();

 private:
  void line(std::string_view l, std::vector<SseEvent>& out);

  std::string partial_;   // the unfinished line
  bool skip_lf_ = false;  // the last piece ended in \r: a \n opening the next one belongs to it
  SseEvent event_;
  bool has_data_ = false;  // a data line was seen (an event of empty data is still an event)
};

// One event carrying `data` (a JSON document, or [DONE]): "data: ...\n\n", a data line per line of `data`.
std::string sse_event(std::string_view data);

}  // namespace onecard::serve
