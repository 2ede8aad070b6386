// Added tokens in text: control tokens only where the caller allows it, user-defined tokens always; and
// errors for text that is not UTF-8.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "golden_tokenizer.h"
#include "text/tokenizer.h"

namespace onecard::text {
namespace {

class DeepSeekLlm : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tok_ = testing::load_golden_tokenizer("tokenizer/ggml-vocab-deepseek-llm.gguf").release();
    ASSERT_NE(tok_, nullptr);
  }
  static void TearDownTestSuite() {
    delete tok_;
    tok_ = nullptr;
  }
  static std::vector<int32_t> encode(std::string_view text, bool parse_special) {
    EncodeOptions o;
    o.add_bos = false;
    o.parse_special = parse_special;
    auto ids = tok_->encode(text, o);
    EXPECT_TRUE(ids.ok()) << ids.error().message();
    return ids.ok() ? *ids : std::vector<int32_t>{};
  }
  static Tokenizer* tok_;
};
Tokenizer* DeepSeekLlm::tok_ = nullptr;

TEST_F(DeepSeekLlm, Attributes) {
  EXPECT_EQ(tok_->n_vocab(), 102400);
  EXPECT_EQ(tok_->model(), "gpt2");
  EXPECT_EQ(tok_->bos(), 100000);
  EXPECT_EQ(tok_->eos(), 100001);
  EXPECT_TRUE(tok_->is_control(100000));
  EXPECT_EQ(tok_->token_type(100014), TokenType::kUserDefined);
  EXPECT_EQ(tok_->token_text(100000), "<｜begin▁of▁sentence｜>");
  EXPECT_EQ(tok_->find_token("<｜end▁of▁sentence｜>"), 100001);
  EXPECT_EQ(tok_->find_token("no such token at all"), std::nullopt);
  EXPECT_TRUE(tok_->is_eog(100001));
  EXPECT_FALSE(tok_->is_eog(100000));
  EXPECT_FALSE(tok_->is_eog(17464));
}

TEST_F(DeepSeekLlm, ControlTokensOnlyWhenAllowed) {
  const std::string text = "<｜begin▁of▁sentence｜>Hello<｜end▁of▁sentence｜>";
  const auto special = encode(text, true);
  EXPECT_EQ(special, (std::vector<int32_t>{100000, 17464, 100001}));

  // As plain text, the spelling is tokenized like any other and no control id appears.
  const auto plain = encode(text, false);
  EXPECT_GT(plain.size(), 3u);
  for (int32_t id : plain) EXPECT_FALSE(tok_->is_control(id)) << id;
  EXPECT_EQ(tok_->decode(plain), text);

  // Decoding renders control tokens only when asked to.
  EXPECT_EQ(tok_->decode(special), "Hello");
  EXPECT_EQ(tok_->decode(special, DecodeOptions{.special = true}), text);
}

TEST_F(DeepSeekLlm, UserDefinedTokensAlwaysAndTextAroundIsTokenizedApart) {
  // [PAD100015] and [PAD100016] are user-defined: recognised even without parse_special.
  EXPECT_EQ(encode("[PAD100015]", false), (std::vector<int32_t>{100015}));
  const auto ids = encode(" Hello[PAD100016] Hello", false);
  EXPECT_EQ(ids, (std::vector<int32_t>{37727, 100016, 37727}));
}

TEST_F(DeepSeekLlm, InvalidUtf8IsAnErrorWithTheOffset) {
  struct Bad {
    std::string text;
    size_t offset;
  };
  const std::vector<Bad> cases = {
      {"abc\xFF"
       "def",
       3},                      // a byte that never occurs in UTF-8
      {"ok \xC3", 3},           // truncated at the end
      {"x\xC0\x80", 1},         // overlong NUL
      {"ab\xED\xA0\x80", 2},    // a UTF-16 surrogate
      {"\xF4\x90\x80\x80", 0},  // above U+10FFFF
      {"é\x80", 2},             // a stray continuation byte
  };
  for (const Bad& b : cases) {
    auto ids = tok_->encode(b.text);
    ASSERT_FALSE(ids.ok()) << b.offset;
    EXPECT_NE(ids.error().message().find("invalid UTF-8 at byte offset " + std::to_string(b.offset)),
              std::string::npos)
        << ids.error().message();
  }
}

TEST_F(DeepSeekLlm, EmptyText) {
  EXPECT_TRUE(encode("", false).empty());
  auto ids = tok_->encode("");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<int32_t>{100000}));
}

TEST_F(DeepSeekLlm, ConcurrentEncodesAgree) {
  const std::string text = "Concurrent 编码 of the same text, 12345 times 🚀\n\n  again.";
  const auto expected = encode(text, false);
  std::vector<std::vector<int32_t>> results(4);
  std::vector<std::thread> threads;
  for (auto& r : results) {
    threads.emplace_back([&r, &text] {
      for (int i = 0; i < 50; ++i) r = encode(text, false);
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) EXPECT_EQ(r, expected);
}

}  // namespace
}  // namespace onecard::text
