#include "serve/chat_page.h"

#include <string>

#include <gtest/gtest.h>

namespace onecard::serve {
namespace {

TEST(ChatPage, IsACompleteHtmlDocument) {
  const std::string_view page = chat_page_html();
  ASSERT_FALSE(page.empty());
  EXPECT_TRUE(page.starts_with("<!DOCTYPE html>"));
  EXPECT_NE(page.find("</html>"), std::string_view::npos);
  EXPECT_EQ(page.find('\0'), std::string_view::npos);
}

TEST(ChatPage, TalksToTheServerItCameFrom) {
  const std::string_view page = chat_page_html();
  EXPECT_NE(page.find("/v1/chat/completions"), std::string_view::npos);
  EXPECT_NE(page.find("/v1/models"), std::string_view::npos);
  EXPECT_NE(page.find("[DONE]"), std::string_view::npos);
  EXPECT_NE(page.find("reasoning_content"), std::string_view::npos);
  EXPECT_NE(page.find("AbortController"), std::string_view::npos);
  // No CDN, no external fetches: the page must work on a machine without internet access.
  EXPECT_EQ(page.find("http://"), std::string_view::npos);
  EXPECT_EQ(page.find("https://"), std::string_view::npos);
}

}  // namespace
}  // namespace onecard::serve
