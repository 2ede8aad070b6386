// Streaming detokenization: tokens that end inside a multi-byte character are held back until it is complete,
// the output is valid UTF-8 at every step, and what cannot be completed becomes U+FFFD.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "golden_tokenizer.h"
#include "text/detokenizer.h"
#include "text/tokenizer.h"
#include "text/unicode.h"

namespace onecard::text {
namespace {

class Stream : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tok_ = testing::load_golden_tokenizer("tokenizer/ggml-vocab-deepseek-llm.gguf").release();
    ASSERT_NE(tok_, nullptr);
  }
  static void TearDownTestSuite() {
    delete tok_;
    tok_ = nullptr;
  }
  // The id of the byte-level token standing for one raw byte.
  static int32_t byte_token(uint8_t b) { return tok_->find_token(byte_to_symbol(b)).value_or(-1); }
  static Tokenizer* tok_;
};
Tokenizer* Stream::tok_ = nullptr;

TEST_F(Stream, HoldsBackSplitCharactersAndReassemblesTheText) {
  // Khmer and emoji: the vocabulary spells some of these characters with byte tokens (the golden ids of this
  // text include 155 and 240, single bytes of three-byte characters).
  const std::string text =
      "កាន់តែពិសេសអាចខលចេញ 🚀 (normal) 😶‍🌫️ ✅";
  EncodeOptions o;
  o.add_bos = false;
  auto ids = tok_->encode(text, o);
  ASSERT_TRUE(ids.ok());
  StreamDecoder stream(*tok_);
  std::string out;
  bool held_back = false;
  for (int32_t id : *ids) {
    const std::string piece = stream.push(id);
    EXPECT_EQ(find_invalid_utf8(piece), std::nullopt) << "token " << id;
    held_back |= stream.pending() > 0;
    out += piece;
  }
  out += stream.flush();
  EXPECT_TRUE(held_back);
  EXPECT_EQ(out, text);
  EXPECT_EQ(stream.pending(), 0u);
}

TEST_F(Stream, OneCharacterFromSingleByteTokens) {
  // "€" is E2 82 AC: nothing comes out until its last byte arrives.
  StreamDecoder stream(*tok_);
  EXPECT_EQ(stream.push(byte_token(0xE2)), "");
  EXPECT_EQ(stream.pending(), 1u);
  EXPECT_EQ(stream.push(byte_token(0x82)), "");
  EXPECT_EQ(stream.push(byte_token(0xAC)), "€");
  EXPECT_EQ(stream.pending(), 0u);
  EXPECT_EQ(stream.flush(), "");
}

TEST_F(Stream, InvalidBytesBecomeReplacementCharacters) {
  StreamDecoder stream(*tok_);
  // A lead byte followed by ASCII can never complete: replaced at once, the ASCII kept.
  EXPECT_EQ(stream.push(byte_token(0xE2)), "");
  EXPECT_EQ(stream.push(*tok_->find_token("a")),
            "\xEF\xBF\xBD"
            "a");
  // A stray continuation byte.
  EXPECT_EQ(stream.push(byte_token(0x80)), "\xEF\xBF\xBD");
  // An unfinished character at the end of the stream.
  EXPECT_EQ(stream.push(byte_token(0xF0)), "");
  EXPECT_EQ(stream.push(byte_token(0x9F)), "");
  EXPECT_EQ(stream.flush(), "\xEF\xBF\xBD");
}

TEST_F(Stream, ControlTokensOnlyWhenAsked) {
  StreamDecoder plain(*tok_);
  EXPECT_EQ(plain.push(tok_->eos()), "");
  StreamDecoder special(*tok_, true);
  EXPECT_EQ(special.push(tok_->eos()), "<｜end▁of▁sentence｜>");
}

TEST_F(Stream, DecodeReplacesCutCharacters) {
  EXPECT_EQ(tok_->decode(std::vector<int32_t>{byte_token(0xE2), byte_token(0x82)}), "\xEF\xBF\xBD");
  EXPECT_EQ(tok_->token_piece(byte_token(0xE2)), "\xE2");
}

}  // namespace
}  // namespace onecard::text
