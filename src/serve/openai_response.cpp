#include "serve/openai_response.h"

#include <chrono>
#include <cmath>

#include "base/random_id.h"

namespace onecard::serve {
namespace {

// OpenAI writes -9999.0 for a token the model gave no probability; JSON has no -inf.
double json_logprob(float logprob) {
  return std::isfinite(logprob) ? static_cast<double>(logprob) : -9999.0;
}

json token_bytes(const std::string& token) {
  json bytes = json::array();
  for (const char c : token) bytes.push_back(static_cast<unsigned char>(c));
  return bytes;
}

json null_if_empty(const std::string& s) {
  return s.empty() ? json(nullptr) : json(s);
}

json finish_reason_json(FinishReason reason) {
  return reason == FinishReason::kNone ? json(nullptr) : json(finish_reason_name(reason));
}

json logprobs_or_null(const std::optional<std::vector<TokenLogprob>>& logprobs) {
  return logprobs ? chat_logprobs(*logprobs) : json(nullptr);
}

json head(const ResponseMeta& meta, std::string_view object) {
  json out = json::object();
  out["id"] = meta.id;
  out["object"] = object;
  out["created"] = meta.created;
  out["model"] = meta.model;
  return out;
}

json chat_message(const ChatChoice& choice) {
  json message = json::object();
  message["role"] = "assistant";
  // OpenAI's content is null when the answer is only tool calls.
  message["content"] =
      choice.content.empty() && !choice.tool_calls.empty() ? json(nullptr) : json(choice.content);
  if (!choice.reasoning_content.empty()) message["reasoning_content"] = choice.reasoning_content;
  if (!choice.tool_calls.empty()) {
    json calls = json::array();
    for (const ToolCall& call : choice.tool_calls)
      calls.push_back(json{{"id", call.id},
                           {"type", "function"},
                           {"function", json{{"name", call.name}, {"arguments", call.arguments}}}});
    message["tool_calls"] = std::move(calls);
  }
  return message;
}

json chat_delta(const ChatDelta& d) {
  json delta = json::object();
  if (d.first) delta["role"] = "assistant";
  if (d.first || !d.content.empty()) delta["content"] = d.content;
  if (!d.reasoning_content.empty()) delta["reasoning_content"] = d.reasoning_content;
  if (!d.tool_calls.empty()) {
    json calls = json::array();
    for (const ToolCallDelta& call : d.tool_calls) {
      json entry = json::object();
      entry["index"] = call.index;
      if (!call.id.empty()) {
        entry["id"] = call.id;
        entry["type"] = "function";
      }
      json function = json::object();
      if (!call.name.empty()) function["name"] = call.name;
      function["arguments"] = call.arguments;
      entry["function"] = std::move(function);
      calls.push_back(std::move(entry));
    }
    delta["tool_calls"] = std::move(calls);
  }
  return delta;
}

// The last chunk of a stream that asked for usage: no choices.
json usage_chunk(const ResponseMeta& meta, std::string_view object, const Usage& usage) {
  json out = head(meta, object);
  out["choices"] = json::array();
  out["usage"] = usage_json(usage);
  return out;
}

json completion_choice(const CompletionChoice& c) {
  json choice = json::object();
  choice["index"] = c.index;
  choice["text"] = c.text;
  choice["logprobs"] = c.logprobs ? completion_logprobs(*c.logprobs, c.text_offset) : json(nullptr);
  choice["finish_reason"] = finish_reason_json(c.finish_reason);
  return choice;
}

}  // namespace

std::string_view finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kToolCalls:
      return "tool_calls";
    case FinishReason::kNone:
      break;
  }
  return "";
}

