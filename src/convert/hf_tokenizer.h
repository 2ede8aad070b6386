// A Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) as GGUF tokenizer metadata: the
// byte-level BPE vocabulary and merges, token types (added special tokens are control tokens, other added
// tokens user-defined), BOS/EOS/PAD, the pre-tokenizer named from the regexes of its Split stages, and the
// chat template.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "gguf/writer.h"

namespace onecard::convert {

struct HfTokenizer {
  std::vector<std::string> tokens;  // by id
  std::vector<int32_t> types;       // text::TokenType values
  std::vector<std::string> merges;  // "left right", best first
  std::string pre;                  // tokenizer.ggml.pre
  int64_t bos = -1, eos = -1, pad = -1;
  bool add_bos = false, add_eos = false;
  std::string chat_template;  // "" when the checkpoint has none
};

// `n_vocab`: config.json's vocab_size; ids the tokenizer leaves unused below it become unused padding tokens.
// `pre_override`: a pre-tokenizer name to use instead of recognising it.
Result<HfTokenizer> read_hf_tokenizer(const std::string& dir, uint32_t n_vocab,
                                      const std::string& pre_override = "");

// The pre-tokenizer name of a tokenizer.json pre_tokenizer object's Split regexes (in order), or an error
// that shows them. `byte_level_regex`: the ByteLevel stage applies GPT-2's own split.
Result<std::string> recognise_pre_tokenizer(const std::vector<std::string>& split_regexes,
                                            bool byte_level_regex);

// tokenizer.ggml.* and tokenizer.chat_template.
void put_tokenizer_metadata(gguf::Writer& w, const HfTokenizer& t);

}  // namespace onecard::convert
