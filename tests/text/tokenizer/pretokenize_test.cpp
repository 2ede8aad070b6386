// The pre-tokenizers split as the published tokenizers do. Expected words come from running the same regular
// expressions (tokenizer.json of DeepSeek-V3, GPT-2's pattern) through Python's `regex` module.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "text/pretokenize.h"

namespace onecard::text {
namespace {

std::vector<std::string> split(std::string_view name, std::string_view text) {
  auto pre = PreTokenizer::create(name);
  EXPECT_TRUE(pre.ok()) << pre.error().message();
  if (!pre.ok()) return {};
  std::vector<std::string_view> words;
  auto st = pre->split(text, words);
  EXPECT_TRUE(st.ok()) << st.error().message();
  return {words.begin(), words.end()};
}

using Words = std::vector<std::string>;

TEST(PreTokenizer, DeepSeekV3) {
  EXPECT_EQ(split("deepseek-v3", "Hello, world! It's 2024-12-31: 1234567 items."),
            (Words{"Hello", ",", " world", "!", " It", "'s",  " ",   "202", "4",      "-",
                   "12",    "-", "31",     ":", " ",   "123", "456", "7",   " items", "."}));
  EXPECT_EQ(split("deepseek-v3", "  leading\n\n\ttabs  and   spaces \n"),
            (Words{" ", " leading", "\n\n", "\ttabs", " ", " and", "  ", " spaces", " \n"}));
  EXPECT_EQ(split("deepseek-v3", "日本語のテキストとカタカナ、漢字123"),
            (Words{"日本語のテキストとカタカナ", "、", "漢字", "123"}));
  EXPECT_EQ(split("deepseek-v3", "if (x==1) {return y;}\r\n// done"),
            (Words{"if", " (", "x", "==", "1", ")", " {", "return", " y", ";}\r\n", "//", " done"}));
  EXPECT_EQ(split("deepseek-v3", "über façade — naïve café"),
            (Words{"über", " façade", " —", " naïve", " café"}));
  EXPECT_EQ(split("deepseek-v3", "😀 emoji👍🏽 and $100.50"),
            (Words{"😀", " emoji", "👍🏽", " and", " $", "100", ".", "50"}));
  EXPECT_EQ(split("deepseek-v3", "a.b,c;d:e!f?g'h\"i"),
            (Words{"a", ".b", ",c", ";d", ":e", "!f", "?g", "'h", "\"i"}));
  EXPECT_EQ(split("deepseek-v3", "   "), (Words{"   "}));
  EXPECT_EQ(split("deepseek-v3", "x\n\n\n  y"), (Words{"x", "\n\n\n", " ", " y"}));
}

TEST(PreTokenizer, Gpt2IsTheDefault) {
  const Words expected{"Hello", " world", "'s", " ", " test", "\n\n ", " x", " 123", "abc", "!!"};
  EXPECT_EQ(split("gpt2", "Hello world's  test\n\n  x 123abc!!"), expected);
  EXPECT_EQ(split("default", "Hello world's  test\n\n  x 123abc!!"), expected);
  EXPECT_EQ(split("", "I'll   go"), (Words{"I", "'ll", "  ", " go"}));
}

TEST(PreTokenizer, DeepSeekCoder) {
  EXPECT_EQ(
      split("deepseek-coder", "def f(x):\n    return x+1  # 42"),
      (Words{"def", " f", "(", "x", "):", "\n", "   ", " return", " x", "+", "1", " ", " #", " ", "4", "2"}));
  EXPECT_EQ(split("deepseek-coder", "中文 text 한국어"), (Words{"中文", " text", " ", "한국어"}));
}

TEST(PreTokenizer, WordsCoverTheText) {
  const std::string text = "Mixed: ελληνικά, русский, 中文, emoji 🚀🚀, numbers 3.14159 and\ttabs\r\n";
  for (const char* name : {"deepseek-v3", "deepseek-llm", "deepseek-coder", "gpt2"}) {
    std::string joined;
    for (const auto& w : split(name, text)) {
      EXPECT_FALSE(w.empty()) << name;
      joined += w;
    }
    EXPECT_EQ(joined, text) << name;
  }
  EXPECT_TRUE(split("deepseek-v3", "").empty());
}

TEST(PreTokenizer, UnknownNameIsAnError) {
  auto pre = PreTokenizer::create("no-such-tokenizer");
  ASSERT_FALSE(pre.ok());
  EXPECT_NE(pre.error().message().find("no-such-tokenizer"), std::string::npos);
  EXPECT_NE(pre.error().message().find("tokenizer.ggml.pre"), std::string::npos);
}

}  // namespace
}  // namespace onecard::text
