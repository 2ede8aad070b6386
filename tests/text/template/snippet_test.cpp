// Each construct of the Jinja subset, in small templates (tests/data/chat/snippets.txt), renders as
// Jinja2 renders it, or fails where Jinja2 fails (expected results written by make_expected.py).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/test_paths.h"
#include "test_files.h"
#include "text/jinja/template.h"

namespace onecard::text::jinja {
namespace {

struct Snippet {
  std::string name;
  std::string source;
};

// The same split as make_expected.py: "### name" lines start snippets; the last newline is not part of one.
std::vector<Snippet> read_snippets() {
  const std::string text = test::read_file(onecard::test::test_data_dir() + "/chat/snippets.txt");
  std::vector<Snippet> out;
  size_t pos = text.find("### ");
  while (pos != std::string::npos) {
    const size_t next = text.find("### ", pos + 4);
    const std::string chunk =
        text.substr(pos + 4, next == std::string::npos ? std::string::npos : next - pos - 4);
    const size_t nl = chunk.find('\n');
    Snippet s;
    s.name = chunk.substr(0, nl);
    s.source = nl == std::string::npos ? "" : chunk.substr(nl + 1);
    if (!s.source.empty() && s.source.back() == '\n') s.source.pop_back();
    out.push_back(std::move(s));
    pos = next;
  }
  return out;
}

class SnippetTest : public ::testing::TestWithParam<Snippet> {};

TEST_P(SnippetTest, MatchesJinja2) {
  const Snippet& s = GetParam();
  const auto expected = nlohmann::ordered_json::parse(
      test::read_file(onecard::test::test_data_dir() + "/chat/snippets_expected.json"));
  ASSERT_TRUE(expected.contains(s.name)) << "run make_expected.py";
  const auto& want = expected[s.name];
  const auto context = nlohmann::ordered_json::parse(
      test::read_file(onecard::test::test_data_dir() + "/chat/snippets_context.json"));

  auto t = Template::parse(s.source);
  Result<std::string> out = t.ok() ? t->render(context) : Result<std::string>(t.error());
  if (want.contains("error")) {
    EXPECT_FALSE(out.ok()) << "Jinja2 failed (" << want["error"].get<std::string>()
                           << ") but we rendered: " << (out.ok() ? *out : "");
    return;
  }
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(*out, want["output"].get<std::string>());
}

std::string snippet_name(const ::testing::TestParamInfo<Snippet>& param) {
  return param.param.name;
}

INSTANTIATE_TEST_SUITE_P(All, SnippetTest, ::testing::ValuesIn(read_snippets()), snippet_name);

}  // namespace
}  // namespace onecard::text::jinja
