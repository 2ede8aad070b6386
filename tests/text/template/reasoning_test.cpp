// ReasoningSplitter: DeepSeek-R1 style <think> handling over streamed pieces.
#include <gtest/gtest.h>

#include "text/reasoning.h"

namespace onecard::text {
namespace {

// Feeds `pieces` and returns everything attributed, finish() included.
ReasoningDelta run(ReasoningSplitter& s, const std::vector<std::string>& pieces) {
  ReasoningDelta all;
  for (const std::string& p : pieces) {
    ReasoningDelta d = s.feed(p);
    all.reasoning += d.reasoning;
    all.content += d.content;
  }
  ReasoningDelta d = s.finish();
  all.reasoning += d.reasoning;
  all.content += d.content;
  return all;
}

TEST(Reasoning, PromptOpensReasoning) {
  EXPECT_TRUE(ReasoningSplitter::prompt_opens_reasoning("<｜User｜>hi<｜Assistant｜><think>\n"));
  EXPECT_TRUE(ReasoningSplitter::prompt_opens_reasoning("...<｜Assistant｜><think>"));
  EXPECT_FALSE(ReasoningSplitter::prompt_opens_reasoning("...<｜Assistant｜><think></think>"));
  EXPECT_FALSE(ReasoningSplitter::prompt_opens_reasoning("<｜User｜>hi<｜Assistant｜>"));
  EXPECT_FALSE(ReasoningSplitter::prompt_opens_reasoning("<think>a</think>b<｜Assistant｜>"));
}

TEST(Reasoning, StartsInsideThinkBlock) {
  ReasoningSplitter s(true);
  EXPECT_TRUE(s.in_reasoning());
  auto r = run(s, {"\nFirst, ", "add the numbers.\n", "</think>", "\n\n", "The answer is 4."});
  EXPECT_EQ(r.reasoning, "First, add the numbers.");
  EXPECT_EQ(r.content, "The answer is 4.");
  EXPECT_FALSE(s.in_reasoning());
}

TEST(Reasoning, ModelOpensThinkItself) {
  ReasoningSplitter s(false);
  auto r = run(s, {"<think>", "\nhmm", "</think>", "answer"});
  EXPECT_EQ(r.reasoning, "hmm");
  EXPECT_EQ(r.content, "answer");
}

TEST(Reasoning, TagsSplitAcrossPieces) {
  ReasoningSplitter s(false);
  auto r = run(s, {"  <th", "ink", ">reason", "ing </th", "in", "k>\n", "ans", "wer </think> stays"});
  EXPECT_EQ(r.reasoning, "reasoning");
  EXPECT_EQ(r.content, "answer </think> stays");
}

TEST(Reasoning, OneCharacterAtATime) {
  const std::string text = "<think>\nstep 1 < step 2 </thinking? no\n</think>\n\nfinal <think> text";
  ReasoningSplitter s(false);
  std::vector<std::string> pieces;
  for (char c : text) pieces.emplace_back(1, c);
  auto r = run(s, pieces);
  EXPECT_EQ(r.reasoning, "step 1 < step 2 </thinking? no");
  EXPECT_EQ(r.content, "final <think> text");
}

TEST(Reasoning, HoldsBackOnlyWhatMayBeATag) {
  ReasoningSplitter s(true);
  ReasoningDelta d = s.feed("thinking </thi");
  EXPECT_EQ(d.reasoning, "thinking");  // " </thi" may be the closing tag
  d = s.feed("s is not it");
  EXPECT_EQ(d.reasoning, " </this is not it");
  EXPECT_TRUE(s.in_reasoning());
}

TEST(Reasoning, NoThinkBlockAtAll) {
  ReasoningSplitter s(false);
  auto r = run(s, {"Hello", " <think> is just text here"});
  EXPECT_EQ(r.reasoning, "");
  EXPECT_EQ(r.content, "Hello <think> is just text here");
}

TEST(Reasoning, PartialOpenTagThatIsNotATag) {
  ReasoningSplitter s(false);
  ReasoningDelta d = s.feed("<thi");
  EXPECT_TRUE(d.empty());
  d = s.feed("s is HTML");
  EXPECT_EQ(d.content, "<this is HTML");
}

TEST(Reasoning, GenerationEndsInsideReasoning) {
  ReasoningSplitter s(true);
  auto r = run(s, {"still thinking </th"});
  EXPECT_EQ(r.reasoning, "still thinking </th");
  EXPECT_EQ(r.content, "");
}

TEST(Reasoning, EmptyReasoning) {
  ReasoningSplitter s(true);
  auto r = run(s, {"</think>", "Direct answer."});
  EXPECT_EQ(r.reasoning, "");
  EXPECT_EQ(r.content, "Direct answer.");
}

TEST(Reasoning, CustomTags) {
  ReasoningSplitter s(true, "<reason>", "</reason>");
  auto r = run(s, {"a</rea", "son>b"});
  EXPECT_EQ(r.reasoning, "a");
  EXPECT_EQ(r.content, "b");
}

}  // namespace
}  // namespace onecard::text
