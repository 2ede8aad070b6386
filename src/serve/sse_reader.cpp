#include "serve/sse_reader.h"

#include <utility>

namespace onecard::serve {

std::vector<SseEvent> SseReader::feed(std::string_view bytes) {
  std::vector<SseEvent> out;
  size_t pos = 0;
  if (skip_lf_ && !bytes.empty()) {
    skip_lf_ = false;
    if (bytes[0] == '\n') pos = 1;
  }
  while (pos < bytes.size()) {
    const size_t end = bytes.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) {
      partial_.append(bytes.substr(pos));
      break;
    }
    // Complete lines with nothing pending are parsed in place, without a copy.
    if (partial_.empty()) {
      line(bytes.substr(pos, end - pos), out);
    } else {
      partial_.append(bytes.substr(pos, end - pos));
      line(partial_, out);
      partial_.clear();
    }
    pos = end + 1;
    if (bytes[end] == '\r') {
      if (pos == bytes.size()) {
        skip_lf_ = true;
      } else if (bytes[pos] == '\n') {
        ++pos;
      }
    }
  }
  return out;
}

void SseReader::line(std::string_view l, std::vector<SseEvent>& out) {
  if (l.empty()) {
    if (has_data_) out.push_back(std::move(event_));
    event_ = SseEvent{};
    has_data_ = false;
    return;
  }
  if (l[0] == ':') return;
  const size_t colon = l.find(':');
  const std::string_view field = l.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = l.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) event_.data += '\n';
    event_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_.type = std::string(value);
  } else if (field == "id") {
    event_.id = std::string(value);
  }
  // retry and unknown fields do not concern a client that does not reconnect.
}

std::optional<SseEvent> SseReader::finish() {
  if (!partial_.empty()) {
    std::vector<SseEvent> ignored;  // a line cannot complete an event by itself
    line(partial_, ignored);
    partial_.clear();
  }
  skip_lf_ = false;
  if (!has_data_) return std::nullopt;
  has_data_ = false;
  return std::exchange(event_, SseEvent{});
}

std::string sse_event(std::string_view data) {
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t end = data.find_first_of("\r\n", pos);
    out += "data: ";
    out.append(data.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
    out += '\n';
    if (end == std::string_view::npos) break;
    pos = end + 1;
    if (data[end] == '\r' && pos < data.size() && data[pos] == '\n') ++pos;
  }
  return out + "\n";
}

}  // namespace onecard::serve
