// The synthetic models' chat template and vocabulary with tools: a conversation with a tool list, a tool call
// and its result renders in DeepSeek's layout and tokenizes with every marker as one control token.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gguf/file.h"
#include "gguf/writer.h"
#include "synth/metadata.h"
#include "synth/spec.h"
#include "synth/vocab.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "text/tool_calls.h"

namespace onecard::synth {
namespace {

using nlohmann::ordered_json;

// The metadata of a generated tiny model, as a tensor-less GGUF.
struct SynthFile {
  std::vector<uint8_t> bytes;
  Result<gguf::File> file = Error("unset");
};

void make_file(SynthFile& f) {
  const auto spec = make_spec("tiny");
  ASSERT_TRUE(spec.ok()) << spec.error().message();
  const auto vocab = build_vocab(spec->n_vocab);
  ASSERT_TRUE(vocab.ok()) << vocab.error().message();
  gguf::Writer w;
  for (const auto& [k, v] : build_metadata(spec.value(), vocab.value())) w.set(k, v);
  f.bytes = w.header_bytes();
  f.file = gguf::File::parse(f.bytes, "tiny.gguf");
  ASSERT_TRUE(f.file.ok()) << f.file.error().message();
}

const ordered_json& tools() {
  static const ordered_json t = ordered_json::parse(R"([{"type": "function", "function": {
      "name": "get_weather", "description": "The weather in a city.",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])");
  return t;
}

const ordered_json& conversation() {
  static const ordered_json m = ordered_json::parse(R"([
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": "Weather in Paris and Oslo?"},
      {"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
        {"id": "call_2", "type": "function",
         "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "21 C"},
      {"role": "tool", "tool_call_id": "call_2", "content": "9 C"},
      {"role": "assistant", "content": "Paris is warmer."},
      {"role": "user", "content": "Thanks!"}])");
  return m;
}

TEST(SynthChatTemplate, RendersToolsCallsAndResults) {
  SynthFile f;
  ASSERT_NO_FATAL_FAILURE(make_file(f));
  const auto tmpl = text::ChatTemplate::from_gguf(f.file.value());
  ASSERT_TRUE(tmpl.ok()) << tmpl.error().message();
  EXPECT_EQ(text::detect_tool_call_format(tmpl->source()), text::ToolCallFormat::kV3);

  const auto prompt = tmpl->apply(conversation(), true, {{"tools", tools()}});
  ASSERT_TRUE(prompt.ok()) << prompt.error().message();
  EXPECT_EQ(
      prompt.value(),
      "<｜begin▁of▁sentence｜>Be brief.\n\n## Tools\n\nYou can call these functions.\n\n### get_weather\n"
      "The weather in a city.\nParameters: {\"type\": \"object\", \"properties\": {\"city\": {\"type\": "
      "\"string\"}}, \"required\": [\"city\"]}"
      "<｜User｜>Weather in Paris and Oslo?"
      "<｜Assistant｜><｜tool▁calls▁begin｜>"
      "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```"
      "<｜tool▁call▁end｜>\n"
      "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Oslo\"}\n```"
      "<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>"
      "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>21 C<｜tool▁output▁end｜>\n"
      "<｜tool▁output▁begin｜>9 C<｜tool▁output▁end｜><｜tool▁outputs▁end｜>"
      "Paris is warmer.<｜end▁of▁sentence｜>"
      "<｜User｜>Thanks!<｜Assistant｜>");

  // The markers come in this order, each where the layout puts it.
  const std::vector<std::string> order = {"<｜User｜>",
                                          "<｜Assistant｜>",
                                          "<｜tool▁calls▁begin｜>",
                                          "<｜tool▁call▁begin｜>",
                                          "<｜tool▁sep｜>",
                                          "<｜tool▁call▁end｜>",
                                          "<｜tool▁call▁begin｜>",
                                          "<｜tool▁sep｜>",
                                          "<｜tool▁call▁end｜>",
                                          "<｜tool▁calls▁end｜>",
                                          "<｜end▁of▁sentence｜>",
                                          "<｜tool▁outputs▁begin｜>",
                                          "<｜tool▁output▁begin｜>",
                                          "<｜tool▁output▁end｜>",
                                          "<｜tool▁output▁begin｜>",
                                          "<｜tool▁output▁end｜>",
                                          "<｜tool▁outputs▁end｜>",
                                          "<｜end▁of▁sentence｜>",
                                          "<｜User｜>",
                                          "<｜Assistant｜>"};
  size_t pos = 0;
  for (const std::string& m : order) {
    const size_t at = prompt->find(m, pos);
    ASSERT_NE(at, std::string::npos) << m << " after byte " << pos;
    pos = at + m.size();
  }

  // With control tokens allowed, as a server encodes rendered prompts, every marker is one token (and the
  // template has written BOS already).
  const auto tok = text::Tokenizer::from_gguf(f.file.value());
  ASSERT_TRUE(tok.ok()) << tok.error().message();
  text::EncodeOptions opts;
  opts.parse_special = true;
  opts.add_bos = false;
  const auto ids = (*tok)->encode(prompt.value(), opts);
  ASSERT_TRUE(ids.ok()) << ids.error().message();
  EXPECT_EQ(ids->front(), (*tok)->bos());
  for (const char* marker : {"<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>", "<｜tool▁call▁begin｜>",
                             "<｜tool▁call▁end｜>", "<｜tool▁sep｜>", "<｜tool▁outputs▁begin｜>",
                             "<｜tool▁outputs▁end｜>", "<｜tool▁output▁begin｜>", "<｜tool▁output▁end｜>"}) {
    const auto id = (*tok)->find_token(marker);
    ASSERT_TRUE(id.has_value()) << marker;
    EXPECT_TRUE((*tok)->is_control(*id)) << marker;
    size_t expected = 0;
    for (size_t at = prompt->find(marker); at != std::string::npos; at = prompt->find(marker, at + 1)) {
      ++expected;
    }
    EXPECT_EQ(static_cast<size_t>(std::count(ids->begin(), ids->end(), *id)), expected) << marker;
  }
  text::DecodeOptions dec;
  dec.special = true;
  EXPECT_EQ((*tok)->decode(ids.value(), dec), prompt.value());

  // What the template writes for a call is what the parser reads back.
  const size_t begin = prompt->find("<｜tool▁calls▁begin｜>");
  const size_t end = prompt->find("<｜end▁of▁sentence｜>", begin);
  text::ToolCallParser parser(text::ToolCallFormat::kV3, [](int n) { return "id" + std::to_string(n); });
  auto d = parser.feed(prompt->substr(begin, end - begin));
  d = parser.finish();
  ASSERT_EQ(parser.calls().size(), 2u);
  EXPECT_EQ(parser.calls()[0].name, "get_weather");
  EXPECT_EQ(parser.calls()[0].arguments, "{\"city\": \"Paris\"}");
  EXPECT_EQ(parser.calls()[1].arguments, "{\"city\": \"Oslo\"}");
}

TEST(SynthChatTemplate, WithoutToolsTheLayoutIsUnchanged) {
  SynthFile f;
  ASSERT_NO_FATAL_FAILURE(make_file(f));
  const auto tmpl = text::ChatTemplate::from_gguf(f.file.value());
  ASSERT_TRUE(tmpl.ok()) << tmpl.error().message();
  const auto messages = ordered_json::parse(R"([{"role": "system", "content": "S"},
      {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
      {"role": "user", "content": "Bye"}])");
  const auto p = tmpl->apply(messages, true);
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(p.value(),
            "<｜begin▁of▁sentence｜>S<｜User｜>Hi<｜Assistant｜>Hello<｜end▁of▁sentence｜><｜User｜>Bye<"
            "｜Assistant｜>");
  const auto q = tmpl->apply(messages, false);
  ASSERT_TRUE(q.ok()) << q.error().message();
  EXPECT_EQ(q.value(),
            "<｜begin▁of▁sentence｜>S<｜User｜>Hi<｜Assistant｜>Hello<｜end▁of▁sentence｜><｜User｜>Bye");
}

// A conversation that ends with tool results leaves the assistant to go on after them.
TEST(SynthChatTemplate, EndingWithToolResults) {
  SynthFile f;
  ASSERT_NO_FATAL_FAILURE(make_file(f));
  const auto tmpl = text::ChatTemplate::from_gguf(f.file.value());
  ASSERT_TRUE(tmpl.ok()) << tmpl.error().message();
  ordered_json messages = conversation();
  messages.erase(messages.begin() + 5, messages.end());
  const auto p = tmpl->apply(messages, true, {{"tools", tools()}});
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_TRUE(p->ends_with("<｜tool▁output▁begin｜>9 C<｜tool▁output▁end｜><｜tool▁outputs▁end｜>"))
      << p.value();
}

}  // namespace
}  // namespace onecard::synth
