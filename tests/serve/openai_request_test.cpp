#include "serve/openai_request.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "common/test_paths.h"

namespace onecard::serve {
namespace {

// A valid chat body with `extra` fields added at the top level.
std::string chat_body(const std::string& extra = "") {
  std::string body = R"({"model":"deepseek-r1","messages":[{"role":"user","content":"hi"}])";
  if (!extra.empty()) body += "," + extra;
  return body + "}";
}

std::string completion_body(const std::string& extra = "") {
  std::string body = R"({"model":"deepseek-r1","prompt":"Once upon")";
  if (!extra.empty()) body += "," + extra;
  return body + "}";
}

ChatRequest chat_ok(const std::string& body) {
  auto r = parse_chat_request(body);
  EXPECT_TRUE(r.ok()) << body << "\n  -> " << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : ChatRequest{};
}

CompletionRequest completion_ok(const std::string& body) {
  auto r = parse_completion_request(body);
  EXPECT_TRUE(r.ok()) << body << "\n  -> " << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : CompletionRequest{};
}

template <class T>
void expect_rejected(const ApiResult<T>& r, std::string_view param, std::string_view message_part) {
  ASSERT_FALSE(r.ok()) << "accepted, expected a 400 on " << param;
  EXPECT_EQ(r.error().status, 400);
  EXPECT_EQ(r.error().type, "invalid_request_error");
  EXPECT_EQ(r.error().param, param) << r.error().message;
  EXPECT_NE(r.error().message.find(message_part), std::string::npos)
      << "message: " << r.error().message << "\nexpected to contain: " << message_part;
}

struct Rejected {
  std::string extra;    // fields added to a valid body
  std::string param;    // the param the error names
  std::string message;  // a part of the message
};

TEST(OpenaiChatRequest, MinimalRequestGetsOpenAIDefaults) {
  const ChatRequest r = chat_ok(chat_body());
  EXPECT_EQ(r.options.model, "deepseek-r1");
  EXPECT_EQ(r.messages, json::parse(R"([{"role":"user","content":"hi"}])"));
  EXPECT_EQ(r.options.max_tokens, -1);
  EXPECT_EQ(r.options.sampling.temperature, 1.0f);
  EXPECT_EQ(r.options.sampling.top_p, 1.0f);
  EXPECT_EQ(r.options.sampling.top_k, 0);
  EXPECT_EQ(r.options.sampling.min_p, 0.0f);
  EXPECT_EQ(r.options.sampling.repeat_penalty, 1.0f);
  EXPECT_EQ(r.options.sampling.presence_penalty, 0.0f);
  EXPECT_EQ(r.options.sampling.frequency_penalty, 0.0f);
  EXPECT_TRUE(r.options.sampling.logit_bias.empty());
  EXPECT_FALSE(r.options.seed_from_client);
  EXPECT_TRUE(r.options.stop.empty());
  EXPECT_EQ(r.options.n, 1);
  EXPECT_FALSE(r.options.stream);
  EXPECT_FALSE(r.options.include_usage);
  EXPECT_FALSE(r.options.ignore_eos);
  EXPECT_TRUE(r.tools.is_array() && r.tools.empty());
  EXPECT_EQ(r.tool_choice.mode, ToolChoice::Mode::kAuto);
  EXPECT_TRUE(r.parallel_tool_calls);
  EXPECT_FALSE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 0);
  EXPECT_FALSE(r.reasoning_format.has_value());
  EXPECT_TRUE(r.chat_template_kwargs.is_object() && r.chat_template_kwargs.empty());
}

TEST(OpenaiChatRequest, ModelMayBeAbsent) {
  const ChatRequest r = chat_ok(R"({"messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(r.options.model, "");
}

TEST(OpenaiChatRequest, SamplingFieldsMapOntoSamplingParams) {
  const ChatRequest r =
      chat_ok(chat_body(R"("temperature":0.3,"top_p":0.9,"top_k":50,"min_p":0.05,"presence_penalty":-1.5,)"
                        R"("frequency_penalty":2,"repetition_penalty":1.1,"ignore_eos":true,"user":"u-1")"));
  const sample::SamplingParams& s = r.options.sampling;
  EXPECT_FLOAT_EQ(s.temperature, 0.3f);
  EXPECT_FLOAT_EQ(s.top_p, 0.9f);
  EXPECT_EQ(s.top_k, 50);
  EXPECT_FLOAT_EQ(s.min_p, 0.05f);
  EXPECT_FLOAT_EQ(s.presence_penalty, -1.5f);
  EXPECT_FLOAT_EQ(s.frequency_penalty, 2.0f);
  EXPECT_FLOAT_EQ(s.repeat_penalty, 1.1f);
  EXPECT_TRUE(r.options.ignore_eos);
  EXPECT_EQ(r.options.user, "u-1");
}

TEST(OpenaiChatRequest, BoundsAreInclusiveWhereOpenAIsAre) {
  const ChatRequest lo = chat_ok(chat_body(
      R"("temperature":0,"top_p":1,"min_p":0,"presence_penalty":-2,"frequency_penalty":-2,"top_k":0)"));
  EXPECT_EQ(lo.options.sampling.temperature, 0.0f);
  const ChatRequest hi =
      chat_ok(chat_body(R"("temperature":2,"min_p":1,"presence_penalty":2,"frequency_penalty":2)"));
  EXPECT_EQ(hi.options.sampling.temperature, 2.0f);
  EXPECT_EQ(hi.options.sampling.min_p, 1.0f);
}

TEST(OpenaiChatRequest, MaxTokensForms) {
  EXPECT_EQ(chat_ok(chat_body(R"("max_tokens":100)")).options.max_tokens, 100);
  EXPECT_EQ(chat_ok(chat_body(R"("max_completion_tokens":7)")).options.max_tokens, 7);
  EXPECT_EQ(chat_ok(chat_body(R"("max_tokens":100,"max_completion_tokens":50)")).options.max_tokens, 50);
  EXPECT_EQ(chat_ok(chat_body(R"("max_tokens":null)")).options.max_tokens, -1);
  EXPECT_EQ(chat_ok(chat_body(R"("max_tokens":2147483647)")).options.max_tokens, 2147483647);
  // JavaScript has one number type: 5.0 is an integer there.
  EXPECT_EQ(chat_ok(chat_body(R"("max_tokens":5.0)")).options.max_tokens, 5);
}

TEST(OpenaiChatRequest, NullMeansAbsent) {
  const ChatRequest r = chat_ok(chat_body(
      R"("temperature":null,"top_p":null,"stop":null,"seed":null,"n":null,"stream":null,"tools":null,)"
      R"("tool_choice":null,"logprobs":null,"top_logprobs":null,"logit_bias":null,"stream_options":null,)"
      R"("reasoning_format":null,"chat_template_kwargs":null,"response_format":null,"user":null)"));
  EXPECT_EQ(r.options.sampling.temperature, 1.0f);
  EXPECT_EQ(r.options.n, 1);
  EXPECT_TRUE(r.options.stop.empty());
  EXPECT_FALSE(r.options.seed_from_client);
}

TEST(OpenaiChatRequest, SeedIsTheClientsOrRandomAndChoicesCountUp) {
  const ChatRequest r = chat_ok(chat_body(R"("seed":42,"n":3)"));
  EXPECT_TRUE(r.options.seed_from_client);
  EXPECT_EQ(r.options.sampling.seed, 42u);
  EXPECT_EQ(r.options.n, 3);
  EXPECT_EQ(sampling_for_choice(r.options, 0).seed, 42u);
  EXPECT_EQ(sampling_for_choice(r.options, 2).seed, 44u);
  EXPECT_EQ(sampling_for_choice(r.options, 2).temperature, r.options.sampling.temperature);

  EXPECT_EQ(chat_ok(chat_body(R"("seed":18446744073709551615)")).options.sampling.seed,
            18446744073709551615u);
  EXPECT_EQ(chat_ok(chat_body(R"("seed":-5)")).options.sampling.seed, static_cast<uint64_t>(int64_t{-5}));
  EXPECT_EQ(chat_ok(chat_body(R"("seed":0)")).options.sampling.seed, 0u);

  // No seed, or llama.cpp's -1: random, so that two requests (and the n choices) differ.
  const ChatRequest a = chat_ok(chat_body());
  const ChatRequest b = chat_ok(chat_body());
  const ChatRequest c = chat_ok(chat_body(R"("seed":-1)"));
  EXPECT_FALSE(a.options.seed_from_client);
  EXPECT_FALSE(c.options.seed_from_client);
  EXPECT_NE(a.options.sampling.seed, b.options.sampling.seed);
  EXPECT_NE(a.options.sampling.seed, c.options.sampling.seed);
}

TEST(OpenaiChatRequest, StopForms) {
  EXPECT_EQ(chat_ok(chat_body(R"("stop":"\n\n")")).options.stop, std::vector<std::string>{"\n\n"});
  EXPECT_EQ(chat_ok(chat_body(R"("stop":["a","b"])")).options.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(chat_ok(chat_body(R"("stop":["","a"])")).options.stop, std::vector<std::string>{"a"});
  EXPECT_TRUE(chat_ok(chat_body(R"("stop":"")")).options.stop.empty());
  EXPECT_TRUE(chat_ok(chat_body(R"("stop":[])")).options.stop.empty());
  std::string sixteen = "[";
  for (int i = 0; i < 16; ++i) sixteen += (i ? ",\"s" : "\"s") + std::to_string(i) + "\"";
  EXPECT_EQ(chat_ok(chat_body("\"stop\":" + sixteen + "]")).options.stop.size(), 16u);
  expect_rejected(parse_chat_request(chat_body("\"stop\":" + sixteen + ",\"x\"]")), "stop", "at most 16");
}

TEST(OpenaiChatRequest, LogitBiasKeysAreTokenIds) {
  const ChatRequest r = chat_ok(chat_body(R"("logit_bias":{"5":2.5,"10":-100,"2147483647":100,"0":0})"));
  const auto& bias = r.options.sampling.logit_bias;
  ASSERT_EQ(bias.size(), 4u);
  EXPECT_EQ(bias[0], (std::pair<int32_t, float>{5, 2.5f}));
  EXPECT_EQ(bias[1].first, 10);
  EXPECT_TRUE(std::isinf(bias[1].second) && bias[1].second < 0);  // -100 bans the token
  EXPECT_EQ(bias[2], (std::pair<int32_t, float>{2147483647, 100.0f}));
  EXPECT_EQ(bias[3], (std::pair<int32_t, float>{0, 0.0f}));
  EXPECT_TRUE(chat_ok(chat_body(R"("logit_bias":{})")).options.sampling.logit_bias.empty());
}

TEST(OpenaiChatRequest, StreamAndUsage) {
  const ChatRequest r = chat_ok(chat_body(R"("stream":true,"stream_options":{"include_usage":true})"));
  EXPECT_TRUE(r.options.stream);
  EXPECT_TRUE(r.options.include_usage);
  EXPECT_FALSE(chat_ok(chat_body(R"("stream":true,"stream_options":{})")).options.include_usage);
}

TEST(OpenaiChatRequest, UnknownFieldsAreIgnored) {
  const ChatRequest r = chat_ok(chat_body(
      R"("foo":{"bar":[1,2,{"x":null}]},"functions":7,"metadata":{"k":"v"},"store":true,"service_tier":"auto")"));
  EXPECT_EQ(r.messages.size(), 1u);
  // Unknown fields in a message and a content part too.
  const ChatRequest m = chat_ok(
      R"({"messages":[{"role":"user","content":[{"type":"text","text":"a","cache_control":{}}],"x":1}]})");
  EXPECT_EQ(m.messages[0], json::parse(R"({"role":"user","content":"a"})"));
}

TEST(OpenaiChatRequest, FieldsOfTheWrongTypeOrOutOfRangeAreRejected) {
  const std::vector<Rejected> cases = {
      {R"("model":5)", "model", "must be a string; found 5"},
      {R"("temperature":2.5)", "temperature", "a number from 0 to 2; found 2.5"},
      {R"("temperature":-0.1)", "temperature", "from 0 to 2"},
      {R"("temperature":"hot")", "temperature", "found the string \"hot\""},
      {R"("temperature":true)", "temperature", "found true"},
      {R"("top_p":0)", "top_p", "above 0 and at most 1"},
      {R"("top_p":1.5)", "top_p", "above 0 and at most 1"},
      {R"("top_k":-1)", "top_k", "an integer from 0"},
      {R"("top_k":2.5)", "top_k", "found 2.5"},
      {R"("min_p":1.1)", "min_p", "from 0 to 1"},
      {R"("presence_penalty":3)", "presence_penalty", "from -2 to 2; found 3"},
      {R"("frequency_penalty":-2.1)", "frequency_penalty", "from -2 to 2"},
      {R"("repetition_penalty":0)", "repetition_penalty", "above 0"},
      {R"("repetition_penalty":-1)", "repetition_penalty", "above 0"},
      {R"("max_tokens":0)", "max_tokens", "an integer from 1 to 2147483647; found 0"},
      {R"("max_tokens":"10")", "max_tokens", "found the string \"10\""},
      {R"("max_tokens":3000000000)", "max_tokens", "found 3000000000"},
      {R"("max_completion_tokens":-5)", "max_completion_tokens", "from 1"},
      {R"("max_tokens":[1],"max_completion_tokens":4)", "max_tokens", "found an array"},
      {R"("seed":"42")", "seed", "an integer"},
      {R"("seed":1.5)", "seed", "must be an integer; found 1.5"},
      {R"("seed":9223372036854775808.0)", "seed", "an integer"},
      {R"("n":0)", "n", "from 1 to 16"},
      {R"("n":17)", "n", "from 1 to 16; found 17"},
      {R"("stream":"yes")", "stream", "must be a boolean"},
      {R"("stream_options":1)", "stream_options", "must be an object"},
      {R"("stream_options":{"include_usage":"yes"})", "stream_options.include_usage", "a boolean"},
      {R"("stop":5)", "stop", "a string or an array of strings"},
      {R"("stop":["a",1])", "stop[1]", "must be a string; found 1"},
      {R"("ignore_eos":1)", "ignore_eos", "a boolean"},
      {R"("user":{})", "user", "found an object"},
      {R"("logit_bias":[])", "logit_bias", "an object mapping token ids"},
      {R"("logit_bias":{"abc":1})", "logit_bias", "found the key \"abc\""},
      {R"("logit_bias":{"-1":1})", "logit_bias", "token ids"},
      {R"("logit_bias":{"1.5":1})", "logit_bias", "token ids"},
      {R"("logit_bias":{"":1})", "logit_bias", "token ids"},
      {R"("logit_bias":{"2147483648":1})", "logit_bias", "token ids"},
      {R"("logit_bias":{"5":101})", "logit_bias.5", "from -100 to 100; found 101"},
      {R"("logit_bias":{"5":"x"})", "logit_bias.5", "from -100 to 100"},
      {R"("logprobs":1)", "logprobs", "a boolean"},
      {R"("logprobs":true,"top_logprobs":21)", "top_logprobs", "from 0 to 20"},
      {R"("top_logprobs":3)", "top_logprobs", "needs `logprobs`"},
      {R"("logprobs":false,"top_logprobs":3)", "top_logprobs", "needs `logprobs`"},
      {R"("parallel_tool_calls":"no")", "parallel_tool_calls", "a boolean"},
      {R"("reasoning_format":"openai")", "reasoning_format", "\"deepseek\", \"auto\" or \"none\""},
      {R"("reasoning_format":1)", "reasoning_format", "a string"},
      {R"("chat_template_kwargs":[])", "chat_template_kwargs", "an object; found an array"},
      {R"("response_format":{"type":"json_object"})", "response_format.type", "not supported"},
      {R"("response_format":{"type":"json_schema","json_schema":{}})", "response_format.type", "json_schema"},
      {R"("response_format":"text")", "response_format", "an object"},
      {R"("response_format":{})", "response_format.type", "required"},
  };
  for (const Rejected& c : cases) {
    SCOPED_TRACE(c.extra);
    expect_rejected(parse_chat_request(chat_body(c.extra)), c.param, c.message);
  }
}

TEST(OpenaiChatRequest, TextResponseFormatIsAccepted) {
  chat_ok(chat_body(R"("response_format":{"type":"text"})"));
}

TEST(OpenaiChatRequest, MalformedBodies) {
  auto r = parse_chat_request(R"({"model": "m", "messages": [})");
  expect_rejected(r, "", "not valid JSON");
  EXPECT_NE(r.error().message.find("line 1, column 29"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("byte 29"), std::string::npos) << r.error().message;
  expect_rejected(parse_chat_request(chat_body(R"("temperature":1e400)")), "", "number out of range");
  expect_rejected(parse_chat_request(""), "", "not valid JSON");
  expect_rejected(parse_chat_request("{\"a\":1} trailing"), "", "not valid JSON");
  expect_rejected(parse_chat_request("[1,2]"), "", "must be a JSON object; found an array");
  expect_rejected(parse_chat_request("null"), "", "must be a JSON object; found null");
  expect_rejected(parse_chat_request("\"hi\""), "", "found the string \"hi\"");
  // Invalid UTF-8 inside a string is a parse error, not a crash.
  expect_rejected(parse_chat_request("{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}"), "",
                  "not valid JSON");
}

TEST(OpenaiChatRequest, DeepNestingIsRejectedBeforeParsing) {
  const std::string deep = std::string(100, '[') + std::string(100, ']');
  expect_rejected(parse_chat_request(chat_body("\"x\":" + deep)), "", "nested deeper than 64");
  const std::string fine = std::string(50, '[') + std::string(50, ']');
  chat_ok(chat_body("\"x\":" + fine));
  // Brackets inside strings do not count.
  chat_ok(chat_body("\"x\":\"" + std::string(200, '[') + "\\\"" + std::string(200, '{') + "\""));
  // Unbalanced nesting is still rejected, and does not crash.
  expect_rejected(parse_chat_request(std::string(100000, '[')), "", "nested deeper");
}

TEST(OpenaiChatRequest, MessagesAreRequiredNonEmptyObjects) {
  expect_rejected(parse_chat_request(R"({"model":"m"})"), "messages", "`messages` is required");
  expect_rejected(parse_chat_request(R"({"messages":"hi"})"), "messages",
                  "an array of messages; found the string");
  expect_rejected(parse_chat_request(R"({"messages":[]})"), "messages", "must not be empty");
  expect_rejected(parse_chat_request(R"({"messages":[{"role":"user","content":"a"},"b"]})"), "messages[1]",
                  "a message object");
  expect_rejected(parse_chat_request(R"({"messages":[{"content":"a"}]})"), "messages[0].role", "required");
  expect_rejected(
      parse_chat_request(R"({"messages":[{"role":"user","content":"a"},{"role":"bot","content":"b"}]})"),
      "messages[1].role",
      "one of \"system\", \"user\", \"assistant\", \"tool\", \"developer\"; found "
      "the string \"bot\"");
  expect_rejected(parse_chat_request(R"({"messages":[{"role":"function","content":"a"}]})"),
                  "messages[0].role", "\"function\"");
  expect_rejected(parse_chat_request(R"({"messages":[{"role":7,"content":"a"}]})"), "messages[0].role",
                  "a string; found 7");
  expect_rejected(parse_chat_request(R"({"messages":[{"role":"user"}]})"), "messages[0].content",
                  "required for role \"user\"");
  expect_rejected(parse_chat_request(R"({"messages":[{"role":"system","content":null}]})"),
                  "messages[0].content", "required");
  expect_rejected(parse_chat_request(R"({"messages":[{"role":"user","content":5}]})"), "messages[0].content",
                  "a string or an array of content parts; found 5");
  expect_rejected(parse_chat_request(R"({"messages":[{"role":"user","content":"a","name":1}]})"),
                  "messages[0].name", "a string");
}

TEST(OpenaiChatRequest, RolesAndFieldsAreNormalised) {
  const ChatRequest r = chat_ok(R"({"messages":[
      {"role":"developer","content":"be brief"},
      {"role":"system","content":"sys"},
      {"role":"user","content":"weather?","name":"ann"},
      {"role":"assistant","content":null,"reasoning_content":"think","tool_calls":[
          {"id":"call_1","type":"function","function":{"name":"get","arguments":"{\"city\":\"Oslo\"}"}},
          {"function":{"name":"now","arguments":{"tz":"UTC"}}}]},
      {"role":"tool","content":"12C","tool_call_id":"call_1"},
      {"role":"assistant","content":"It is 12C."}]})");
  const json expected = json::parse(R"([
      {"role":"system","content":"be brief"},
      {"role":"system","content":"sys"},
      {"role":"user","content":"weather?","name":"ann"},
      {"role":"assistant","content":null,"tool_calls":[
          {"id":"call_1","type":"function","function":{"name":"get","arguments":"{\"city\":\"Oslo\"}"}},
          {"type":"function","function":{"name":"now","arguments":"{\"tz\":\"UTC\"}"}}],
       "reasoning_content":"think"},
      {"role":"tool","content":"12C","tool_call_id":"call_1"},
      {"role":"assistant","content":"It is 12C."}])");
  EXPECT_EQ(r.messages, expected) << r.messages.dump(2);
}

TEST(OpenaiChatRequest, AssistantContentWithoutToolCalls) {
  // No content and no calls: an empty answer. An empty tool_calls array counts as none.
  const ChatRequest r =
      chat_ok(R"({"messages":[{"role":"assistant"},{"role":"assistant","tool_calls":[]}]})");
  EXPECT_EQ(r.messages,
            json::parse(R"([{"role":"assistant","content":""},{"role":"assistant","content":""}])"));
  // Text beside tool calls stays.
  const ChatRequest t = chat_ok(
      R"({"messages":[{"role":"assistant","content":"Let me look.","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]})");
  EXPECT_EQ(t.messages[0]["content"], "Let me look.");
  // Fields that belong to other roles are dropped, not passed to the template.
  const ChatRequest u =
      chat_ok(R"({"messages":[{"role":"user","content":"a","tool_call_id":"x","reasoning_content":"r"}]})");
  EXPECT_EQ(u.messages[0], json::parse(R"({"role":"user","content":"a"})"));
}

