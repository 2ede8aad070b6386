// The requests of the OpenAI-compatible API (/v1/chat/completions and /v1/completions): parsing a body into
// plain structs, with every field checked. What is accepted follows OpenAI's API as DeepSeek's API, vLLM
// and llama.cpp's server take it; a field of the wrong type or out of range is a 400 whose `param` names the
// field (`messages[2].role`) and whose message says what was expected and what was found. Unknown fields are
// ignored, as OpenAI-compatible servers do, so that clients written for other servers keep working. A JSON
// null counts as an absent field. Parsing never throws, whatever the bytes.
//
// Choices made where the servers differ:
// - max_tokens / max_completion_tokens absent or null: generate until the context ends (-1), on both
//   endpoints (the legacy completions default of 16 is not followed). Both given: max_completion_tokens.
// - No seed (or seed -1, llama.cpp's "random"): a random one from std::random_device, so that n > 1
//   choices differ; choice i of n samples with seed + i (see sampling_for_choice).
// - logit_bias -100 bans the token outright (OpenAI: "should result in a ban"); other values are added.
// - Empty stop strings are dropped (they cannot mean anything).
// - Content parts: only {type:"text"} parts, joined with "\n" (as vLLM joins them); any other part type is a
//   400 naming the part.
// - Completions: one prompt per request (an array of several is a 400); echo true, a non-empty suffix and a
//   best_of other than n are 400s, since they are not implemented.
// - response_format other than {type:"text"} is a 400: the engine has no constrained decoding.
// - Bodies nested deeper than kMaxJsonDepth are a 400, so that copying and rendering them cannot exhaust
//   the stack.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "sample/sampler.h"

namespace onecard::serve {

using json = nlohmann::ordered_json;

inline constexpr int kMaxJsonDepth = 64;
inline constexpr int kMaxChoices = 16;
inline constexpr int kMaxStopStrings = 16;
inline constexpr int kMaxTopLogprobs = 20;

// An OpenAI-style error: the HTTP status and the body's error object (see openai_response.h: error_body).
// `param` and `code` are empty when they do not apply (they are written as null).
struct ApiError {
  int status = 400;
  std::string type = "invalid_request_error";  // invalid_request_error, not_found_error, server_error, ...
  std::string message;
  std::string param;
  std::string code;

  static ApiError invalid_request(std::string param, std::string message) {
    return ApiError{400, "invalid_request_error", std::move(message), std::move(param), ""};
  }
};

// A request or the error that rejects it. onecard's Result carries only a message; an API error also needs
// a status and the field, hence this small variant with the same ok()/value()/error() shape. value() of an
// error (or error() of a value) is a programming error and throws std::bad_variant_access.
template <class T>
class [[nodiscard]] ApiResult {
 public:
  ApiResult(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design, as Result
  ApiResult(ApiError error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const ApiError& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, ApiError> v_;
};

// What both endpoints share: the model, the length, the sampling and the stream settings.
struct GenerationOptions {
  std::string model;        // as the client sent it; empty when absent
  int32_t max_tokens = -1;  // -1: until the context ends
  // OpenAI's defaults, not the sampler's: temperature 1, top_p 1, top_k 0 (off), min_p 0, no penalties.
  // `seed` is the client's or a random one; see sampling_for_choice.
  sample::SamplingParams sampling = openai_default_sampling();
  bool seed_from_client = false;
  std::vector<std::string> stop;
  int n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool ignore_eos = false;     // vLLM's and llama.cpp's extension, used by benchmarks
  std::string user;

  static sample::SamplingParams openai_default_sampling();
};

// The sampling of choice `index` of n: the request's, with seed + index, so that the choices differ and a
// request with a seed is reproducible.
sample::SamplingParams sampling_for_choice(const GenerationOptions& options, int index);

enum class ReasoningFormat {
  kDeepseek,  // the thinking goes to reasoning_content (the default; "auto" means this too)
  kNone,      // the thinking stays in content, tags and all
};

struct ToolChoice {
  enum class Mode { kNone, kAuto, kRequired, kFunction };
  Mode mode = Mode::kAuto;
  std::string function;  // kFunction: the name of the tool to call
};

struct ChatRequest {
  GenerationOptions options;
  // The messages, normalised for a chat template: each {role, content, [name], [tool_calls],
  // [reasoning_content], [tool_call_id]}, role one of system/user/assistant/tool (developer becomes system),
  // content a string (content parts joined), except null on an assistant message that has tool_calls and no
  // text (DeepSeek's templates test `content is none` there). tool_calls are
  // [{id, type:"function", function:{name, arguments (a string)}}].
  json messages = json::array();
  json tools = json::array();  // [{type:"function", function:{name, [description], [parameters]}}]
  ToolChoice tool_choice;
  bool parallel_tool_calls = true;
  bool logprobs = false;
  int top_logprobs = 0;  // 0..kMaxTopLogprobs alternatives per token; only with logprobs
  std::optional<ReasoningFormat> reasoning_format;  // absent: the server's --reasoning-format
  json chat_template_kwargs = json::object();  // extra template variables: enable_thinking, thinking, ...
};

struct CompletionRequest {
  GenerationOptions options;
  // Exactly one of the two: the prompt as text, or as token ids (checked against the vocabulary later).
  std::string prompt;
  std::vector<int32_t> prompt_tokens;
  bool prompt_is_tokens = false;
  std::optional<int> logprobs;  // absent: none; k: the chosen token's logprob and k alternatives (0..20)
};

ApiResult<ChatRequest> parse_chat_request(std::string_view body);
ApiResult<CompletionRequest> parse_completion_request(std::string_view body);

}  // namespace onecard::serve
