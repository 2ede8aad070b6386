// Every golden chat template renders every conversation of tests/data/chat/conversations.json exactly as
// Jinja2 does in Hugging Face's environment (expected files written by make_expected.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/test_paths.h"
#include "test_files.h"
#include "text/chat_template.h"

namespace onecard::text {
namespace {

namespace fs = std::filesystem;

struct Case {
  std::string template_stem;
  std::string conversation;
  bool generation_prompt;
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string n = info.param.template_stem + "__" + info.param.conversation + "__gp" +
                  (info.param.generation_prompt ? "1" : "0");
  for (char& c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return n;
}

nlohmann::ordered_json conversations() {
  return nlohmann::ordered_json::parse(
      test::read_file(onecard::test::test_data_dir() + "/chat/conversations.json"));
}

std::vector<std::string> template_stems() {
  std::vector<std::string> stems;
  const fs::path dir = fs::path(onecard::test::golden_dir()) / "templates";
  if (!fs::exists(dir)) return stems;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".jinja") stems.push_back(e.path().stem().string());
  }
  std::sort(stems.begin(), stems.end());
  return stems;
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  const auto convs = conversations();
  for (const std::string& stem : template_stems()) {
    for (const auto& c : convs["conversations"]) {
      for (bool gp : {false, true}) cases.push_back({stem, c["name"].get<std::string>(), gp});
    }
  }
  return cases;
}

class GoldenTemplate : public ::testing::TestWithParam<Case> {};

TEST_P(GoldenTemplate, RendersAsJinja2) {
  const Case& c = GetParam();
  const auto spec = conversations();
  const std::string source =
      test::read_file(onecard::test::golden_dir() + "/templates/" + c.template_stem + ".jinja");
  auto tmpl = ChatTemplate::from_string(source, spec["bos_token"], spec["eos_token"]);
  ASSERT_TRUE(tmpl.ok()) << tmpl.error().message();

  nlohmann::ordered_json conv;
  for (const auto& x : spec["conversations"]) {
    if (x["name"] == c.conversation) conv = x;
  }
  const nlohmann::ordered_json extra =
      conv.contains("extra") ? conv["extra"] : nlohmann::ordered_json(nullptr);
  auto out = tmpl->apply(conv["messages"], c.generation_prompt, extra);

  const std::string base = onecard::test::test_data_dir() + "/chat/expected/" + c.template_stem + "__" +
                           c.conversation + "__gp" + (c.generation_prompt ? "1" : "0");
  if (fs::exists(base + ".error.txt")) {
    EXPECT_FALSE(out.ok()) << "Jinja2 failed with: " << test::read_file(base + ".error.txt");
    return;
  }
  ASSERT_TRUE(fs::exists(base + ".txt")) << "missing " << base << ".txt: run make_expected.py";
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(*out, test::read_file(base + ".txt"));
}

INSTANTIATE_TEST_SUITE_P(All, GoldenTemplate, ::testing::ValuesIn(all_cases()), case_name);

TEST(GoldenTemplates, AllFourArePresentAndCovered) {
  if (template_stems().empty()) GTEST_SKIP() << "no golden templates in " << onecard::test::golden_dir();
  EXPECT_EQ(template_stems().size(), 4u);
  EXPECT_EQ(all_cases().size(), template_stems().size() * conversations()["conversations"].size() * 2);
}

}  // namespace
}  // namespace onecard::text
