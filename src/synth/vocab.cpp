#include "synth/vocab.h"

#include <array>
#include <cctype>
#include <string_view>
#include <unordered_map>

#include "base/rng.h"

namespace onecard::synth {
namespace {

// Common English words, most frequent first, so that small vocabularies get the most useful ones.
constexpr std::string_view kWords =
    "the of and to a in is that for it as was with be by on not he this are or his from at which but have "
    "an they you were her she there one all we their been has when who will more no if out so said what "
    "up its about into than them can only other new some could time these two may then do first any my "
    "now such like our over man me even most made after also did many before must through back years "
    "where much your way well down should because each just those people how too little state good very "
    "make world still own see men work long get here between both life being under never day same another "
    "know while last might us great old year off come since against go came right used take three states "
    "himself few house use during without again place around however home small found thought went say "
    "part once general high upon school every does got united left number course war until always away "
    "something fact though water less public put think almost hand enough far took head yet government "
    "system better set told nothing night end why called didn find look going point knew city next "
    "program give group toward young days let room president side social present given several order "
    "national possible rather second face per among form important often things looked early white case "
    "john become large big need four within felt along children saw best church ever least power "
    "development light thing seemed family interest want members mind country area others done turned "
    "although open god service certain kind problem began different door thus help sense means whole "
    "matter perhaps itself york times law human line above name example action company hands local show "
    "whether five history gave today either act feet across taken past quite anything seen having death "
    "experience body word half really week model token expert experts layer attention query key value "
    "router gate hidden weight weights matrix vector tensor scale norm shared routed mixture sequence "
    "context prompt answer question reason reasoning think step hello quick brown fox jumps lazy dog data "
    "file read write test build run code function return true false null list string number text input "
    "output error result memory cache batch stream server client request response message user assistant "
    "system chat compute kernel thread block sample random seed";

// Syllables of the pseudo-words that fill larger vocabularies.
constexpr std::array<std::string_view, 34> kOnsets = {
    "",  "b", "c",  "d",  "f",  "g",  "h",  "j",  "k",  "l",  "m",  "n",  "p",  "r",  "s",   "t",  "v",
    "w", "z", "br", "ch", "cl", "cr", "dr", "fl", "gr", "pl", "pr", "sh", "sl", "st", "str", "th", "tr"};
constexpr std::array<std::string_view, 10> kVowels = {"a", "e", "i", "o", "u", "ai", "ea", "ou", "io", "y"};
constexpr std::array<std::string_view, 12> kCodas = {"",  "",  "n",  "r",  "s",  "l",
                                                     "t", "m", "nd", "st", "ng", "x"};

constexpr std::array<std::string_view, 18> kSymbols = {
    "\n\n", "  ", "    ", "        ", "\n\n\n", " \n", "...",  "--",  "==",
    "**",   "//", "::",   "->",       "!=",     "'s",  "\t\t", "```", "0.",
};

// DeepSeek-V3's spellings: full-width vertical bars (U+FF5C) and the lower one-eighth block (U+2581). The
// tool-call markers follow the chat tokens, so that prompts and answers with tool calls tokenize as
// DeepSeek's.
constexpr std::array<std::string_view, 15> kSpecials = {"<｜begin▁of▁sentence｜>",
                                                        "<｜end▁of▁sentence｜>",
                                                        "<｜User｜>",
                                                        "<｜Assistant｜>",
                                                        "<think>",
                                                        "</think>",
                                                        "<｜tool▁calls▁begin｜>",
                                                        "<｜tool▁calls▁end｜>",
                                                        "<｜tool▁call▁begin｜>",
                                                        "<｜tool▁call▁end｜>",
                                                        "<｜tool▁sep｜>",
                                                        "<｜tool▁outputs▁begin｜>",
                                                        "<｜tool▁outputs▁end｜>",
                                                        "<｜tool▁output▁begin｜>",
                                                        "<｜tool▁output▁end｜>"};

uint64_t pair_key(uint32_t a, uint32_t b) {
  return (uint64_t{a} << 32) | b;
}

// Grows a vocabulary word by word. Merges come in two rank classes: those whose left part starts with a
// space (the chains of space-led words) rank before all others, and within a class merges rank in insertion
// order. So inside a space-led word, whose other bytes are no spaces, every pair but the chain's is of the
// later class and the chain always wins; and a merge added later never wins over one an earlier token needs.
// Checking each new token once, when it is added, therefore proves the property for the final vocabulary.
class Builder {
 public:
  explicit Builder(uint32_t target) : target_(target) {
    for (uint32_t b = 0; b < 256; ++b) add_token(std::string(1, static_cast<char>(b)));
  }

  bool full() const { return raw_.size() >= target_; }

  // Adds the word's prefixes that are not tokens yet, shortest first, each merged as (prefix[:-1], last
  // byte); stops at the first prefix that BPE would not reach (then no longer prefix can be a token either).
  bool add_word(std::string_view word) {
    bool added = false;
    for (size_t len = 2; len <= word.size() && !full(); ++len) {
      const std::string prefix(word.substr(0, len));
      if (ids_.count(prefix) != 0) continue;
      const uint32_t left = ids_.at(prefix.substr(0, len - 1));
      const auto right = static_cast<uint32_t>(static_cast<uint8_t>(prefix.back()));
      const uint32_t id = add_token(prefix);
      auto& list = prefix[0] == ' ' ? space_led_ : others_;
      const uint32_t rank = static_cast<uint32_t>(list.size()) + (prefix[0] == ' ' ? 0 : kLaterClass);
      merges_.emplace(pair_key(left, right), Merge{rank, id});
      list.emplace_back(left, right);
      if (!reaches(prefix, id)) {
        merges_.erase(pair_key(left, right));
        list.pop_back();
        ids_.erase(prefix);
        raw_.pop_back();
        break;
      }
      added = true;
    }
    return added;
  }

