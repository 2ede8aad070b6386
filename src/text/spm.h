// SentencePiece-style BPE (`tokenizer.ggml.model` = llama): spaces become ▁ (with a dummy prefix space at the
// start of the text), the text starts as one symbol per character, and the adjacent pair whose concatenation
// is the piece of highest score is merged while any such pair exists. Characters left without a piece fall
// back to byte tokens <0xNN>, or to the unknown token.
#pragma once

#include <array>
#include <memory>

#include "text/tokenizer.h"

namespace onecard::text {

class SpmTokenizer final : public Tokenizer {
 public:
  static std::unique_ptr<Tokenizer> create(Vocab vocab);

 protected:
  Status encode_plain(std::string_view text, bool after_special, std::vector<int32_t>& out) const override;
  std::string normal_piece(int32_t id) const override;
  bool strips_leading_space() const override { return vocab().add_space_prefix; }

 private:
  explicit SpmTokenizer(Vocab vocab);
  // The token a merge may produce: a normal or user-defined piece spelled `text`, or -1.
  int32_t mergeable(std::string_view text) const;
  Status append_fallback(std::string_view symbol, std::vector<int32_t>& out) const;

  std::array<int32_t, 256> byte_tokens_{};  // <0xNN>; -1: none
};

}  // namespace onecard::text
