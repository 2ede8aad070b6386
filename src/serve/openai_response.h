// The responses of the OpenAI-compatible API, built from plain structs that know nothing of the engine:
// chat.completion and its streamed chat.completion.chunk, text_completion (whole and streamed), logprobs in
// the chat and in the legacy completion shape, the error body, the model list, and Server-Sent Events.
// Field names and nesting are OpenAI's, as its official clients parse them.
//
// Generated text may hold invalid UTF-8 (a token can end inside a character): serialise with dump_json or
// sse_event, which replace such bytes with U+FFFD instead of throwing as nlohmann's plain dump() does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "serve/openai_request.h"

namespace onecard::serve {

enum class FinishReason {
  kNone,  // not finished yet: a streamed chunk in the middle (written as null)
  kStop,  // an end-of-sequence token or a stop string
  kLength,
  kToolCalls,
};
std::string_view finish_reason_name(FinishReason reason);  // "stop", "length", "tool_calls"; "" for kNone

// The first fields of every response object.
struct ResponseMeta {
  std::string id;  // "chatcmpl-..." or "cmpl-..." (see new_response_id)
  std::string model;
  int64_t created = 0;  // Unix seconds (see unix_now)
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;  // reasoning tokens included, as OpenAI counts them
  int64_t cached_tokens = 0;      // prompt tokens served from the prefix cache
  int64_t reasoning_tokens = 0;   // completion tokens spent in the thinking
};

// One alternative at a position. `token` is the token's text, bytes and all (it may be part of a
// character); the `bytes` field of the chat shape is derived from it.
struct TopLogprob {
  std::string token;
  float logprob = 0;
};

// The chosen token at a position and the best alternatives. -inf (and NaN) are written as -9999, OpenAI's
// stand-in, since JSON has no infinities.
struct TokenLogprob {
  std::string token;
  float logprob = 0;
  std::vector<TopLogprob> top;
};

struct ToolCall {
  std::string id;  // "call_..." (see new_response_id)
  std::string name;
  std::string arguments;  // JSON text, as the model wrote it
};

struct ChatChoice {
  int index = 0;
  std::string content;            // written as null when empty and there are tool calls
  std::string reasoning_content;  // omitted when empty
  std::vector<ToolCall> tool_calls;
  std::optional<std::vector<TokenLogprob>> logprobs;  // nullopt: not requested (null)
  FinishReason finish_reason = FinishReason::kStop;
};

// A piece of a streamed tool call, as OpenAI streams them: the first piece of call `index` carries its id
// and name, later ones only more of the arguments.
struct ToolCallDelta {
  int index = 0;
  std::string id;         // omitted when empty
  std::string name;       // omitted when empty
  std::string arguments;  // always written, possibly ""
};

struct ChatDelta {
  int index = 0;
  // The first chunk of a choice: delta {role:"assistant", content:""} plus whatever else is set.
  bool first = false;
  std::string content;            // omitted when empty (unless first)
  std::string reasoning_content;  // omitted when empty
  std::vector<ToolCallDelta> tool_calls;
  std::optional<std::vector<TokenLogprob>> logprobs;
  FinishReason finish_reason = FinishReason::kNone;
};

struct CompletionChoice {
  int index = 0;
  std::string text;
  std::optional<std::vector<TokenLogprob>> logprobs;
  // The text_offset of the first token: where this text starts in the choice's whole text (streamed chunks
  // continue from the previous chunk's end).
  int64_t text_offset = 0;
  FinishReason finish_reason = FinishReason::kStop;  // kNone in the middle of a stream
};

struct ModelInfo {
  std::string id;
  int64_t created = 0;
};

// `prefix` + 24 random alphanumerics: new_response_id("chatcmpl-"), ("cmpl-"), ("call_") as OpenAI's ids.
std::string new_response_id(std::string_view prefix);
int64_t unix_now();

// Logprobs in the chat shape: {content:[{token, logprob, bytes, top_logprobs:[{token, logprob, bytes}]}],
// refusal:null}.
json chat_logprobs(const std::vector<TokenLogprob>& tokens);
// In the completion shape: {tokens, token_logprobs, top_logprobs:[{token: logprob}], text_offset}, the
// offsets counted in bytes from `text_offset`.
json completion_logprobs(const std::vector<TokenLogprob>& tokens, int64_t text_offset);

json usage_json(const Usage& usage);

// object "chat.completion".
json chat_completion(const ResponseMeta& meta, const std::vector<ChatChoice>& choices, const Usage& usage);
// object "chat.completion.chunk" with one choice. `usage_null`: the stream asked for usage, so this chunk
// says `usage: null` (the usage comes in chat_usage_chunk, after the last choice chunk).
json chat_chunk(const ResponseMeta& meta, const ChatDelta& delta, bool usage_null);
// The final chunk of a stream with include_usage: empty choices and the usage.
json chat_usage_chunk(const ResponseMeta& meta, const Usage& usage);

// object "text_completion", whole and streamed (OpenAI streams the same object name).
json text_completion(const ResponseMeta& meta, const std::vector<CompletionChoice>& choices,
                     const Usage& usage);
json completion_chunk(const ResponseMeta& meta, const CompletionChoice& choice, bool usage_null);
json completion_usage_chunk(const ResponseMeta& meta, const Usage& usage);

// {"error":{"message","type","param","code"}}, param and code null when empty.
json error_body(const ApiError& error);

// GET /v1/models: {object:"list", data:[{id, object:"model", created, owned_by:"onecard"}]}.
json models_list(const std::vector<ModelInfo>& models);

// Compact JSON text; invalid UTF-8 becomes U+FFFD.
std::string dump_json(const json& value);
// "data: {...}\n\n".
std::string sse_event(const json& value);
// "data: [DONE]\n\n", the end of a stream.
std::string_view sse_done();

}  // namespace onecard::serve