  Vocab finish() && {
    Vocab v;
    v.tokens.reserve(raw_.size() + kSpecials.size());
    for (const auto& r : raw_) v.tokens.push_back(byte_level(r));
    v.types.assign(raw_.size(), kTokenNormal);
    v.merges.reserve(space_led_.size() + others_.size());
    for (const auto* list : {&space_led_, &others_}) {
      for (const auto& [a, b] : *list) v.merges.push_back(v.tokens[a] + " " + v.tokens[b]);
    }
    v.bos = static_cast<uint32_t>(v.tokens.size());
    v.eos = v.bos + 1;
    // DeepSeek-R1 marks <think> and </think> as added tokens that are not special: they are user-defined
    // tokens, written in decoded text like words (the reasoning split reads them); the rest are control.
    for (auto s : kSpecials) {
      v.tokens.emplace_back(s);
      v.types.push_back(s == "<think>" || s == "</think>" ? kTokenUserDefined : kTokenControl);
    }
    return v;
  }

 private:
  static constexpr uint32_t kLaterClass = 1u << 31;
  struct Merge {
    uint32_t rank;
    uint32_t result;
  };

  uint32_t add_token(std::string raw) {
    const auto id = static_cast<uint32_t>(raw_.size());
    ids_.emplace(raw, id);
    raw_.push_back(std::move(raw));
    return id;
  }

  // Byte-level BPE as tokenizers run it: repeatedly merge the adjacent pair of best rank (leftmost on ties).
  bool reaches(std::string_view word, uint32_t id) const {
    std::vector<uint32_t> sym(word.size());
    for (size_t i = 0; i < word.size(); ++i) sym[i] = static_cast<uint8_t>(word[i]);
    while (sym.size() > 1) {
      size_t best_pos = sym.size();
      Merge best{UINT32_MAX, 0};
      for (size_t i = 0; i + 1 < sym.size(); ++i) {
        const auto it = merges_.find(pair_key(sym[i], sym[i + 1]));
        if (it != merges_.end() && it->second.rank < best.rank) {
          best = it->second;
          best_pos = i;
        }
      }
      if (best_pos == sym.size()) break;
      sym[best_pos] = best.result;
      sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(best_pos) + 1);
    }
    return sym.size() == 1 && sym[0] == id;
  }

  uint32_t target_;
  std::vector<std::string> raw_;
  std::unordered_map<std::string, uint32_t> ids_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::vector<std::pair<uint32_t, uint32_t>> space_led_;
  std::vector<std::pair<uint32_t, uint32_t>> others_;
};

std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Built by appending: GCC 12 at -O3 warns falsely (-Wrestrict) on `" " + std::string`.
std::string space_led(std::string_view w) {
  std::string out(1, ' ');
  out += w;
  return out;
}

std::string capitalized(std::string_view w) {
  std::string out(w);
  out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

std::string pseudo_word(Rng& rng) {
  std::string w;
  const uint32_t syllables = 1 + rng.below(4);
  for (uint32_t i = 0; i < syllables; ++i) {
    w += kOnsets[rng.below(kOnsets.size())];
    w += kVowels[rng.below(kVowels.size())];
    w += kCodas[rng.below(kCodas.size())];
  }
  return w;
}

}  // namespace

std::string byte_token(uint8_t byte) {
  const bool printable = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || byte >= 174;
  uint32_t cp = byte;
  if (!printable) {
    // The non-printable bytes take U+0100, U+0101, ... in byte order.
    uint32_t rank = 0;
    for (uint32_t b = 0; b < byte; ++b) {
      if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)) ++rank;
    }
    cp = 256 + rank;
  }
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

std::string byte_level(std::string_view raw) {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    for (uint32_t b = 0; b < 256; ++b) t[b] = byte_token(static_cast<uint8_t>(b));
    return t;
  }();
  std::string out;
  out.reserve(raw.size() * 2);
  for (char c : raw) out += table[static_cast<uint8_t>(c)];
  return out;
}

Result<Vocab> build_vocab(uint32_t size) {
  if (size < kMinVocab || size > kMaxVocab) {
    return make_error("vocabulary size {} is out of range ({}..{})", size, kMinVocab, kMaxVocab);
  }
  Builder b(size - static_cast<uint32_t>(kSpecials.size()));
  const auto words = split_words(kWords);
  for (auto w : words) b.add_word(space_led(w));
  for (auto w : words) b.add_word(w);
  for (auto w : words) b.add_word(space_led(capitalized(w)));
  for (auto w : words) b.add_word(capitalized(w));
  for (auto s : kSymbols) b.add_word(s);
  for (uint32_t n = 0; n < 1000; ++n) {
    b.add_word(fmt::format("{:02}", n % 100));
    b.add_word(fmt::format("{:03}", n));
  }
  Rng rng(0x0c0ffee, "synth-vocab");
  // Short pseudo-words soon repeat, long ones hardly ever; the bound only turns a stall into an error.
  uint32_t idle = 0;
  while (!b.full()) {
    // Space-led, so that each one's new prefixes are reachable however full the vocabulary is.
    const bool added = b.add_word(space_led(pseudo_word(rng)));
    idle = added ? 0 : idle + 1;
    if (idle > 1000000) return make_error("vocabulary generation stalled before {} tokens", size);
  }
  return std::move(b).finish();
}

}  // namespace onecard::synth