TEST(OpenaiChatRequest, ToolCallsInMessagesAreChecked) {
  const std::string head = R"({"messages":[{"role":"assistant","tool_calls":)";
  expect_rejected(parse_chat_request(head + R"("x"}]})"), "messages[0].tool_calls", "an array of tool calls");
  expect_rejected(parse_chat_request(head + R"([1]}]})"), "messages[0].tool_calls[0]", "a tool call object");
  expect_rejected(parse_chat_request(head + R"([{"type":"code","function":{"name":"f"}}]}]})"),
                  "messages[0].tool_calls[0].type", "\"function\"");
  expect_rejected(parse_chat_request(head + R"([{"type":"function"}]}]})"),
                  "messages[0].tool_calls[0].function", "required");
  expect_rejected(parse_chat_request(head + R"([{"function":{"arguments":"{}"}}]}]})"),
                  "messages[0].tool_calls[0].function.name", "required");
  expect_rejected(parse_chat_request(head + R"([{"function":{"name":"f","arguments":3}}]}]})"),
                  "messages[0].tool_calls[0].function.arguments", "a string");
  expect_rejected(parse_chat_request(head + R"([{"id":5,"function":{"name":"f"}}]}]})"),
                  "messages[0].tool_calls[0].id", "a string");
  expect_rejected(parse_chat_request(R"({"messages":[{"role":"tool","content":"x","tool_call_id":1}]})"),
                  "messages[0].tool_call_id", "a string");
  expect_rejected(
      parse_chat_request(R"({"messages":[{"role":"assistant","content":"x","reasoning_content":1}]})"),
      "messages[0].reasoning_content", "a string");
}

