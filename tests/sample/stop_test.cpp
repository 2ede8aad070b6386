#include "sample/stop.h"

#include <gtest/gtest.h>

namespace onecard::sample {
namespace {

TEST(StopMatcher, StopsAcrossPieces) {
  StopMatcher m({"<|end|>", "\n\n"});
  std::string out;
  for (const char* piece : {"Hello", " wor", "ld<", "|en", "d|>", " ignored"}) out += m.feed(piece);
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(out + m.flush(), "Hello world");
}

TEST(StopMatcher, HeldBackPrefixIsReleasedWhenItDiverges) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.feed("abc ST"), "abc ");
  EXPECT_EQ(m.feed("OP? no: STOR"), "");  // "STOP" completes inside this piece
  EXPECT_TRUE(m.stopped());

  StopMatcher n({"STOP"});
  EXPECT_EQ(n.feed("abc ST"), "abc ");
  EXPECT_EQ(n.feed("AR"), "STAR");
  EXPECT_EQ(n.feed("S"), "");
  EXPECT_EQ(n.flush(), "S");
  EXPECT_FALSE(n.stopped());
}

TEST(StopMatcher, EarliestStopWinsAndNoStopsPassEverything) {
  StopMatcher m({"cd", "b"});
  EXPECT_EQ(m.feed("abcd"), "a");
  StopMatcher none({});
  EXPECT_EQ(none.feed("anything"), "anything");
  EXPECT_EQ(none.flush(), "");
}

TEST(StopMatcher, MultiByteTextIsNotSplit) {
  StopMatcher m({"ÿ"});       // two bytes: c3 bf
  const std::string s = "é";  // c3 a9 shares the lead byte
  EXPECT_EQ(m.feed(s.substr(0, 1)), "");
  EXPECT_EQ(m.feed(s.substr(1)), "é");
}

}  // namespace
}  // namespace onecard::sample
