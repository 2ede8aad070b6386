// The tokenizer metadata of a converted GGUF against tokenizer.json and tokenizer_config.json, field by
// field: every token's text and type, the merges in order, BOS/EOS, the pre-tokenizer, the chat template; and
// text round-trips through the tokenizer built from the GGUF.
#include <fstream>
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "convert/hf_tokenizer.h"
#include "converted.h"
#include "gguf/file.h"
#include "text/tokenizer.h"

namespace onecard::convert {
namespace {

using json = nlohmann::json;
using test_support::converted;
using test_support::hf_dir;

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

class ConvertedTokenizer : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto f = gguf::File::open(converted(GetParam(), "bf16", model::MlaLayout::kCombined));
    ASSERT_TRUE(f.ok()) << f.error().message();
    file_ = std::make_unique<gguf::File>(std::move(f).value());
    tok_ = read_json(hf_dir(GetParam()) + "/tokenizer.json");
    cfg_ = read_json(hf_dir(GetParam()) + "/tokenizer_config.json");
  }
  std::vector<std::string> strings(const char* key) const {
    std::vector<std::string> v;
    for (std::string_view s : file_->find(key)->strings()) v.emplace_back(s);
    return v;
  }
  std::unique_ptr<gguf::File> file_;
  json tok_, cfg_;
};

TEST_P(ConvertedTokenizer, VocabularyAndTypesMatchTokenizerJson) {
  const std::vector<std::string> tokens = strings("tokenizer.ggml.tokens");
  auto types = file_->find("tokenizer.ggml.token_type")->to_vector<int32_t>();
  ASSERT_TRUE(types.ok());
  std::map<size_t, std::pair<std::string, int32_t>> want;
  for (const auto& [text, id] : tok_["model"]["vocab"].items()) want[id.get<size_t>()] = {text, 1};
  for (const json& a : tok_["added_tokens"])
    want[a["id"].get<size_t>()] = {a["content"].get<std::string>(), a["special"].get<bool>() ? 3 : 4};
  ASSERT_EQ(tokens.size(), want.size());
  ASSERT_EQ(types->size(), want.size());
  for (const auto& [id, tt] : want) {
    EXPECT_EQ(tokens[id], tt.first) << "token " << id;
    EXPECT_EQ(types.value()[id], tt.second) << "token " << id;
  }
}

TEST_P(ConvertedTokenizer, MergesMatchTokenizerJsonInOrder) {
  std::vector<std::string> want;
  for (const json& m : tok_["model"]["merges"])
    want.push_back(m.is_string() ? m.get<std::string>()
                                 : m[0].get<std::string>() + " " + m[1].get<std::string>());
  EXPECT_EQ(strings("tokenizer.ggml.merges"), want);
}

TEST_P(ConvertedTokenizer, SpecialTokensTemplateAndPreTokenizer) {
  const auto id_of = [&](const std::string& text) {
    for (const json& a : tok_["added_tokens"])
      if (a["content"] == text) return a["id"].get<uint32_t>();
    return UINT32_MAX;
  };
  EXPECT_EQ(file_->get<uint32_t>("tokenizer.ggml.bos_token_id").value(), id_of(cfg_["bos_token"]));
  EXPECT_EQ(file_->get<uint32_t>("tokenizer.ggml.eos_token_id").value(), id_of(cfg_["eos_token"]));
  EXPECT_EQ(file_->get<bool>("tokenizer.ggml.add_bos_token").value(), cfg_["add_bos_token"].get<bool>());
  EXPECT_EQ(file_->get<bool>("tokenizer.ggml.add_eos_token").value(), cfg_["add_eos_token"].get<bool>());
  EXPECT_EQ(file_->get<std::string>("tokenizer.ggml.model").value(), "gpt2");
  EXPECT_EQ(file_->get<std::string>("tokenizer.ggml.pre").value(), "deepseek-v3");
  EXPECT_EQ(file_->get<std::string>("tokenizer.chat_template").value(),
            cfg_["chat_template"].get<std::string>());
}

TEST_P(ConvertedTokenizer, TextRoundTrips) {
  auto t = text::Tokenizer::from_gguf(*file_);
  ASSERT_TRUE(t.ok()) << t.error().message();
  for (const std::string s : {"Hello world, the 12345 thing!", " there\n\nhe said: \"re-er\"",
                              "中文 and ひらがな", "<｜User｜>hi<｜Assistant｜>"}) {
    text::EncodeOptions eo;
    eo.add_bos = false;
    eo.parse_special = true;
    auto ids = t.value()->encode(s, eo);
    ASSERT_TRUE(ids.ok()) << ids.error().message();
    text::DecodeOptions d;
    d.special = true;
    EXPECT_EQ(t.value()->decode(ids.value(), d), s);
  }
  // The special tokens are single tokens.
  auto ids = t.value()->encode("<｜User｜>", {.add_bos = false, .add_eos = false, .parse_special = true});
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids.value(), (std::vector<int32_t>{510}));
}

INSTANTIATE_TEST_SUITE_P(Golden, ConvertedTokenizer, testing::Values("tiny-v3-bf16", "tiny-v3-fp8"),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           for (char& ch : name) ch = ch == '-' ? '_' : ch;
                           return name;
                         });

TEST(PreTokenizer, RecognisesGpt2AndRefusesUnknownRegexes) {
  EXPECT_EQ(recognise_pre_tokenizer({}, true).value(), "gpt2");
  auto r = recognise_pre_tokenizer({"\\p{L}+"}, false);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), testing::HasSubstr("not recognised"));
  EXPECT_THAT(r.error().message(), testing::HasSubstr("\\\\p{L}+"));
}

}  // namespace
}  // namespace onecard::convert
