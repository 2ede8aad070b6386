#include "text/tokenizer.h"

#include <algorithm>
#include <cstdio>

#include "text/bpe.h"
#include "text/spm.h"
#include "text/unicode.h"

namespace onecard::text {
namespace {

bool recognisable_in_text(TokenType t) {
  return t == TokenType::kControl || t == TokenType::kUserDefined || t == TokenType::kUnknown;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const gguf::File& file) {
  ONECARD_ASSIGN_OR_RETURN(Vocab vocab, Vocab::from_gguf(file));
  auto tok = create(std::move(vocab));
  if (!tok.ok()) return tok.error().with_context(file.path());
  return tok;
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::create(Vocab vocab) {
  std::unique_ptr<Tokenizer> tok;
  if (vocab.model == "gpt2") {
    ONECARD_ASSIGN_OR_RETURN(tok, BpeTokenizer::create(std::move(vocab)));
  } else if (vocab.model == "llama") {
    tok = SpmTokenizer::create(std::move(vocab));
  } else {
    return make_error("unsupported tokenizer model '{}'; supported: gpt2, llama", vocab.model);
  }
  tok->build_pieces();
  return tok;
}

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {
  ids_.reserve(vocab_.texts.size());
  for (int32_t id = 0; id < vocab_.size(); ++id) {
    // The first of duplicate spellings wins (padded vocabularies repeat placeholder texts).
    ids_.emplace(vocab_.texts[id], id);
    const std::string& text = vocab_.texts[id];
    if (!text.empty() && recognisable_in_text(vocab_.types[id])) {
      added_by_first_byte_[static_cast<uint8_t>(text[0])].push_back(id);
    }
  }
  for (auto& bucket : added_by_first_byte_) {
    std::stable_sort(bucket.begin(), bucket.end(),
                     [&](int32_t a, int32_t b) { return vocab_.texts[a].size() > vocab_.texts[b].size(); });
  }
}

void Tokenizer::build_pieces() {
  pieces_.resize(vocab_.texts.size());
  for (int32_t id = 0; id < vocab_.size(); ++id) {
    const std::string& text = vocab_.texts[id];
    switch (vocab_.types[id]) {
      case TokenType::kNormal:
      case TokenType::kUndefined:
        pieces_[id] = normal_piece(id);
        break;
      case TokenType::kUserDefined:
        pieces_[id] = text;
        break;
      case TokenType::kByte: {
        // <0xNN>
        unsigned value = 0;
        if (text.size() == 6 && text.starts_with("<0x") && text[5] == '>' &&
            std::sscanf(text.c_str() + 3, "%2x", &value) == 1) {
          pieces_[id] = std::string(1, static_cast<char>(value));
        } else {
          pieces_[id] = text;
        }
        break;
      }
      case TokenType::kControl:
      case TokenType::kUnknown:
      case TokenType::kUnused:
        break;  // rendered only with `special`
    }
  }
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  auto it = ids_.find(text);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

std::string_view Tokenizer::token_piece(int32_t id, bool special) const {
  if (id < 0 || id >= n_vocab()) return {};
  if (special && pieces_[id].empty()) return vocab_.texts[id];
  return pieces_[id];
}

int32_t Tokenizer::match_added(std::string_view text, size_t pos, bool parse_special) const {
  for (int32_t id : added_by_first_byte_[static_cast<uint8_t>(text[pos])]) {
    if (!parse_special && vocab_.types[id] != TokenType::kUserDefined) continue;
    if (text.substr(pos).starts_with(vocab_.texts[id])) return id;  // the bucket is longest first
  }
  return -1;
}

Result<std::vector<int32_t>> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  if (auto bad = find_invalid_utf8(text)) {
    return make_error("invalid UTF-8 at byte offset {} of the text (byte 0x{:02X})", *bad,
                      static_cast<uint8_t>(text[*bad]));
  }
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (options.add_bos.value_or(vocab_.add_bos) && vocab_.bos >= 0) out.push_back(vocab_.bos);

  size_t fragment = 0;  // start of the plain text not yet encoded
  bool after_special = true;
  for (size_t pos = 0; pos < text.size();) {
    const int32_t id = added_by_first_byte_[static_cast<uint8_t>(text[pos])].empty()
                           ? -1
                           : match_added(text, pos, options.parse_special);
    if (id < 0) {
      ++pos;
      continue;
    }
    if (pos > fragment) ONECARD_TRY(encode_plain(text.substr(fragment, pos - fragment), after_special, out));
    out.push_back(id);
    after_special = true;
    pos = fragment = pos + vocab_.texts[id].size();
  }
  if (fragment < text.size()) ONECARD_TRY(encode_plain(text.substr(fragment), after_special, out));

  if (options.add_eos.value_or(vocab_.add_eos) && vocab_.eos >= 0) out.push_back(vocab_.eos);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, const DecodeOptions& options) const {
  std::string bytes;
  for (int32_t id : ids) bytes.append(token_piece(id, options.special));
  if (strips_leading_space() && !ids.empty() && bytes.starts_with(' ')) bytes.erase(0, 1);
  return sanitize_utf8(bytes);
}

}  // namespace onecard::text
