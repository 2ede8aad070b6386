#include "text/bpe.h"

#include <queue>

#include "text/unicode.h"

namespace onecard::text {
namespace {

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// A symbol of a word being merged: a doubly linked list over the word's bytes.
struct Symbol {
  int32_t id;  // -1 once merged into its left neighbour
  int32_t prev, next;
};

// A candidate merge of the symbol at `left` with its right neighbour, as they were when it was queued.
struct Candidate {
  int32_t rank, left, left_id, right_id, result;
  // The queue's top is the best rank, and of equal ranks the leftmost, as the reference BPE merges.
  bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
};

}  // namespace

Result<std::unique_ptr<Tokenizer>> BpeTokenizer::create(Vocab vocab) {
  ONECARD_ASSIGN_OR_RETURN(PreTokenizer pre, PreTokenizer::create(vocab.pre));
  std::unique_ptr<BpeTokenizer> tok(new BpeTokenizer(std::move(vocab), std::move(pre)));
  ONECARD_TRY(tok->index_merges());
  return std::unique_ptr<Tokenizer>(std::move(tok));
}

BpeTokenizer::BpeTokenizer(Vocab vocab, PreTokenizer pre)
    : Tokenizer(std::move(vocab)), pre_(std::move(pre)) {
  for (int b = 0; b < 256; ++b) {
    const auto id = find_token(byte_to_symbol(static_cast<uint8_t>(b)));
    byte_ids_[b] = id ? *id : -1;
  }
}

Status BpeTokenizer::index_merges() {
  const auto& merges = vocab().merges;
  merges_.reserve(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string& m = merges[rank];
    // Byte-level symbols never contain a plain space (it is written Ġ), so the first space separates the two.
    const size_t space = m.find(' ', 1);
    if (space == std::string::npos) {
      return make_error("tokenizer.ggml.merges entry {} ('{}') is not two symbols separated by a space", rank,
                        m);
    }
    const std::string_view left(m.data(), space), right(m.data() + space + 1, m.size() - space - 1);
    const auto left_id = find_token(left), right_id = find_token(right);
    joined.assign(left).append(right);
    const auto result = find_token(joined);
    // A merge whose parts or result are not tokens can never fire (Hugging Face refuses such files); skip it.
    if (!left_id || !right_id || !result) continue;
    merges_.emplace(pair_key(*left_id, *right_id), Merge{static_cast<int32_t>(rank), *result});
  }
  return {};
}

const BpeTokenizer::Merge* BpeTokenizer::find_merge(int32_t left, int32_t right) const {
  auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

Status BpeTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  const auto n = static_cast<int32_t>(word.size());
  std::vector<Symbol> symbols(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    const auto byte = static_cast<uint8_t>(word[i]);
    if (byte_ids_[byte] < 0) {
      if (vocab().unk < 0)
        return make_error("the vocabulary has no token for byte 0x{:02X} and no unknown token", byte);
    }
    symbols[i] = {byte_ids_[byte] >= 0 ? byte_ids_[byte] : vocab().unk, i - 1, i + 1 < n ? i + 1 : -1};
  }
  // Each merge queues at most two new candidates, so the whole word costs O(n log n).
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto consider = [&](int32_t left) {
    if (left < 0) return;
    const int32_t right = symbols[left].next;
    if (right < 0) return;
    if (const Merge* m = find_merge(symbols[left].id, symbols[right].id)) {
      queue.push({m->rank, left, symbols[left].id, symbols[right].id, m->result});
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    // Stale when either symbol has changed since: a symbol's id changes whenever it takes part in a merge.
    Symbol& left = symbols[c.left];
    if (left.id != c.left_id || left.next < 0 || symbols[left.next].id != c.right_id) continue;
    Symbol& right = symbols[left.next];
    left.id = c.result;
    right.id = -1;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    consider(left.prev);
    consider(c.left);
  }
  for (int32_t i = 0; i >= 0 && i < n; i = symbols[i].next) out.push_back(symbols[i].id);
  return {};
}

Status BpeTokenizer::encode_plain(std::string_view text, bool /*after_special*/,
                                  std::vector<int32_t>& out) const {
  std::vector<std::string_view> words;
  ONECARD_TRY(pre_.split(text, words));
  // Prompts repeat words; merging each distinct word once is most of the speed on long texts.
  std::unordered_map<std::string_view, std::pair<size_t, size_t>> done;  // word -> its ids' range in `out`
  for (std::string_view word : words) {
    if (auto it = done.find(word); it != done.end()) {
      const auto [start, count] = it->second;
      for (size_t k = 0; k < count; ++k) out.push_back(out[start + k]);
      continue;
    }
    const size_t start = out.size();
    ONECARD_TRY(encode_word(word, out));
    done.emplace(word, std::pair{start, out.size() - start});
  }
  return {};
}

std::string BpeTokenizer::normal_piece(int32_t id) const {
  // Each character of the token's text stands for one byte; anything else is kept as it is.
  const std::string& text = token_text(id);
  std::string bytes;
  for (size_t pos = 0; pos < text.size();) {
    const Utf8Sequence seq = next_utf8(text, pos);
    const auto byte = seq.status == Utf8Status::kComplete ? symbol_to_byte(seq.code_point) : std::nullopt;
    if (byte) {
      bytes += static_cast<char>(*byte);
    } else {
      bytes.append(text, pos, seq.length);
    }
    pos += seq.length;
  }
  return bytes;
}

}  // namespace onecard::text