TEST(OpenaiChatRequest, ContentPartsAreJoined) {
  const ChatRequest r = chat_ok(
      R"({"messages":[{"role":"user","content":[{"type":"text","text":"first"},{"type":"text","text":"second"}]},)"
      R"({"role":"system","content":[]},{"role":"user","content":[{"type":"text","text":"only"}]}]})");
  EXPECT_EQ(r.messages[0]["content"], "first\nsecond");
  EXPECT_EQ(r.messages[1]["content"], "");
  EXPECT_EQ(r.messages[2]["content"], "only");
}

TEST(OpenaiChatRequest, NonTextContentPartsAreRejectedByName) {
  const std::string head = R"({"messages":[{"role":"user","content":"a"},{"role":"user","content":[)";
  expect_rejected(
      parse_chat_request(head +
                         R"({"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"x"}}]}]})"),
      "messages[1].content[1].type", "the string \"image_url\"; only \"text\" content parts are supported");
  expect_rejected(parse_chat_request(head + R"({"type":"input_audio"}]}]})"), "messages[1].content[0].type",
                  "input_audio");
  expect_rejected(parse_chat_request(head + R"("plain"]}]})"), "messages[1].content[0]",
                  "a content part object");
  expect_rejected(parse_chat_request(head + R"({"text":"x"}]}]})"), "messages[1].content[0].type",
                  "required");
  expect_rejected(parse_chat_request(head + R"({"type":"text"}]}]})"), "messages[1].content[0].text",
                  "required");
  expect_rejected(parse_chat_request(head + R"({"type":"text","text":[]}]}]})"),
                  "messages[1].content[0].text", "a string");
}

