// A prompt of about 100k tokens (~400 KB of mixed text) tokenizes exactly as its parts do, decodes back, and
// takes well under a second in a release build; the bound here is loose enough for sanitizer builds.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/rng.h"
#include "golden_tokenizer.h"
#include "text/tokenizer.h"

namespace onecard::text {
namespace {

// Words of several scripts, numbers, code and whitespace, in a deterministic random order.
std::string make_text(size_t bytes) {
  const std::vector<std::string> words = {"the",      "model",    "tokenizer",      "DeepSeek", "inference",
                                          "Hello,",   "world!",   "12345",          "3.14159",  "über",
                                          "naïve",    "日本語",   "中文文本",       "한국어",   "русский",
                                          "ελληνικά", "🚀",        "😶‍🌫️", "(x+1)*y",  "{return",
                                          "x;}",      "if(a==b)", "'quoted'",       "\"dq\"",   "---",
                                          "...",      "tab\there"};
  const std::vector<std::string> gaps = {" ", " ", " ", " ", "  ", "\n", "\n\n", ", ", ". "};
  Rng rng(7, "large-text");
  std::string text;
  while (text.size() < bytes) {
    text += words[rng.below(static_cast<uint32_t>(words.size()))];
    text += gaps[rng.below(static_cast<uint32_t>(gaps.size()))];
  }
  return text;
}

TEST(LargeText, HundredThousandTokens) {
  const auto tok = testing::load_golden_tokenizer("tokenizer/ggml-vocab-deepseek-llm.gguf");
  ASSERT_NE(tok, nullptr);
  const std::string text = make_text(400 * 1024);
  EncodeOptions o;
  o.add_bos = false;

  const auto t0 = std::chrono::steady_clock::now();
  auto ids = tok->encode(text, o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(ids.ok()) << ids.error().message();
  EXPECT_GT(ids->size(), 80000u);
  EXPECT_LT(seconds, 5.0) << ids->size() << " tokens";
  RecordProperty("tokens", static_cast<int>(ids->size()));
  RecordProperty("milliseconds", static_cast<int>(seconds * 1000));
  EXPECT_EQ(tok->decode(*ids), text);

  // Splitting at a newline boundary ("\n" is always a word of its own for this pre-tokenizer) gives the same
  // ids.
  const size_t cut = text.find('\n', text.size() / 2);
  ASSERT_NE(cut, std::string::npos);
  auto a = tok->encode(std::string_view(text).substr(0, cut), o);
  auto b = tok->encode(std::string_view(text).substr(cut), o);
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<int32_t> joined = *a;
  joined.insert(joined.end(), b->begin(), b->end());
  EXPECT_EQ(joined, *ids);
}

TEST(LargeText, LongWordsMergeInReasonableTime) {
  // One 200 KB "word" (no split point): BPE merging must not be quadratic in its length.
  const auto tok = testing::load_golden_tokenizer("tokenizer/ggml-vocab-deepseek-coder.gguf");
  ASSERT_NE(tok, nullptr);
  std::string word;
  while (word.size() < 200 * 1024) word += "abcdefghijklmnopqrstuvwxyz";
  EncodeOptions o;
  o.add_bos = false;
  const auto t0 = std::chrono::steady_clock::now();
  auto ids = tok->encode(word, o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(ids.ok()) << ids.error().message();
  EXPECT_LT(seconds, 5.0);
  EXPECT_EQ(tok->decode(*ids), word);
}

}  // namespace
}  // namespace onecard::text
