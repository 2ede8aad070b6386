// Text <-> token ids for the vocabulary of a GGUF file: byte-level BPE (`gpt2`) and SentencePiece (`llama`).
// Encoding validates UTF-8, recognises added tokens in the text (control tokens only where the caller allows
// it), and hands the plain text between them to the model's algorithm. Decoding renders each token's bytes.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "gguf/file.h"
#include "text/vocab.h"

namespace onecard::text {

struct EncodeOptions {
  std::optional<bool> add_bos;  // nullopt: as tokenizer.ggml.add_bos_token says
  std::optional<bool> add_eos;  // nullopt: as tokenizer.ggml.add_eos_token says
  // Recognise control tokens (<｜User｜>, <｜end▁of▁sentence｜>, ...) written in the text. Off for text from
  // users, so that typing a control token's spelling cannot inject it. User-defined tokens (type 4) are
  // recognised either way, as llama.cpp and Hugging Face tokenizers do.
  bool parse_special = false;
};

struct DecodeOptions {
  bool special = false;  // render control tokens (BOS, EOS, ...) as their text instead of nothing
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // The tokenizer `tokenizer.ggml.model` names, built from the file's vocabulary (copied: the file may
  // close).
  static Result<std::unique_ptr<Tokenizer>> from_gguf(const gguf::File& file);
  // As from_gguf, from an already read vocabulary.
  static Result<std::unique_ptr<Tokenizer>> create(Vocab vocab);

  // Fails on invalid UTF-8, naming the byte offset. Safe to call from several threads at once.
  Result<std::vector<int32_t>> encode(std::string_view text, const EncodeOptions& options = {}) const;
  // The text of `ids`; invalid UTF-8 (a sequence cut off by the ends of `ids`) becomes U+FFFD. Ids outside
  // the vocabulary render as nothing. For SentencePiece, the dummy prefix space of the first token is
  // dropped.
  std::string decode(std::span<const int32_t> ids, const DecodeOptions& options = {}) const;
  // The bytes token `id` stands for in text: possibly part of a UTF-8 character (byte tokens).
  std::string_view token_piece(int32_t id, bool special = false) const;

  int32_t n_vocab() const { return vocab_.size(); }
  const std::string& model() const { return vocab_.model; }
  const std::string& token_text(int32_t id) const { return vocab_.texts.at(static_cast<size_t>(id)); }
  TokenType token_type(int32_t id) const { return vocab_.types.at(static_cast<size_t>(id)); }
  bool is_control(int32_t id) const { return token_type(id) == TokenType::kControl; }
  // The id of the token spelled exactly `text` (as stored in the vocabulary), if any.
  std::optional<int32_t> find_token(std::string_view text) const;

  int32_t bos() const { return vocab_.bos; }  // -1: none
  int32_t eos() const { return vocab_.eos; }
  int32_t eot() const { return vocab_.eot; }
  bool add_bos() const { return vocab_.add_bos; }
  // End of generation: EOS, EOT or EOM.
  bool is_eog(int32_t id) const {
    return id >= 0 && (id == vocab_.eos || id == vocab_.eot || id == vocab_.eom);
  }

 protected:
  explicit Tokenizer(Vocab vocab);
  const Vocab& vocab() const { return vocab_; }
  // Encodes text that holds no added tokens. `after_special`: the fragment starts the text or follows an
  // added token (SentencePiece adds its dummy prefix there).
  virtual Status encode_plain(std::string_view text, bool after_special, std::vector<int32_t>& out) const = 0;
  // The bytes of a normal token (the model's own spelling rules: byte symbols, ▁ for spaces).
  virtual std::string normal_piece(int32_t id) const = 0;
  // True when decode() should drop one leading space (SentencePiece's dummy prefix).
  virtual bool strips_leading_space() const { return false; }
  // Fills the piece table; called once by the factory, after construction (it uses normal_piece()).
  void build_pieces();

 private:
  // Longest allowed added token starting at text[pos], or -1.
  int32_t match_added(std::string_view text, size_t pos, bool parse_special) const;

  Vocab vocab_;
  std::unordered_map<std::string_view, int32_t>
      ids_;                          // into vocab_.texts, which never change after construction
  std::vector<std::string> pieces_;  // what each token renders as without `special`
  // Added tokens that may occur in text, by their first byte, longest first.
  std::array<std::vector<int32_t>, 256> added_by_first_byte_;
};

}  // namespace onecard::text
