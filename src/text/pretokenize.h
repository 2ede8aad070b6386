// The pre-tokenizer of byte-level BPE: a cascade of regular expressions (PCRE2, Unicode-aware) that splits
// text into words before merging, as named by `tokenizer.ggml.pre`. Each stage splits every piece left by the
// one before into its matches and the gaps between them (the "Isolated" split of Hugging Face tokenizers), so
// BPE never merges across a boundary any stage drew.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace onecard::text {

class PreTokenizer {
 public:
  // The names known: deepseek-v3, deepseek-llm, deepseek-coder, and gpt2 (also "default", or an empty name:
  // the original GPT-2 split). Compiles (and JIT-compiles where PCRE2 supports it) once.
  static Result<PreTokenizer> create(std::string_view name);

  const std::string& name() const { return name_; }

  // Appends the words of `text`, in order, as views into it. `text` must be valid UTF-8; the words cover it.
  // Fails only when the regex engine gives up (a resource limit), naming the offset.
  Status split(std::string_view text, std::vector<std::string_view>& words) const;

 private:
  struct Stage;
  std::string name_;
  std::vector<std::shared_ptr<const Stage>> stages_;
};

}  // namespace onecard::text
