// Byte-level BPE (`tokenizer.ggml.model` = gpt2): the pre-tokenizer splits text into words; each word's bytes
// start as one symbol each (the byte characters of GPT-2's table) and the adjacent pair of best merge rank is
// merged until no listed merge applies.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <unordered_map>

#include "text/pretokenize.h"
#include "text/tokenizer.h"

namespace onecard::text {

class BpeTokenizer final : public Tokenizer {
 public:
  // Fails on an unknown pre-tokenizer or a malformed merge.
  static Result<std::unique_ptr<Tokenizer>> create(Vocab vocab);

 protected:
  Status encode_plain(std::string_view text, bool after_special, std::vector<int32_t>& out) const override;
  std::string normal_piece(int32_t id) const override;

 private:
  struct Merge {
    int32_t rank;
    int32_t result;  // the token the pair becomes
  };

  BpeTokenizer(Vocab vocab, PreTokenizer pre);
  Status index_merges();
  // Appends the tokens of one word (raw bytes, not yet mapped to byte characters).
  Status encode_word(std::string_view word, std::vector<int32_t>& out) const;
  const Merge* find_merge(int32_t left, int32_t right) const;

  PreTokenizer pre_;
  std::array<int32_t, 256> byte_ids_{};         // token of each byte's character; -1: none
  std::unordered_map<uint64_t, Merge> merges_;  // key: left << 32 | right
};

}  // namespace onecard::text