TEST(OpenaiChatRequest, ToolsAndToolChoice) {
  const std::string tools =
      R"("tools":[{"type":"function","function":{"name":"get_weather","description":"Weather now",)"
      R"("parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":true}},)"
      R"({"function":{"name":"now"}}])";
  const ChatRequest r = chat_ok(chat_body(tools + R"(,"parallel_tool_calls":false)"));
  const json expected = json::parse(R"([
      {"type":"function","function":{"name":"get_weather","description":"Weather now",
       "parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":true}},
      {"type":"function","function":{"name":"now"}}])");
  EXPECT_EQ(r.tools, expected);
  EXPECT_FALSE(r.parallel_tool_calls);
  EXPECT_EQ(r.tool_choice.mode, ToolChoice::Mode::kAuto);

  EXPECT_EQ(chat_ok(chat_body(tools + R"(,"tool_choice":"none")")).tool_choice.mode, ToolChoice::Mode::kNone);
  EXPECT_EQ(chat_ok(chat_body(tools + R"(,"tool_choice":"required")")).tool_choice.mode,
            ToolChoice::Mode::kRequired);
  const ChatRequest named =
      chat_ok(chat_body(tools + R"(,"tool_choice":{"type":"function","function":{"name":"now"}})"));
  EXPECT_EQ(named.tool_choice.mode, ToolChoice::Mode::kFunction);
  EXPECT_EQ(named.tool_choice.function, "now");
  // "auto" and "none" need no tools.
  EXPECT_EQ(chat_ok(chat_body(R"("tool_choice":"none")")).tool_choice.mode, ToolChoice::Mode::kNone);
  chat_ok(chat_body(R"("tools":[],"tool_choice":"auto")"));

  const std::vector<Rejected> cases = {
      {R"("tools":"x")", "tools", "an array of tools"},
      {R"("tools":[7])", "tools[0]", "a tool object"},
      {R"("tools":[{"type":"retrieval","function":{"name":"a"}}])", "tools[0].type",
       "\"function\" (the only"},
      {R"("tools":[{"type":"function"}])", "tools[0].function", "required"},
      {R"("tools":[{"function":"f"}])", "tools[0].function", "an object"},
      {R"("tools":[{"function":{"description":"d"}}])", "tools[0].function.name", "required"},
      {R"("tools":[{"function":{"name":""}}])", "tools[0].function.name", "must not be empty"},
      {R"("tools":[{"function":{"name":"a","description":3}}])", "tools[0].function.description", "a string"},
      {R"("tools":[{"function":{"name":"a","parameters":"{}"}}])", "tools[0].function.parameters",
       "a JSON Schema object"},
      {R"("tools":[{"function":{"name":"a","strict":"yes"}}])", "tools[0].function.strict", "a boolean"},
      {tools + R"(,"tool_choice":"sometimes")", "tool_choice", "\"none\", \"auto\", \"required\""},
      {tools + R"(,"tool_choice":3)", "tool_choice", "found 3"},
      {tools + R"(,"tool_choice":{"type":"function","function":{"name":"nope"}})",
       "tool_choice.function.name", "names none of `tools`"},
      {tools + R"(,"tool_choice":{"type":"function"})", "tool_choice.function", "an object with a name"},
      {tools + R"(,"tool_choice":{"type":"function","function":{}})", "tool_choice.function.name",
       "required"},
      {tools + R"(,"tool_choice":{"type":"x","function":{"name":"now"}})", "tool_choice.type",
       "\"function\""},
      {R"("tool_choice":"required")", "tool_choice", "needs `tools`"},
      {R"("tool_choice":{"type":"function","function":{"name":"now"}})", "tool_choice.function.name",
       "names none"},
  };
  for (const Rejected& c : cases) {
    SCOPED_TRACE(c.extra);
    expect_rejected(parse_chat_request(chat_body(c.extra)), c.param, c.message);
  }
}