std::string new_response_id(std::string_view prefix) {
  return random_id(prefix);
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

json chat_logprobs(const std::vector<TokenLogprob>& tokens) {
  json content = json::array();
  for (const TokenLogprob& t : tokens) {
    json top = json::array();
    for (const TopLogprob& alt : t.top)
      top.push_back(json{
          {"token", alt.token}, {"logprob", json_logprob(alt.logprob)}, {"bytes", token_bytes(alt.token)}});
    content.push_back(json{{"token", t.token},
                           {"logprob", json_logprob(t.logprob)},
                           {"bytes", token_bytes(t.token)},
                           {"top_logprobs", std::move(top)}});
  }
  return json{{"content", std::move(content)}, {"refusal", nullptr}};
}

json completion_logprobs(const std::vector<TokenLogprob>& tokens, int64_t text_offset) {
  json texts = json::array();
  json logprobs = json::array();
  json tops = json::array();
  json offsets = json::array();
  for (const TokenLogprob& t : tokens) {
    texts.push_back(t.token);
    logprobs.push_back(json_logprob(t.logprob));
    json top = json::object();
    for (const TopLogprob& alt : t.top) top[alt.token] = json_logprob(alt.logprob);
    tops.push_back(std::move(top));
    offsets.push_back(text_offset);
    text_offset += static_cast<int64_t>(t.token.size());
  }
  return json{{"tokens", std::move(texts)},
              {"token_logprobs", std::move(logprobs)},
              {"top_logprobs", std::move(tops)},
              {"text_offset", std::move(offsets)}};
}

json usage_json(const Usage& usage) {
  return json{{"prompt_tokens", usage.prompt_tokens},
              {"completion_tokens", usage.completion_tokens},
              {"total_tokens", usage.prompt_tokens + usage.completion_tokens},
              {"prompt_tokens_details", json{{"cached_tokens", usage.cached_tokens}}},
              {"completion_tokens_details", json{{"reasoning_tokens", usage.reasoning_tokens}}}};
}

json chat_completion(const ResponseMeta& meta, const std::vector<ChatChoice>& choices, const Usage& usage) {
  json out = head(meta, "chat.completion");
  json list = json::array();
  for (const ChatChoice& c : choices) {
    json choice = json::object();
    choice["index"] = c.index;
    choice["message"] = chat_message(c);
    choice["logprobs"] = logprobs_or_null(c.logprobs);
    choice["finish_reason"] = finish_reason_json(c.finish_reason);
    list.push_back(std::move(choice));
  }
  out["choices"] = std::move(list);
  out["usage"] = usage_json(usage);
  return out;
}

json chat_chunk(const ResponseMeta& meta, const ChatDelta& delta, bool usage_null) {
  json out = head(meta, "chat.completion.chunk");
  json choice = json::object();
  choice["index"] = delta.index;
  choice["delta"] = chat_delta(delta);
  choice["logprobs"] = logprobs_or_null(delta.logprobs);
  choice["finish_reason"] = finish_reason_json(delta.finish_reason);
  out["choices"] = json::array({std::move(choice)});
  if (usage_null) out["usage"] = nullptr;
  return out;
}

json chat_usage_chunk(const ResponseMeta& meta, const Usage& usage) {
  return usage_chunk(meta, "chat.completion.chunk", usage);
}

json text_completion(const ResponseMeta& meta, const std::vector<CompletionChoice>& choices,
                     const Usage& usage) {
  json out = head(meta, "text_completion");
  json list = json::array();
  for (const CompletionChoice& c : choices) list.push_back(completion_choice(c));
  out["choices"] = std::move(list);
  out["usage"] = usage_json(usage);
  return out;
}

json completion_chunk(const ResponseMeta& meta, const CompletionChoice& choice, bool usage_null) {
  json out = head(meta, "text_completion");
  out["choices"] = json::array({completion_choice(choice)});
  if (usage_null) out["usage"] = nullptr;
  return out;
}

json completion_usage_chunk(const ResponseMeta& meta, const Usage& usage) {
  return usage_chunk(meta, "text_completion", usage);
}

json error_body(const ApiError& error) {
  return json{{"error", json{{"message", error.message},
                             {"type", error.type},
                             {"param", null_if_empty(error.param)},
                             {"code", null_if_empty(error.code)}}}};
}

json models_list(const std::vector<ModelInfo>& models) {
  json data = json::array();
  for (const ModelInfo& m : models)
    data.push_back(json{{"id", m.id}, {"object", "model"}, {"created", m.created}, {"owned_by", "onecard"}});
  return json{{"object", "list"}, {"data", std::move(data)}};
}

std::string dump_json(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string sse_event(const json& value) {
  std::string event = "data: ";
  event += dump_json(value);
  event += "\n\n";
  return event;
}

std::string_view sse_done() {
  return "data: [DONE]\n\n";
}

}  // namespace onecard::serve
