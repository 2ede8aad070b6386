// SentencePiece-style tokenization on a small synthetic vocabulary written with the GGUF writer:
// score-ordered merges, the ▁ dummy prefix, byte fallback, the unknown token, added tokens, and round trips.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <memory>
#include <string>
#include <vector>

#include "gguf/file.h"
#include "gguf/writer.h"
#include "text/tokenizer.h"

namespace onecard::text {
namespace {

struct Piece {
  std::string text;
  float score;
  TokenType type;
};

// <unk> <s> </s>, optionally the 256 byte tokens, then pieces. Keys that llama-family files often leave out
// (special ids, add_bos_token) are left out to exercise the defaults.
std::unique_ptr<Tokenizer> make_spm(bool byte_tokens) {
  std::vector<Piece> pieces = {
      {"<unk>", 0, TokenType::kUnknown}, {"<s>", 0, TokenType::kControl}, {"</s>", 0, TokenType::kControl}};
  if (byte_tokens) {
    for (int b = 0; b < 256; ++b) pieces.push_back({fmt::format("<0x{:02X}>", b), 0, TokenType::kByte});
  }
  const std::vector<std::pair<std::string, float>> normal = {
      {"▁", -10},       {"H", -10}, {"e", -10}, {"l", -10},    {"o", -10},   {"w", -10},
      {"r", -10},       {"d", -10}, {"ll", -2}, {"llo", -1.5}, {"He", -3},   {"Hello", -1},
      {"▁Hello", -0.5}, {"▁w", -4}, {"or", -5}, {"ld", -4},    {"▁wor", -3}, {"▁world", -2}};
  for (const auto& [text, score] : normal) pieces.push_back({text, score, TokenType::kNormal});
  pieces.push_back({"<tag>", 0, TokenType::kUserDefined});
  pieces.push_back({"<tag>long", 0, TokenType::kUserDefined});
  pieces.push_back({"<｜User｜>", 0, TokenType::kControl});

  std::vector<std::string> texts;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (const Piece& p : pieces) {
    texts.push_back(p.text);
    scores.push_back(p.score);
    types.push_back(static_cast<int32_t>(p.type));
  }
  gguf::Writer w;
  w.set("general.architecture", gguf::MetaValue::string("llama"));
  w.set("tokenizer.ggml.model", gguf::MetaValue::string("llama"));
  w.set("tokenizer.ggml.tokens", gguf::MetaValue::strings(texts));
  w.set("tokenizer.ggml.scores", gguf::MetaValue::f32s(scores));
  w.set("tokenizer.ggml.token_type", gguf::MetaValue::i32s(types));
  const std::vector<uint8_t> bytes = w.header_bytes();
  auto file = gguf::File::parse(bytes, "synthetic-spm.gguf");
  EXPECT_TRUE(file.ok()) << file.error().message();
  if (!file.ok()) return nullptr;
  auto tok = Tokenizer::from_gguf(*file);  // copies what it needs: `bytes` may go
  EXPECT_TRUE(tok.ok()) << tok.error().message();
  return tok.ok() ? std::move(tok).value() : nullptr;
}

class Spm : public ::testing::Test {
 protected:
  void SetUp() override {
    tok_ = make_spm(true);
    ASSERT_NE(tok_, nullptr);
  }
  std::vector<int32_t> encode(std::string_view text, bool parse_special = false) {
    EncodeOptions o;
    o.add_bos = false;
    o.parse_special = parse_special;
    auto ids = tok_->encode(text, o);
    EXPECT_TRUE(ids.ok()) << ids.error().message();
    return ids.ok() ? *ids : std::vector<int32_t>{};
  }
  int32_t id(std::string_view text) { return tok_->find_token(text).value_or(-1); }
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(Spm, DefaultsOfLlamaFiles) {
  EXPECT_EQ(tok_->model(), "llama");
  EXPECT_EQ(tok_->bos(), 1);
  EXPECT_EQ(tok_->eos(), 2);
  EXPECT_TRUE(tok_->add_bos());
  auto ids = tok_->encode("Hello");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<int32_t>{1, id("▁Hello")}));
}

TEST_F(Spm, MergesByScoreWithDummyPrefix) {
  EXPECT_EQ(encode("Hello world"), (std::vector<int32_t>{id("▁Hello"), id("▁world")}));
  EXPECT_EQ(encode("Hello"), (std::vector<int32_t>{id("▁Hello")}));
  // Extra spaces stay as ▁ pieces; the dummy prefix makes the first word's space.
  EXPECT_EQ(encode("  Hello"), (std::vector<int32_t>{id("▁"), id("▁"), id("▁Hello")}));
  // "Hel" cannot reach a longer piece than He + l.
  EXPECT_EQ(encode("Hel"), (std::vector<int32_t>{id("▁"), id("He"), id("l")}));
}

TEST_F(Spm, ByteFallbackForCharactersWithoutPieces) {
  EXPECT_EQ(encode("Hé"), (std::vector<int32_t>{id("▁"), id("H"), id("<0xC3>"), id("<0xA9>")}));
  EXPECT_EQ(encode("😀"),
            (std::vector<int32_t>{id("▁"), id("<0xF0>"), id("<0x9F>"), id("<0x98>"), id("<0x80>")}));
}

TEST_F(Spm, UnknownTokenWithoutByteTokens) {
  auto tok = make_spm(false);
  ASSERT_NE(tok, nullptr);
  EncodeOptions o;
  o.add_bos = false;
  auto ids = tok->encode("Hé", o);
  ASSERT_TRUE(ids.ok()) << ids.error().message();
  EXPECT_EQ(*ids, (std::vector<int32_t>{*tok->find_token("▁"), *tok->find_token("H"), 0}));
}

TEST_F(Spm, RoundTrips) {
  for (std::string text : {"Hello world", "  Hello", "Hé 😀 world ", "", " ", "world\nHello\t", "日本語"}) {
    auto ids = tok_->encode(text);
    ASSERT_TRUE(ids.ok()) << ids.error().message();
    EXPECT_EQ(tok_->decode(*ids), text);
  }
}

TEST_F(Spm, AddedTokens) {
  // User-defined tokens always, longest first; the text after an added token gets the dummy prefix again.
  EXPECT_EQ(encode("<tag>longHello"), (std::vector<int32_t>{id("<tag>long"), id("▁Hello")}));
  EXPECT_EQ(encode("<tag>Hello"), (std::vector<int32_t>{id("<tag>"), id("▁Hello")}));
  // Control tokens only with parse_special.
  EXPECT_EQ(encode("<｜User｜>Hello", true), (std::vector<int32_t>{id("<｜User｜>"), id("▁Hello")}));
  const auto plain = encode("<｜User｜>Hello", false);
  for (int32_t t : plain) EXPECT_NE(t, id("<｜User｜>"));
  EXPECT_EQ(tok_->decode(plain), "<｜User｜>Hello");
}

}  // namespace
}  // namespace onecard::text
