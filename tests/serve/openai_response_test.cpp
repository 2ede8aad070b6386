#include "serve/openai_response.h"

#include <cctype>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace onecard::serve {
namespace {

const ResponseMeta kChatMeta{"chatcmpl-abc", "deepseek-r1", 1700000000};
const ResponseMeta kCompletionMeta{"cmpl-abc", "deepseek-r1", 1700000000};

// The keys of an object, in order: OpenAI's order keeps the output readable and diffable.
std::vector<std::string> keys(const json& object) {
  std::vector<std::string> out;
  for (const auto& [key, value] : object.items()) out.push_back(key);
  return out;
}

using Keys = std::vector<std::string>;

Usage some_usage() {
  Usage u;
  u.prompt_tokens = 12;
  u.completion_tokens = 30;
  u.cached_tokens = 8;
  u.reasoning_tokens = 20;
  return u;
}

TEST(OpenaiResponse, FinishReasonNames) {
  EXPECT_EQ(finish_reason_name(FinishReason::kStop), "stop");
  EXPECT_EQ(finish_reason_name(FinishReason::kLength), "length");
  EXPECT_EQ(finish_reason_name(FinishReason::kToolCalls), "tool_calls");
  EXPECT_EQ(finish_reason_name(FinishReason::kNone), "");
}

TEST(OpenaiResponse, UsageCountsAndDetails) {
  const json u = usage_json(some_usage());
  EXPECT_EQ(u, json::parse(R"({"prompt_tokens":12,"completion_tokens":30,"total_tokens":42,
      "prompt_tokens_details":{"cached_tokens":8},"completion_tokens_details":{"reasoning_tokens":20}})"));
  EXPECT_EQ(keys(u), (Keys{"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details",
                           "completion_tokens_details"}));
}

TEST(OpenaiResponse, ChatCompletionWithReasoning) {
  ChatChoice c;
  c.content = "The answer is 4.";
  c.reasoning_content = "2+2=4";
  c.finish_reason = FinishReason::kStop;
  const json r = chat_completion(kChatMeta, {c}, some_usage());
  EXPECT_EQ(keys(r), (Keys{"id", "object", "created", "model", "choices", "usage"}));
  EXPECT_EQ(r["id"], "chatcmpl-abc");
  EXPECT_EQ(r["object"], "chat.completion");
  EXPECT_EQ(r["created"], 1700000000);
  EXPECT_EQ(r["model"], "deepseek-r1");
  ASSERT_EQ(r["choices"].size(), 1u);
  const json& choice = r["choices"][0];
  EXPECT_EQ(keys(choice), (Keys{"index", "message", "logprobs", "finish_reason"}));
  EXPECT_EQ(choice["index"], 0);
  EXPECT_EQ(choice["message"],
            json::parse(R"({"role":"assistant","content":"The answer is 4.","reasoning_content":"2+2=4"})"));
  EXPECT_TRUE(choice["logprobs"].is_null());
  EXPECT_EQ(choice["finish_reason"], "stop");
  EXPECT_EQ(r["usage"]["total_tokens"], 42);
}

TEST(OpenaiResponse, ChatCompletionOmitsEmptyReasoningAndKeepsEmptyContent) {
  ChatChoice c;
  c.finish_reason = FinishReason::kLength;
  const json r = chat_completion(kChatMeta, {c}, Usage{});
  EXPECT_EQ(r["choices"][0]["message"], json::parse(R"({"role":"assistant","content":""})"));
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(r["usage"]["total_tokens"], 0);
}

TEST(OpenaiResponse, ChatCompletionWithToolCalls) {
  ChatChoice c;
  c.tool_calls = {{"call_1", "get_weather", R"({"city":"Oslo"})"}, {"call_2", "now", "{}"}};
  c.finish_reason = FinishReason::kToolCalls;
  ChatChoice second;
  second.index = 1;
  second.content = "Checking.";
  second.tool_calls = {{"call_3", "now", "{}"}};
  second.finish_reason = FinishReason::kToolCalls;
  const json r = chat_completion(kChatMeta, {c, second}, Usage{});
  const json& m = r["choices"][0]["message"];
  EXPECT_EQ(keys(m), (Keys{"role", "content", "tool_calls"}));
  EXPECT_TRUE(m["content"].is_null());  // only tool calls: null, as OpenAI
  EXPECT_EQ(m["tool_calls"], json::parse(R"([
      {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}},
      {"id":"call_2","type":"function","function":{"name":"now","arguments":"{}"}}])"));
  EXPECT_EQ(r["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_EQ(r["choices"][1]["index"], 1);
  EXPECT_EQ(r["choices"][1]["message"]["content"], "Checking.");
}

TEST(OpenaiResponse, ChatLogprobs) {
  TokenLogprob t{"Hi", -0.25f, {{"Hi", -0.25f}, {"Hello", -1.5f}}};
  TokenLogprob banned{"!", -std::numeric_limits<float>::infinity(), {}};
  const json lp = chat_logprobs({t, banned});
  EXPECT_EQ(lp, json::parse(R"({"content":[
      {"token":"Hi","logprob":-0.25,"bytes":[72,105],"top_logprobs":[
          {"token":"Hi","logprob":-0.25,"bytes":[72,105]},{"token":"Hello","logprob":-1.5,"bytes":[72,101,108,108,111]}]},
      {"token":"!","logprob":-9999.0,"bytes":[33],"top_logprobs":[]}],"refusal":null})"));
  EXPECT_EQ(keys(lp["content"][0]), (Keys{"token", "logprob", "bytes", "top_logprobs"}));

  ChatChoice c;
  c.content = "Hi!";
  c.logprobs = std::vector<TokenLogprob>{t};
  const json r = chat_completion(kChatMeta, {c}, Usage{});
  EXPECT_EQ(r["choices"][0]["logprobs"]["content"][0]["token"], "Hi");
  // Requested but nothing generated: an empty list, not null.
  c.logprobs = std::vector<TokenLogprob>{};
  EXPECT_EQ(chat_completion(kChatMeta, {c}, Usage{})["choices"][0]["logprobs"]["content"], json::array());
}

TEST(OpenaiResponse, ChatLogprobBytesOfAPartialCharacter) {
  // A token that ends inside "é" (0xC3 0xA9): the bytes are exact, the text is repaired when written.
  const json lp = chat_logprobs({TokenLogprob{"\xc3", -1.0f, {}}});
  EXPECT_EQ(lp["content"][0]["bytes"], json::array({195}));
  const std::string text = dump_json(lp);
  EXPECT_NE(text.find("\xef\xbf\xbd"), std::string::npos) << text;
  EXPECT_TRUE(json::accept(text));
}

TEST(OpenaiResponse, ChatChunksAsOpenAIStreamsThem) {
  ChatDelta first;
  first.first = true;
  const json c0 = chat_chunk(kChatMeta, first, false);
  EXPECT_EQ(keys(c0), (Keys{"id", "object", "created", "model", "choices"}));
  EXPECT_EQ(c0["object"], "chat.completion.chunk");
  EXPECT_EQ(
      c0["choices"],
      json::parse(
          R"([{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}])"));

  ChatDelta reasoning;
  reasoning.reasoning_content = "Let me think";
  EXPECT_EQ(chat_chunk(kChatMeta, reasoning, false)["choices"][0]["delta"],
            json::parse(R"({"reasoning_content":"Let me think"})"));

  ChatDelta content;
  content.index = 2;
  content.content = "Hello";
  const json c2 = chat_chunk(kChatMeta, content, false);
  EXPECT_EQ(c2["choices"][0]["index"], 2);
  EXPECT_EQ(c2["choices"][0]["delta"], json::parse(R"({"content":"Hello"})"));

  ChatDelta last;
  last.finish_reason = FinishReason::kStop;
  const json c3 = chat_chunk(kChatMeta, last, false);
  EXPECT_EQ(c3["choices"][0]["delta"], json::object());
  EXPECT_EQ(c3["choices"][0]["finish_reason"], "stop");
}

TEST(OpenaiResponse, ChatChunkToolCallDeltas) {
  ChatDelta opening;
  opening.tool_calls = {{0, "call_1", "get_weather", ""}};
  EXPECT_EQ(chat_chunk(kChatMeta, opening, false)["choices"][0]["delta"], json::parse(R"({"tool_calls":[
      {"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]})"));
  ChatDelta more;
  more.tool_calls = {{0, "", "", "{\"city\":"}, {1, "call_2", "now", "{}"}};
  const json d = chat_chunk(kChatMeta, more, false)["choices"][0]["delta"];
  EXPECT_EQ(d, json::parse(R"({"tool_calls":[
      {"index":0,"function":{"arguments":"{\"city\":"}},
      {"index":1,"id":"call_2","type":"function","function":{"name":"now","arguments":"{}"}}]})"));
  EXPECT_EQ(keys(d["tool_calls"][1]), (Keys{"index", "id", "type", "function"}));
  // The first chunk may carry the first call at once.
  ChatDelta both;
  both.first = true;
  both.tool_calls = {{0, "call_1", "f", "{}"}};
  const json b = chat_chunk(kChatMeta, both, false)["choices"][0]["delta"];
  EXPECT_EQ(keys(b), (Keys{"role", "content", "tool_calls"}));
}

TEST(OpenaiResponse, ChatChunkLogprobs) {
  ChatDelta d;
  d.content = "Hi";
  d.logprobs = std::vector<TokenLogprob>{{"Hi", -0.5f, {}}};
  const json c = chat_chunk(kChatMeta, d, false);
  EXPECT_EQ(c["choices"][0]["logprobs"]["content"][0]["logprob"], -0.5);
}

TEST(OpenaiResponse, StreamUsageIsNullUntilTheLastChunk) {
  ChatDelta d;
  d.content = "x";
  const json with = chat_chunk(kChatMeta, d, true);
  ASSERT_TRUE(with.contains("usage"));
  EXPECT_TRUE(with["usage"].is_null());
  EXPECT_FALSE(chat_chunk(kChatMeta, d, false).contains("usage"));
  const json u = chat_usage_chunk(kChatMeta, some_usage());
  EXPECT_EQ(keys(u), (Keys{"id", "object", "created", "model", "choices", "usage"}));
  EXPECT_EQ(u["object"], "chat.completion.chunk");
  EXPECT_EQ(u["choices"], json::array());
  EXPECT_EQ(u["usage"], usage_json(some_usage()));
}

TEST(OpenaiResponse, TextCompletion) {
  CompletionChoice c;
  c.text = " a time";
  c.finish_reason = FinishReason::kLength;
  const json r = text_completion(kCompletionMeta, {c}, some_usage());
  EXPECT_EQ(keys(r), (Keys{"id", "object", "created", "model", "choices", "usage"}));
  EXPECT_EQ(r["object"], "text_completion");
  EXPECT_EQ(r["id"], "cmpl-abc");
  EXPECT_EQ(r["choices"],
            json::parse(R"([{"index":0,"text":" a time","logprobs":null,"finish_reason":"length"}])"));
  EXPECT_EQ(r["usage"]["completion_tokens"], 30);
}

TEST(OpenaiResponse, CompletionLogprobsCountOffsetsInBytes) {
  const std::vector<TokenLogprob> tokens = {{" a", -0.1f, {{" a", -0.1f}, {" the", -2.0f}}},
                                            {" t\xc3\xa9", -0.2f, {}},
                                            {"x", -std::numeric_limits<float>::infinity(), {{"x", -1.0f}}}};
  const json lp = completion_logprobs(tokens, 10);
  EXPECT_EQ(keys(lp), (Keys{"tokens", "token_logprobs", "top_logprobs", "text_offset"}));
  EXPECT_EQ(lp["tokens"], json::parse("[\" a\",\" t\xc3\xa9\",\"x\"]"));
  EXPECT_FLOAT_EQ(lp["token_logprobs"][0].get<float>(), -0.1f);
  EXPECT_EQ(lp["token_logprobs"][2], -9999.0);
  EXPECT_EQ(lp["top_logprobs"][0].size(), 2u);
  EXPECT_FLOAT_EQ(lp["top_logprobs"][0][" the"].get<float>(), -2.0f);
  EXPECT_EQ(lp["top_logprobs"][1], json::object());
  EXPECT_EQ(lp["text_offset"], json::parse("[10,12,16]"));

  CompletionChoice c;
  c.text = " a t\xc3\xa9x";
  c.logprobs = tokens;
  c.finish_reason = FinishReason::kNone;
  const json chunk = completion_chunk(kCompletionMeta, c, true);
  EXPECT_EQ(chunk["object"], "text_completion");
  EXPECT_TRUE(chunk["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(chunk["choices"][0]["logprobs"]["text_offset"], json::parse("[0,2,6]"));
  ASSERT_TRUE(chunk.contains("usage"));
  EXPECT_TRUE(chunk["usage"].is_null());
}

TEST(OpenaiResponse, CompletionChunksAndUsage) {
  CompletionChoice c;
  c.index = 1;
  c.text = "tok";
  c.finish_reason = FinishReason::kNone;
  const json chunk = completion_chunk(kCompletionMeta, c, false);
  EXPECT_EQ(keys(chunk), (Keys{"id", "object", "created", "model", "choices"}));
  EXPECT_EQ(chunk["choices"],
            json::parse(R"([{"index":1,"text":"tok","logprobs":null,"finish_reason":null}])"));
  const json u = completion_usage_chunk(kCompletionMeta, some_usage());
  EXPECT_EQ(u["object"], "text_completion");
  EXPECT_EQ(u["choices"], json::array());
  EXPECT_EQ(u["usage"]["prompt_tokens"], 12);
}

TEST(OpenaiResponse, ErrorBody) {
  const json e = error_body(ApiError::invalid_request("messages[2].role", "bad role"));
  EXPECT_EQ(
      e,
      json::parse(
          R"({"error":{"message":"bad role","type":"invalid_request_error","param":"messages[2].role","code":null}})"));
  EXPECT_EQ(keys(e["error"]), (Keys{"message", "type", "param", "code"}));
  const json busy = error_body(ApiError{503, "server_error", "the queue is full", "", "queue_full"});
  EXPECT_TRUE(busy["error"]["param"].is_null());
  EXPECT_EQ(busy["error"]["code"], "queue_full");
  EXPECT_EQ(busy["error"]["type"], "server_error");
}

TEST(OpenaiResponse, ModelsList) {
  const json m = models_list({{"deepseek-r1", 1700000000}, {"other", 5}});
  EXPECT_EQ(m, json::parse(R"({"object":"list","data":[
      {"id":"deepseek-r1","object":"model","created":1700000000,"owned_by":"onecard"},
      {"id":"other","object":"model","created":5,"owned_by":"onecard"}]})"));
  EXPECT_EQ(models_list({}), json::parse(R"({"object":"list","data":[]})"));
}

TEST(OpenaiResponse, ServerSentEvents) {
  EXPECT_EQ(sse_event(json{{"a", 1}, {"b", "x y"}}), "data: {\"a\":1,\"b\":\"x y\"}\n\n");
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
  // A newline in the text must not end the event: it is escaped inside the JSON.
  ChatDelta d;
  d.content = "line\n\nnext";
  const std::string e = sse_event(chat_chunk(kChatMeta, d, false));
  EXPECT_EQ(e.find("\n"), e.size() - 2);
}

TEST(OpenaiResponse, Utf8IsWrittenAsIsAndInvalidBytesAreReplaced) {
  ChatChoice c;
  c.content = "h\xc3\xa9llo \xf0\x9f\x8c\x8d \xe4\xb8\xad";
  const std::string text = dump_json(chat_completion(kChatMeta, {c}, Usage{}));
  EXPECT_NE(text.find("h\xc3\xa9llo \xf0\x9f\x8c\x8d \xe4\xb8\xad"), std::string::npos) << text;

  ChatDelta bad;
  bad.content =
      "ab\xff\xfe"
      "c\xe4\xb8";  // invalid bytes and a character cut short
  bad.reasoning_content = "\xc3";
  bad.tool_calls = {{0, "call_\xff", "f\xff", "{\"a\":\"\xff\"}"}};
  std::string event;
  EXPECT_NO_THROW(event = sse_event(chat_chunk(kChatMeta, bad, true)));
  ASSERT_EQ(event.rfind("data: ", 0), 0u);
  const json back = json::parse(event.substr(6));
  EXPECT_EQ(back["choices"][0]["delta"]["content"].get<std::string>().substr(0, 2), "ab");
  EXPECT_NE(event.find("\xef\xbf\xbd"), std::string::npos);

  // Object keys too (the completion shape's top_logprobs).
  const json lp = completion_logprobs({{"\xff", -1.0f, {{"\xff", -1.0f}}}}, 0);
  EXPECT_TRUE(json::accept(dump_json(lp)));
  // And the error body, whose message may quote the client's bytes.
  EXPECT_TRUE(json::accept(dump_json(error_body(ApiError::invalid_request("x", "found \"\xc3\"")))));
}

TEST(OpenaiResponse, ResponseIdsAreRandomAndPrefixed) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string id = new_response_id("chatcmpl-");
    ASSERT_EQ(id.rfind("chatcmpl-", 0), 0u);
    ASSERT_EQ(id.size(), 9u + 24u);
    for (size_t k = 9; k < id.size(); ++k) ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(id[k]))) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 100u);
  EXPECT_EQ(new_response_id("call_").rfind("call_", 0), 0u);
  EXPECT_GT(unix_now(), 1700000000);
}

}  // namespace
}  // namespace onecard::serve
