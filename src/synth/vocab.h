// A working byte-level BPE vocabulary (GPT-2 style, as DeepSeek-V3's tokenizer is) of any requested size, for
// synthetic models: every byte has a token, every merge joins two tokens into a third, and byte-level BPE
// applied to any token's bytes ends at that very token.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace onecard::synth {

// token_type values of llama.cpp's vocabulary.
inline constexpr int32_t kTokenNormal = 1;
inline constexpr int32_t kTokenControl = 3;
inline constexpr int32_t kTokenUserDefined = 4;

// 256 byte tokens and the DeepSeek special tokens (chat and tool-call markers).
inline constexpr uint32_t kMinVocab = 271;
inline constexpr uint32_t kMaxVocab = 1u << 22;

struct Vocab {
  std::vector<std::string> tokens;  // byte-level spellings (space is "Ġ"); special tokens as they are
  std::vector<int32_t> types;
  std::vector<std::string> merges;  // "A B", best (first applied) first
  uint32_t bos = 0;
  uint32_t eos = 0;
};

// The GPT-2 byte-to-unicode mapping: printable bytes stand for themselves, the others for U+0100 onwards.
std::string byte_token(uint8_t byte);
// The byte-level spelling of raw bytes.
std::string byte_level(std::string_view raw);

// Token i < 256 is byte i; then English words and their prefixes, whitespace runs, numbers and generated
// pseudo-words; the 15 special tokens (<｜begin▁of▁sentence｜>, <｜end▁of▁sentence｜>, <｜User｜>,
// <｜Assistant｜>, <think>, </think>, then the tool-call markers <｜tool▁calls▁begin｜>,
// <｜tool▁calls▁end｜>, <｜tool▁call▁begin｜>, <｜tool▁call▁end｜>, <｜tool▁sep｜>, <｜tool▁outputs▁begin｜>,
// <｜tool▁outputs▁end｜>, <｜tool▁output▁begin｜>, <｜tool▁output▁end｜>), all control tokens, are the last
// ones, bos and eos the first two of them. The result depends only on `size` (kMinVocab..kMaxVocab).
Result<Vocab> build_vocab(uint32_t size);

}  // namespace onecard::synth
