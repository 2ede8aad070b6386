#include "text/spm.h"

#include <fmt/format.h>

#include <algorithm>
#include <queue>

#include "text/unicode.h"

namespace onecard::text {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // ▁ U+2581, SentencePiece's visible space

struct Symbol {
  size_t start, length;  // bytes of the escaped text; length 0 once merged into its left neighbour
  int32_t prev, next;
};

struct Candidate {
  float score;
  int32_t left;
  size_t length;  // of the merged text, to recognise stale candidates
  // The queue's top is the highest score, and of equal scores the leftmost.
  bool operator<(const Candidate& o) const { return score != o.score ? score < o.score : left > o.left; }
};

}  // namespace

std::unique_ptr<Tokenizer> SpmTokenizer::create(Vocab vocab) {
  return std::unique_ptr<Tokenizer>(new SpmTokenizer(std::move(vocab)));
}

SpmTokenizer::SpmTokenizer(Vocab vocab) : Tokenizer(std::move(vocab)) {
  for (int b = 0; b < 256; ++b) {
    const auto id = find_token(fmt::format("<0x{:02X}>", b));
    byte_tokens_[b] = id && token_type(*id) == TokenType::kByte ? *id : -1;
  }
}

int32_t SpmTokenizer::mergeable(std::string_view text) const {
  const auto id = find_token(text);
  if (!id) return -1;
  const TokenType t = token_type(*id);
  return t == TokenType::kNormal || t == TokenType::kUserDefined || t == TokenType::kUndefined ? *id : -1;
}

Status SpmTokenizer::append_fallback(std::string_view symbol, std::vector<int32_t>& out) const {
  const bool all_bytes = std::all_of(symbol.begin(), symbol.end(),
                                     [&](char c) { return byte_tokens_[static_cast<uint8_t>(c)] >= 0; });
  if (all_bytes) {
    for (char c : symbol) out.push_back(byte_tokens_[static_cast<uint8_t>(c)]);
  } else if (vocab().unk >= 0) {
    out.push_back(vocab().unk);
  } else {
    return make_error("no piece, byte tokens or unknown token for the text '{}'", symbol);
  }
  return {};
}

Status SpmTokenizer::encode_plain(std::string_view text, bool after_special,
                                  std::vector<int32_t>& out) const {
  std::string s;
  s.reserve(text.size() + 3 * 8);
  if (vocab().add_space_prefix && after_special) s += kSpace;
  for (char c : text) {
    if (c == ' ') {
      s += kSpace;
    } else {
      s += c;
    }
  }

  std::vector<Symbol> symbols;
  for (size_t pos = 0; pos < s.size();) {
    const size_t len = next_utf8(s, pos).length;  // the text was validated
    const auto i = static_cast<int32_t>(symbols.size());
    symbols.push_back({pos, len, i - 1, pos + len < s.size() ? i + 1 : -1});
    pos += len;
  }
  auto text_of = [&](int32_t i) { return std::string_view(s).substr(symbols[i].start, symbols[i].length); };

  std::priority_queue<Candidate> queue;
  auto consider = [&](int32_t left) {
    if (left < 0 || symbols[left].next < 0) return;
    const Symbol& l = symbols[left];
    const size_t length = l.length + symbols[l.next].length;
    const int32_t id = mergeable(std::string_view(s).substr(l.start, length));
    if (id >= 0) queue.push({vocab().scores[id], left, length});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = symbols[c.left];
    // Stale when either side has grown or been merged away since it was queued.
    if (left.length == 0 || left.next < 0 || left.length + symbols[left.next].length != c.length) continue;
    Symbol& right = symbols[left.next];
    left.length = c.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    consider(left.prev);
    consider(c.left);
  }

  for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    const auto id = find_token(text_of(i));
    if (id) {
      out.push_back(*id);
    } else {
      ONECARD_TRY(append_fallback(text_of(i), out));
    }
  }
  return {};
}

std::string SpmTokenizer::normal_piece(int32_t id) const {
  const std::string& text = token_text(id);
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    if (std::string_view(text).substr(pos).starts_with(kSpace)) {
      out += ' ';
      pos += kSpace.size();
    } else {
      out += text[pos++];
    }
  }
  return out;
}

}  // namespace onecard::text
