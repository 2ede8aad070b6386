// The vocabulary of a GGUF file (`tokenizer.ggml.*`), copied out of the file so that tokenizers outlive it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "gguf/file.h"

namespace onecard::text {

// tokenizer.ggml.token_type values, as llama.cpp's converters write them.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,      // <｜begin▁of▁sentence｜> and the like: in text only where the caller allows it
  kUserDefined = 4,  // added tokens that are not special: always recognised in text, rendered verbatim
  kUnused = 5,
  kByte = 6,  // SentencePiece byte fallback, <0xNN>
};

struct Vocab {
  std::string model;  // tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece)
  std::string pre;    // tokenizer.ggml.pre, the BPE pre-tokenizer ("" when absent)
  std::vector<std::string> texts;
  std::vector<TokenType> types;
  std::vector<float> scores;        // one per token; zeros when the file has none
  std::vector<std::string> merges;  // "left right", best first (BPE only)
  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, pad = -1;  // -1: none
  bool add_bos = false, add_eos = false;
  bool add_space_prefix = true;  // SentencePiece's dummy prefix

  // Reads and checks the tokenizer metadata; errors name the file and key.
  static Result<Vocab> from_gguf(const gguf::File& file);

  int32_t size() const { return static_cast<int32_t>(texts.size()); }
};

}  // namespace onecard::text