TEST(OpenaiChatRequest, LogprobsReasoningAndTemplateKwargs) {
  const ChatRequest r = chat_ok(chat_body(
      R"("logprobs":true,"top_logprobs":5,"reasoning_format":"none","chat_template_kwargs":{"enable_thinking":false,"thinking":true})"));
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 5);
  EXPECT_EQ(r.reasoning_format, ReasoningFormat::kNone);
  EXPECT_EQ(r.chat_template_kwargs, json::parse(R"({"enable_thinking":false,"thinking":true})"));
  EXPECT_EQ(chat_ok(chat_body(R"("reasoning_format":"auto")")).reasoning_format, ReasoningFormat::kDeepseek);
  EXPECT_EQ(chat_ok(chat_body(R"("reasoning_format":"deepseek")")).reasoning_format,
            ReasoningFormat::kDeepseek);
  EXPECT_TRUE(chat_ok(chat_body(R"("logprobs":true)")).logprobs);
  EXPECT_EQ(chat_ok(chat_body(R"("logprobs":false,"top_logprobs":0)")).top_logprobs, 0);
}

TEST(OpenaiChatRequest, Utf8IsPreserved) {
  const ChatRequest r = chat_ok(
      "{\"messages\":[{\"role\":\"user\",\"content\":\"h\xc3\xa9llo \xf0\x9f\x8c\x8d \\ud83c\\udf0d "
      "\\u00e9\"}]}");
  EXPECT_EQ(r.messages[0]["content"], "h\xc3\xa9llo \xf0\x9f\x8c\x8d \xf0\x9f\x8c\x8d \xc3\xa9");
}

