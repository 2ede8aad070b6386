// Streaming detokenization: tokens arrive one at a time during generation, and a token may end inside a
// multi-byte UTF-8 character (byte tokens, byte-level BPE pieces). Only complete characters are handed out;
// the tail of an unfinished one waits for the next token. Bytes that can never become valid are replaced by
// U+FFFD at once, so the output is always valid UTF-8.
#pragma once

#include <cstdint>
#include <string>

#include "text/tokenizer.h"

namespace onecard::text {

class StreamDecoder {
 public:
  // The tokenizer must outlive the decoder. `special`: render control tokens as their text.
  explicit StreamDecoder(const Tokenizer& tokenizer, bool special = false)
      : tokenizer_(tokenizer), special_(special) {}

  // The text that token `id` completes (possibly empty).
  std::string push(int32_t id);
  // The end of the stream: whatever is held back, an unfinished character becoming U+FFFD.
  std::string flush();
  // Bytes held back, waiting for the rest of their character.
  size_t pending() const { return pending_.size(); }

 private:
  const Tokenizer& tokenizer_;
  bool special_;
  std::string pending_;
};

}  // namespace onecard::text
