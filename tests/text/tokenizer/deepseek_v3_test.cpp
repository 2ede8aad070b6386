// The DeepSeek-V3 vocabulary layout (byte-level BPE, pre-tokenizer deepseek-v3) of the golden tiny model,
// whose tokenizer.json is the Hugging Face original: merges apply by rank within words, and text round-trips.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "golden_tokenizer.h"
#include "text/tokenizer.h"

namespace onecard::text {
namespace {

std::unique_ptr<Tokenizer> load_tiny_v3() {
  return testing::load_golden_tokenizer("models/tiny-v3-bf16.gguf");
}

TEST(DeepSeekV3, MergesWithinWords) {
  auto tok = load_tiny_v3();
  ASSERT_NE(tok, nullptr);
  EncodeOptions o;
  o.add_bos = false;
  // "Ġ t", "h e", then "Ġt he" are among the first merges of this vocabulary.
  const auto the = tok->find_token("Ġthe");
  ASSERT_TRUE(the.has_value());
  auto ids = tok->encode(" the the", o);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<int32_t>{*the, *the}));
  // Digits are split into groups of at most three before merging, so no merge crosses "123|4".
  ids = tok->encode("1234", o);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->size(), 4u);
}

TEST(DeepSeekV3, RoundTripsAndSpecialTokens) {
  auto tok = load_tiny_v3();
  ASSERT_NE(tok, nullptr);
  const std::string text = "<｜User｜>Why is the sky blue? 天空 🌌\n\n  Answer:<｜Assistant｜>";
  EncodeOptions o;
  o.parse_special = true;
  auto ids = tok->encode(text, o);
  ASSERT_TRUE(ids.ok()) << ids.error().message();
  ASSERT_GE(ids->size(), 3u);
  EXPECT_EQ((*ids)[0], tok->bos());
  EXPECT_EQ((*ids)[1], tok->find_token("<｜User｜>"));
  EXPECT_EQ(ids->back(), tok->find_token("<｜Assistant｜>"));
  EXPECT_EQ(tok->decode(*ids, DecodeOptions{.special = true}), "<｜begin▁of▁sentence｜>" + text);
  EXPECT_EQ(tok->decode(*ids), "Why is the sky blue? 天空 🌌\n\n  Answer:");
}

}  // namespace
}  // namespace onecard::text
