#include "text/detokenizer.h"

#include "text/unicode.h"

namespace onecard::text {

std::string StreamDecoder::push(int32_t id) {
  pending_.append(tokenizer_.token_piece(id, special_));
  std::string out;
  size_t pos = 0;
  while (pos < pending_.size()) {
    const Utf8Sequence seq = next_utf8(pending_, pos);
    if (seq.status == Utf8Status::kTruncated) break;  // the rest of this character is still to come
    if (seq.status == Utf8Status::kComplete) {
      out.append(pending_, pos, seq.length);
    } else {
      append_utf8(out, kReplacementChar);
    }
    pos += seq.length;
  }
  pending_.erase(0, pos);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = sanitize_utf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace onecard::text
