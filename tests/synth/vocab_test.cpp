#include "synth/vocab.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace onecard::synth {
namespace {

// Splits a byte-level spelling into its characters (each one or two UTF-8 bytes, one per raw byte).
std::vector<std::string> chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const size_t n = (static_cast<uint8_t>(s[i]) & 0x80) ? 2 : 1;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

// An independent byte-level BPE over the file's strings: merges ranked by position, lowest applied first.
class Bpe {
 public:
  explicit Bpe(const Vocab& v) {
    for (size_t i = 0; i < v.merges.size(); ++i) rank_[v.merges[i]] = i;
  }
  std::vector<std::string> encode(const std::string& word) const {
    std::vector<std::string> sym = chars(word);
    for (;;) {
      size_t best = SIZE_MAX, pos = 0;
      for (size_t i = 0; i + 1 < sym.size(); ++i) {
        const auto it = rank_.find(sym[i] + " " + sym[i + 1]);
        if (it != rank_.end() && it->second < best) {
          best = it->second;
          pos = i;
        }
      }
      if (best == SIZE_MAX) return sym;
      sym[pos] += sym[pos + 1];
      sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(pos) + 1);
    }
  }

 private:
  std::unordered_map<std::string, size_t> rank_;
};

TEST(SynthVocab, ByteTokensFollowGpt2Mapping) {
  EXPECT_EQ(byte_token(' '), "\u0120");   // Ġ
  EXPECT_EQ(byte_token('\n'), "\u010a");  // Ċ
  EXPECT_EQ(byte_token(0), "\u0100");     // Ā
  EXPECT_EQ(byte_token('A'), "A");
  EXPECT_EQ(byte_token('~'), "~");
  EXPECT_EQ(byte_token(127), "\u0121");
  EXPECT_EQ(byte_token(160), "\u0142");
  EXPECT_EQ(byte_token(161), "\u00a1");
  EXPECT_EQ(byte_token(173), "\u0143");
  EXPECT_EQ(byte_token(255), "\u00ff");
  EXPECT_EQ(byte_level(" hi\n"), "\u0120hi\u010a");

  const auto v = build_vocab(kMinVocab);
  ASSERT_TRUE(v.ok()) << v.error().message();
  ASSERT_EQ(v->tokens.size(), kMinVocab);
  std::set<std::string> bytes;
  for (uint32_t b = 0; b < 256; ++b) {
    EXPECT_EQ(v->tokens[b], byte_token(static_cast<uint8_t>(b)));
    bytes.insert(v->tokens[b]);
  }
  EXPECT_EQ(bytes.size(), 256u);
  EXPECT_TRUE(v->merges.empty());
}

TEST(SynthVocab, PropertiesAtSeveralSizes) {
  for (uint32_t size : {kMinVocab + 1, 512u, 1024u, 8192u, 20000u}) {
    SCOPED_TRACE(size);
    const auto r = build_vocab(size);
    ASSERT_TRUE(r.ok()) << r.error().message();
    const Vocab& v = r.value();
    ASSERT_EQ(v.tokens.size(), size);
    ASSERT_EQ(v.types.size(), size);

    std::map<std::string, uint32_t> ids;
    for (uint32_t i = 0; i < size; ++i)
      EXPECT_TRUE(ids.emplace(v.tokens[i], i).second) << "duplicate " << v.tokens[i];

    const std::vector<std::string> specials = {"<｜begin▁of▁sentence｜>",
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
    ASSERT_EQ(specials.size() + 256, kMinVocab);
    for (size_t k = 0; k < specials.size(); ++k) {
      const uint32_t id = size - static_cast<uint32_t>(specials.size()) + static_cast<uint32_t>(k);
      EXPECT_EQ(v.tokens[id], specials[k]);
      const bool think = specials[k] == "<think>" || specials[k] == "</think>";
      EXPECT_EQ(v.types[id], think ? kTokenUserDefined : kTokenControl) << specials[k];
    }
    EXPECT_EQ(v.tokens[v.bos], specials[0]);
    EXPECT_EQ(v.tokens[v.eos], specials[1]);
    for (uint32_t i = 0; i + specials.size() < size; ++i) EXPECT_EQ(v.types[i], kTokenNormal);

    // Every normal multi-byte token has exactly one merge producing it; parts and result are tokens.
    EXPECT_EQ(v.merges.size(), size - 256 - specials.size());
    std::set<std::string> results;
    for (const auto& m : v.merges) {
      const size_t sp = m.find(' ');
      ASSERT_NE(sp, std::string::npos) << m;
      ASSERT_EQ(m.find(' ', sp + 1), std::string::npos) << m;
      const std::string a = m.substr(0, sp), b = m.substr(sp + 1);
      EXPECT_TRUE(ids.count(a)) << m;
      EXPECT_TRUE(ids.count(b)) << m;
      EXPECT_TRUE(ids.count(a + b)) << m;
      EXPECT_TRUE(results.insert(a + b).second) << "two merges give " << a + b;
    }

    // BPE on each normal token's own bytes ends at that token.
    const Bpe bpe(v);
    for (uint32_t i = 256; i < v.bos; ++i) {
      const auto enc = bpe.encode(v.tokens[i]);
      ASSERT_EQ(enc.size(), 1u) << v.tokens[i] << " splits into " << enc.size() << " pieces";
      EXPECT_EQ(enc[0], v.tokens[i]);
    }
  }
}

TEST(SynthVocab, EnglishWordsComeFirst) {
  const auto v = build_vocab(4096);
  ASSERT_TRUE(v.ok());
  const std::set<std::string> tokens(v->tokens.begin(), v->tokens.end());
  for (const char* w : {"\u0120the", "\u0120model", "\u0120expert", "\u0120hello", "the", "of"}) {
    EXPECT_TRUE(tokens.count(w)) << w;
  }
  const Bpe bpe(v.value());
  // Merges never cross a space-led word's start, so two words come out as two tokens.
  const auto enc = bpe.encode(byte_level(" the model"));
  EXPECT_EQ(enc, (std::vector<std::string>{"\u0120the", "\u0120model"}));
}

TEST(SynthVocab, FullDeepSeekSizeIsQuickAndDeterministic) {
  const auto a = build_vocab(129280);
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_EQ(a->tokens.size(), 129280u);
  EXPECT_EQ(a->merges.size(), 129280u - 271u);
  EXPECT_EQ(a->bos, 129265u);
  const std::set<std::string> unique(a->tokens.begin(), a->tokens.end());
  EXPECT_EQ(unique.size(), a->tokens.size());
  const auto b = build_vocab(129280);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->tokens, b->tokens);
  EXPECT_EQ(a->merges, b->merges);
}

TEST(SynthVocab, SizeOutOfRangeIsAnError) {
  const auto r = build_vocab(kMinVocab - 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("271"), std::string::npos) << r.error().message();
}

}  // namespace
}  // namespace onecard::synth