TEST(OpenaiChatRequest, LongValuesAreShortenedInMessagesWithoutSplittingCharacters) {
  const std::string role = std::string(39, 'a') + "\xc3\xa9" + std::string(100, 'b');
  auto r = parse_chat_request(R"({"messages":[{"role":")" + role + R"(","content":"x"}]})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(std::string(39, 'a') + "...\""), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find(std::string(50, 'b')), std::string::npos);
}

TEST(OpenaiCompletionRequest, PromptForms) {
  const CompletionRequest s = completion_ok(completion_body());
  EXPECT_EQ(s.prompt, "Once upon");
  EXPECT_FALSE(s.prompt_is_tokens);
  EXPECT_EQ(s.options.model, "deepseek-r1");

  const CompletionRequest one = completion_ok(R"({"prompt":["a single one"]})");
  EXPECT_EQ(one.prompt, "a single one");
  EXPECT_FALSE(one.prompt_is_tokens);

  const CompletionRequest tokens = completion_ok(R"({"prompt":[0,15,2147483647]})");
  EXPECT_TRUE(tokens.prompt_is_tokens);
  EXPECT_EQ(tokens.prompt_tokens, (std::vector<int32_t>{0, 15, 2147483647}));

  const CompletionRequest nested = completion_ok(R"({"prompt":[[1,2,3]]})");
  EXPECT_TRUE(nested.prompt_is_tokens);
  EXPECT_EQ(nested.prompt_tokens, (std::vector<int32_t>{1, 2, 3}));

  EXPECT_EQ(completion_ok(R"({"prompt":""})").prompt, "");
}

