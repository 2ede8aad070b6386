// The vocabularies llama.cpp tests its tokenizers with: every case of the .inp file must encode to exactly
// the ids of the .out file (as llama.cpp's test-tokenizer-0 runs them: no BOS, no special-token parsing), and
// decoding those ids must give the input back.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_paths.h"
#include "golden_tokenizer.h"
#include "text/tokenizer.h"

namespace onecard::text {
namespace {

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Cases are separated by "\n__ggml_vocab_test__\n" (the newline before the marker is not part of the case);
// the output has one line of ids per case.
std::vector<Case> read_cases(const std::string& vocab_path) {
  const std::string inp = read_all(vocab_path + ".inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(inp.substr(pos));
      break;
    }
    texts.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::ifstream out(vocab_path + ".out");
  std::vector<Case> cases;
  size_t i = 0;
  for (std::string line; std::getline(out, line); ++i) {
    Case c;
    c.text = i < texts.size() ? texts[i] : std::string();
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) c.ids.push_back(id);
    cases.push_back(std::move(c));
  }
  EXPECT_EQ(cases.size(), texts.size()) << vocab_path;
  return cases;
}

class GoldenVocab : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenVocab, EncodesEveryCaseExactlyAndDecodesBack) {
  const std::string path = test::golden_dir() + "/tokenizer/ggml-vocab-" + GetParam() + ".gguf";
  const auto tok = testing::load_golden_tokenizer("tokenizer/ggml-vocab-" + GetParam() + ".gguf");
  ASSERT_NE(tok, nullptr);
  const auto cases = read_cases(path);
  ASSERT_EQ(cases.size(), 46u);
  size_t passed = 0;
  for (const Case& c : cases) {
    EncodeOptions plain;
    plain.add_bos = false;
    auto ids = tok->encode(c.text, plain);
    ASSERT_TRUE(ids.ok()) << ids.error().message();
    EXPECT_EQ(*ids, c.ids) << "case: '" << c.text << "'";
    EXPECT_EQ(tok->decode(c.ids), c.text);
    passed += *ids == c.ids;
  }
  EXPECT_EQ(passed, cases.size());
}

TEST_P(GoldenVocab, AddsBosAsTheVocabularySays) {
  const auto tok = testing::load_golden_tokenizer("tokenizer/ggml-vocab-" + GetParam() + ".gguf");
  ASSERT_NE(tok, nullptr);
  ASSERT_TRUE(tok->add_bos());
  auto ids = tok->encode("Hello world");
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(ids->size(), 3u);
  EXPECT_EQ((*ids)[0], tok->bos());
  // BOS renders as nothing unless asked for.
  EXPECT_EQ(tok->decode(*ids), "Hello world");
  EXPECT_EQ(tok->decode(*ids, DecodeOptions{.special = true}), tok->token_text(tok->bos()) + "Hello world");
}

INSTANTIATE_TEST_SUITE_P(Tokenizer, GoldenVocab, ::testing::Values("deepseek-llm", "deepseek-coder"));

}  // namespace
}  // namespace onecard::text
