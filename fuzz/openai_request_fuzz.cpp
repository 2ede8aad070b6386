// libFuzzer target for the OpenAI request schema: arbitrary bytes go to both parsers, and whatever they
// accept is turned into every kind of response, with the client's strings and the raw input bytes (invalid
// UTF-8 included) as generated text. Nothing may crash, throw or trip ASan/UBSan; an uncaught exception
// aborts, which libFuzzer reports as a crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "serve/openai_request.h"
#include "serve/openai_response.h"

namespace {

using namespace onecard::serve;

constexpr int32_t kVocab = 129280;  // DeepSeek-V3's, so that validate() sees realistic bounds

// Alternatives at a position, made from request strings so that odd keys reach the object-keyed shape.
std::vector<TokenLogprob> logprobs_from(const std::vector<std::string>& texts, int top) {
  std::vector<TokenLogprob> out;
  for (const std::string& t : texts) {
    TokenLogprob lp{t, -0.5f, {}};
    for (int k = 0; k < top && k < static_cast<int>(texts.size()); ++k)
      lp.top.push_back({texts[k], -1.0f * k});
    out.push_back(std::move(lp));
  }
  return out;
}

void consume(const std::string& s) {
  // Keeps the serialisation from being optimised away.
  volatile size_t sink = s.size();
  (void)sink;
}

void exercise_options(const GenerationOptions& o) {
  for (int i = 0; i < o.n; ++i) (void)sampling_for_choice(o, i).validate(kVocab);
}

void exercise_chat(const ChatRequest& r, std::string_view raw) {
  exercise_options(r.options);
  consume(dump_json(r.messages));
  consume(dump_json(r.tools));
  consume(dump_json(r.chat_template_kwargs));

  const ResponseMeta meta{new_response_id("chatcmpl-"), r.options.model, unix_now()};
  std::vector<std::string> texts = r.options.stop;
  texts.emplace_back(raw.substr(0, 64));
  for (const json& m : r.messages)
    if (m.at("content").is_string()) texts.push_back(m.at("content").get<std::string>());

  std::vector<ChatChoice> choices;
  for (int i = 0; i < r.options.n; ++i) {
    ChatChoice c;
    c.index = i;
    c.content = texts[static_cast<size_t>(i) % texts.size()];
    c.reasoning_content = std::string(raw.substr(raw.size() / 2));
    for (const json& tool : r.tools)
      c.tool_calls.push_back({new_response_id("call_"), tool.at("function").at("name").get<std::string>(),
                              dump_json(tool.at("function").value("parameters", json::object()))});
    if (r.logprobs) c.logprobs = logprobs_from(texts, r.top_logprobs);
    c.finish_reason = c.tool_calls.empty() ? FinishReason::kStop : FinishReason::kToolCalls;
    choices.push_back(std::move(c));
  }
  const Usage usage{static_cast<int64_t>(raw.size()), r.options.max_tokens, 0, 0};
  consume(dump_json(chat_completion(meta, choices, usage)));

  for (const ChatChoice& c : choices) {
    ChatDelta first;
    first.index = c.index;
    first.first = true;
    consume(sse_event(chat_chunk(meta, first, r.options.include_usage)));
    ChatDelta body;
    body.index = c.index;
    body.content = c.content;
    body.reasoning_content = c.reasoning_content;
    for (size_t k = 0; k < c.tool_calls.size(); ++k)
      body.tool_calls.push_back(
          {static_cast<int>(k), c.tool_calls[k].id, c.tool_calls[k].name, c.tool_calls[k].arguments});
    body.logprobs = c.logprobs;
    body.finish_reason = c.finish_reason;
    consume(sse_event(chat_chunk(meta, body, r.options.include_usage)));
  }
  consume(sse_event(chat_usage_chunk(meta, usage)));
}

void exercise_completion(const CompletionRequest& r, std::string_view raw) {
  exercise_options(r.options);
  const ResponseMeta meta{new_response_id("cmpl-"), r.options.model, unix_now()};
  std::vector<std::string> texts = r.options.stop;
  texts.push_back(r.prompt);
  texts.emplace_back(raw.substr(0, 64));
  std::vector<CompletionChoice> choices;
  for (int i = 0; i < r.options.n; ++i) {
    CompletionChoice c;
    c.index = i;
    c.text = texts[static_cast<size_t>(i) % texts.size()];
    if (r.logprobs) c.logprobs = logprobs_from(texts, *r.logprobs);
    c.text_offset = static_cast<int64_t>(r.prompt_tokens.size());
    c.finish_reason = i % 2 ? FinishReason::kLength : FinishReason::kNone;
    consume(sse_event(completion_chunk(meta, c, r.options.include_usage)));
    choices.push_back(std::move(c));
  }
  const Usage usage{static_cast<int64_t>(r.prompt_tokens.size()), r.options.max_tokens, 0, 0};
  consume(dump_json(text_completion(meta, choices, usage)));
  consume(sse_event(completion_usage_chunk(meta, usage)));
  consume(dump_json(models_list({{r.options.model, 0}})));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (auto chat = parse_chat_request(body); chat.ok()) {
    exercise_chat(chat.value(), body);
  } else {
    consume(dump_json(error_body(chat.error())));
  }
  if (auto completion = parse_completion_request(body); completion.ok()) {
    exercise_completion(completion.value(), body);
  } else {
    consume(dump_json(error_body(completion.error())));
  }
  return 0;
}