TEST(OpenaiCompletionRequest, DefaultsAndCommonFields) {
  const CompletionRequest d = completion_ok(completion_body());
  EXPECT_EQ(d.options.max_tokens, -1);
  EXPECT_EQ(d.options.sampling.temperature, 1.0f);
  EXPECT_EQ(d.options.sampling.top_k, 0);
  EXPECT_FALSE(d.logprobs.has_value());

  const CompletionRequest r = completion_ok(completion_body(
      R"("max_tokens":16,"temperature":0,"stop":["\n"],"seed":7,"n":2,"best_of":2,"stream":true,)"
      R"("stream_options":{"include_usage":true},"logprobs":3,"echo":false,"suffix":"","logit_bias":{"1":-1})"));
  EXPECT_EQ(r.options.max_tokens, 16);
  EXPECT_EQ(r.options.sampling.temperature, 0.0f);
  EXPECT_EQ(r.options.stop, std::vector<std::string>{"\n"});
  EXPECT_EQ(r.options.sampling.seed, 7u);
  EXPECT_EQ(sampling_for_choice(r.options, 1).seed, 8u);
  EXPECT_EQ(r.options.n, 2);
  EXPECT_TRUE(r.options.stream);
  EXPECT_TRUE(r.options.include_usage);
  EXPECT_EQ(r.logprobs, 3);
  EXPECT_EQ(completion_ok(completion_body(R"("logprobs":0)")).logprobs, 0);
  EXPECT_EQ(r.options.sampling.logit_bias.size(), 1u);
}

