// ChatTemplate: reading the template and special tokens from GGUF metadata, and rendering messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/test_paths.h"
#include "gguf/file.h"
#include "gguf/writer.h"
#include "test_files.h"
#include "text/chat_template.h"

namespace onecard::text {
namespace {

using ::testing::HasSubstr;

// A GGUF file holding only metadata: the header bytes of a writer with no tensors.
struct MetadataFile {
  std::vector<uint8_t> bytes;
  Result<gguf::File> file = Error("unset");
};

void make_file(MetadataFile& m, const std::vector<std::pair<std::string, gguf::MetaValue>>& kvs) {
  gguf::Writer w;
  w.set("general.architecture", gguf::MetaValue::string("deepseek2"));
  for (const auto& [k, v] : kvs) w.set(k, v);
  m.bytes = w.header_bytes();
  m.file = gguf::File::parse(m.bytes, "model.gguf");
  ASSERT_TRUE(m.file.ok()) << m.file.error().message();
}

TEST(ChatTemplate, FromGgufReadsTemplateAndSpecialTokens) {
  const std::string source =
      test::read_file(onecard::test::golden_dir() + "/templates/llama-cpp-deepseek-r1.jinja");
  if (source.empty()) GTEST_SKIP() << "golden templates missing";
  MetadataFile m;
  make_file(m, {{"tokenizer.chat_template", gguf::MetaValue::string(source)},
                {"tokenizer.ggml.tokens",
                 gguf::MetaValue::strings({"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "a"})},
                {"tokenizer.ggml.bos_token_id", gguf::MetaValue::u32(0)},
                {"tokenizer.ggml.eos_token_id", gguf::MetaValue::u32(1)}});
  auto t = ChatTemplate::from_gguf(*m.file);
  ASSERT_TRUE(t.ok()) << t.error().message();
  EXPECT_EQ(t->bos_token(), "<｜begin▁of▁sentence｜>");
  EXPECT_EQ(t->eos_token(), "<｜end▁of▁sentence｜>");
  auto out = t->apply({{"user", "Hi", std::nullopt}}, true);
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(*out, "<｜begin▁of▁sentence｜><｜User｜>Hi<｜end▁of▁sentence｜><｜Assistant｜><think>\n");
}

TEST(ChatTemplate, MissingTemplateIsAnErrorNamingTheKey) {
  MetadataFile m;
  make_file(m, {});
  auto t = ChatTemplate::from_gguf(*m.file);
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.error().message(), HasSubstr("model.gguf"));
  EXPECT_THAT(t.error().message(), HasSubstr("tokenizer.chat_template"));
}

TEST(ChatTemplate, BadTemplateInFileNamesFileConstructAndLine) {
  MetadataFile m;
  make_file(
      m, {{"tokenizer.chat_template", gguf::MetaValue::string("{% for m in messages %}\n{{ m | nope }}")}});
  auto t = ChatTemplate::from_gguf(*m.file);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message(), "model.gguf: chat template: line 2, column 8: unknown filter 'nope'");
}

TEST(ChatTemplate, EosIdOutsideTheTokenListIsAnError) {
  MetadataFile m;
  make_file(m, {{"tokenizer.chat_template", gguf::MetaValue::string("x")},
                {"tokenizer.ggml.tokens", gguf::MetaValue::strings({"a"})},
                {"tokenizer.ggml.eos_token_id", gguf::MetaValue::u32(7)}});
  auto t = ChatTemplate::from_gguf(*m.file);
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.error().message(), HasSubstr("tokenizer.ggml.eos_token_id = 7 is outside the token list"));
}

TEST(ChatTemplate, PassesReasoningContentAndExtraVariables) {
  auto t = ChatTemplate::from_string(
      "{% for m in messages %}[{{ m.role }}:{{ m.content }}|{{ m.reasoning_content }}]{% endfor %}"
      "{{ enable_thinking }}{{ tools is none }}{{ add_generation_prompt }}",
      "<s>", "</s>");
  ASSERT_TRUE(t.ok()) << t.error().message();
  auto out = t->apply({{"user", "q", std::nullopt}, {"assistant", "a", std::string("why")}}, false,
                      {{"enable_thinking", true}});
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(*out, "[user:q|][assistant:a|why]TrueTrueFalse");
}

TEST(ChatTemplate, RenderErrorsArePrefixed) {
  auto t = ChatTemplate::from_string("{{ raise_exception('System role not supported') }}");
  ASSERT_TRUE(t.ok());
  auto out = t->apply(nlohmann::ordered_json::array(), false);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().message(), "chat template: line 1, column 4: System role not supported");
  EXPECT_FALSE(t->apply(nlohmann::ordered_json::object(), false).ok());
}

}  // namespace
}  // namespace onecard::text
