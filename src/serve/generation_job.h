// One /v1/chat/completions or /v1/completions request from its body to its answer: parsing, the prompt
// (chat template or text), one engine request per choice, and the events turned into OpenAI JSON: whole, or
// as Server-Sent Events chunk by chunk. Shared by the HTTP handler and its stream, which may outlive each
// other (a client can vanish at any point), hence shared_ptr.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "serve/choice_stream.h"
#include "serve/event_channel.h"
#include "serve/metrics.h"
#include "serve/openai_request.h"
#include "serve/openai_response.h"
#include "serve/server.h"

namespace onecard::serve {

class GenerationJob {
 public:
  struct Totals {
    int prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0, reasoning_tokens = 0;
  };

  // Parses and submits. Errors: 400 (bad request, prompt over the context), 404 (unknown model), 503 (the
  // queue is full).
  static ApiResult<std::shared_ptr<GenerationJob>> create(const ServedModel& model,
                                                          const ServerOptions& server, std::string_view body,
                                                          bool chat);
  ~GenerationJob();

  bool streaming() const { return options_->stream; }
  // Waits briefly for events and appends what the client gets next to `out`: streamed, the SSE chunks they
  // make; whole, the response JSON once every choice is done. After a quiet while it appends a keep-alive (an
  // SSE comment, or a space before the JSON), so that a vanished client is noticed. True when the answer is
  // complete, a stream then ending with `data: [DONE]`.
  bool next_text(std::string& out);
  // Ends every choice at the engine's next step.
  void cancel();

  Totals totals() const { return totals_; }
  // Adds this request to the metrics (once; later calls do nothing).
  void record(ServerMetrics& metrics);

 private:
  GenerationJob() = default;
  struct Choice {
    std::optional<ChoiceStream> chat;  // chat requests
    std::string text;                  // completions: the text so far
    int64_t text_offset = 0;
    std::vector<TokenLogprob> logprobs;
    FinishReason finish = FinishReason::kStop;
    bool done = false;
    std::chrono::steady_clock::time_point last_token;
  };
  std::vector<TokenLogprob> convert(const std::vector<runtime::TokenLogprob>& in) const;
  // Applies one event; streamed, the SSE text it makes.
  std::string apply(const EventChannel::Item& item);
  std::string stream_end();
  json whole_body() const;
  bool all_done() const { return done_ == static_cast<int>(choices_.size()); }

  bool chat_ = true;
  const GenerationOptions* options_ = nullptr;
  std::optional<ChatRequest> chat_request_;
  std::optional<CompletionRequest> completion_request_;
  const text::Tokenizer* tokenizer_ = nullptr;
  bool want_logprobs_ = false;
  ResponseMeta meta_;
  std::shared_ptr<EventChannel> channel_;
  std::vector<std::shared_ptr<runtime::RequestHandle>> handles_;
  std::vector<Choice> choices_;
  int done_ = 0;
  std::string error_;
  Totals totals_;
  std::chrono::steady_clock::time_point start_, first_token_, last_write_;
  bool has_first_token_ = false;
  std::vector<double> token_gaps_;
  bool recorded_ = false;
  bool ended_ = false;
};

}  // namespace onecard::serve
