#include "serve/sse_reader.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/rng.h"

namespace onecard::serve {
namespace {

std::vector<std::string> data_of(const std::vector<SseEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.data);
  return out;
}

// Feeds `stream` cut at the given offsets and collects the events.
std::vector<SseEvent> feed_in_pieces(std::string_view stream, const std::vector<size_t>& cuts) {
  SseReader reader;
  std::vector<SseEvent> all;
  size_t pos = 0;
  for (size_t cut : cuts) {
    for (auto& e : reader.feed(stream.substr(pos, cut - pos))) all.push_back(std::move(e));
    pos = cut;
  }
  for (auto& e : reader.feed(stream.substr(pos))) all.push_back(std::move(e));
  return all;
}

constexpr std::string_view kOpenAiStream =
    "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
    ": keep-alive comment\n\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\r\n\r\n"
    "data:{\"usage\":{\"completion_tokens\":2}}\r\r"
    "data: [DONE]\n\n";

const std::vector<std::string> kExpected = {
    "{\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}",
    "{\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}",
    "{\"usage\":{\"completion_tokens\":2}}",
    "[DONE]",
};

TEST(SseReader, ParsesAWholeStream) {
  EXPECT_EQ(data_of(feed_in_pieces(kOpenAiStream, {})), kExpected);
}

TEST(SseReader, SameEventsWhateverTheSplit) {
  // Every single cut point, including between \r and \n, then many random multi-cut splits.
  for (size_t cut = 0; cut <= kOpenAiStream.size(); ++cut) {
    EXPECT_EQ(data_of(feed_in_pieces(kOpenAiStream, {cut})), kExpected) << "cut at " << cut;
  }
  Rng rng(7);
  for (int trial = 0; trial < 500; ++trial) {
    std::vector<size_t> cuts;
    size_t pos = 0;
    while (true) {
      pos += rng.below(6);
      if (pos > kOpenAiStream.size()) break;
      cuts.push_back(pos);
    }
    EXPECT_EQ(data_of(feed_in_pieces(kOpenAiStream, cuts)), kExpected) << "trial " << trial;
  }
}

TEST(SseReader, ByteAtATime) {
  SseReader reader;
  std::vector<SseEvent> all;
  for (char c : kOpenAiStream) {
    for (auto& e : reader.feed(std::string_view(&c, 1))) all.push_back(std::move(e));
  }
  EXPECT_EQ(data_of(all), kExpected);
}

TEST(SseReader, JoinsDataLinesAndReadsEventAndId) {
  SseReader reader;
  const auto events = reader.feed("event: error\nid: 7\ndata: line one\ndata: line two\nretry: 10\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "error");
  EXPECT_EQ(events[0].id, "7");
  EXPECT_EQ(events[0].data, "line one\nline two");
}

TEST(SseReader, OnlyOneSpaceAfterTheColonIsDropped) {
  SseReader reader;
  const auto events = reader.feed("data:  two spaces\n\ndata\n\n");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data, " two spaces");
  EXPECT_EQ(events[1].data, "");  // a bare field name is an empty data line, still an event
}

TEST(SseReader, BlankLinesWithoutDataDispatchNothing) {
  SseReader reader;
  EXPECT_TRUE(reader.feed("\n\n: comment\n\nevent: x\n\n").empty());
}

TEST(SseReader, FinishReturnsAnUnterminatedEvent) {
  SseReader reader;
  EXPECT_TRUE(reader.feed("data: a\ndata: b").empty());
  const auto last = reader.finish();
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->data, "a\nb");
  EXPECT_FALSE(reader.finish().has_value());
}

TEST(SseReader, EncoderRoundTrips) {
  EXPECT_EQ(sse_event("[DONE]"), "data: [DONE]\n\n");
  EXPECT_EQ(sse_event("a\nb"), "data: a\ndata: b\n\n");
  for (std::string_view text : {"", "x", "a\nb", "a\r\nb\n", "{\"k\": \"v\"}"}) {
    SseReader reader;
    const auto events = reader.feed(sse_event(text));
    ASSERT_EQ(events.size(), 1u) << text;
    std::string expected(text);
    if (auto p = expected.find("\r\n"); p != std::string::npos) expected.erase(p, 1);
    EXPECT_EQ(events[0].data, expected);
  }
}

}  // namespace
}  // namespace onecard::serve