TEST(OpenaiCompletionRequest, Rejections) {
  const std::vector<std::pair<std::string, Rejected>> cases = {
      {R"({"model":"m"})", {"", "prompt", "`prompt` is required"}},
      {R"({"prompt":5})",
       {"", "prompt", "a string, an array of one string or an array of token ids; found 5"}},
      {R"({"prompt":[]})", {"", "prompt", "must not be an empty array"}},
      {R"({"prompt":["a","b"]})",
       {"", "prompt", "holds 2 prompts; only one prompt per request is supported"}},
      {R"({"prompt":[[1],[2]]})", {"", "prompt", "only one prompt"}},
      {R"({"prompt":[[]]})", {"", "prompt[0]", "must not be an empty array"}},
      {R"({"prompt":[1,"a"]})", {"", "prompt[1]", "an integer from 0 to 2147483647; found the string \"a\""}},
      {R"({"prompt":[-1]})", {"", "prompt[0]", "found -1"}},
      {R"({"prompt":[1.5]})", {"", "prompt[0]", "found 1.5"}},
      {R"({"prompt":[[1,true]]})", {"", "prompt[0][1]", "found true"}},
      {R"({"prompt":[true]})", {"", "prompt[0]", "a string or an array of token ids"}},
      {R"({"prompt":[{}]})", {"", "prompt[0]", "found an object"}},
      {completion_body(R"("logprobs":21)"), {"", "logprobs", "from 0 to 20"}},
      {completion_body(R"("logprobs":true)"), {"", "logprobs", "an integer"}},
      {completion_body(R"("echo":true)"), {"", "echo", "not supported"}},
      {completion_body(R"("echo":"no")"), {"", "echo", "a boolean"}},
      {completion_body(R"("suffix":"end")"), {"", "suffix", "not supported"}},
      {completion_body(R"("suffix":1)"), {"", "suffix", "a string"}},
      {completion_body(R"("best_of":3)"), {"", "best_of", "other than `n`"}},
      {completion_body(R"("best_of":0)"), {"", "best_of", "from 1 to 16"}},
      {completion_body(R"("temperature":3)"), {"", "temperature", "from 0 to 2"}},
      {completion_body(R"("n":20)"), {"", "n", "from 1 to 16"}},
      {"[\"prompt\"]", {"", "", "must be a JSON object"}},
      {"{\"prompt\":", {"", "", "not valid JSON"}},
  };
  for (const auto& [body, c] : cases) {
    SCOPED_TRACE(body);
    expect_rejected(parse_completion_request(body), c.param, c.message);
  }
}

std::string read_seed(const std::string& name) {
  std::ifstream in(test::test_data_dir() + "/openai-requests/" + name, std::ios::binary);
  EXPECT_TRUE(in) << name;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The fuzzer's seeds stay what they claim to be: accepted requests (and one rejected).
TEST(OpenaiRequestSeeds, ParseAsTheirNamesSay) {
  for (const char* name : {"chat_minimal.json", "chat_full.json", "chat_tool_choice_named.json"}) {
    SCOPED_TRACE(name);
    chat_ok(read_seed(name));
  }
  const ChatRequest full = chat_ok(read_seed("chat_full.json"));
  EXPECT_EQ(full.messages.size(), 6u);
  EXPECT_EQ(full.messages[1]["content"], "What is the weather\nin Oslo?");
  EXPECT_EQ(full.options.n, 2);
  EXPECT_EQ(full.top_logprobs, 3);
  // The first bad field is the one reported (the sampling fields are read before the messages).
  expect_rejected(parse_chat_request(read_seed("chat_rejected.json")), "temperature", "from 0 to 2; found 3");
  for (const char* name : {"completion_text.json", "completion_tokens.json"}) {
    SCOPED_TRACE(name);
    completion_ok(read_seed(name));
  }
  EXPECT_EQ(completion_ok(read_seed("completion_tokens.json")).prompt_tokens.size(), 5u);
}

TEST(OpenaiApiResult, HoldsAValueOrAnError) {
  ApiResult<int> ok = 3;
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.value(), 3);
  ApiResult<int> bad = ApiError::invalid_request("n", "bad n");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().status, 400);
  EXPECT_EQ(bad.error().type, "invalid_request_error");
  EXPECT_EQ(bad.error().param, "n");
  EXPECT_EQ(bad.error().message, "bad n");
  EXPECT_EQ(bad.error().code, "");
}

}  // namespace
}  // namespace onecard::serve
