#include "serve/generation_job.h"

#include <cmath>

#include "text/chat_prompt.h"

namespace onecard::serve {
namespace {

using Clock = std::chrono::steady_clock;

FinishReason api_reason(runtime::FinishReason r) {
  return r == runtime::FinishReason::kLength || r == runtime::FinishReason::kContextFull
             ? FinishReason::kLength
             : FinishReason::kStop;
}

// The template's variables beyond the messages: the client's chat_template_kwargs, and the tools unless
// tool_choice is "none".
json template_extra(const ChatRequest& r) {
  json extra = r.chat_template_kwargs.is_object() ? r.chat_template_kwargs : json::object();
  if (!r.tools.empty() && r.tool_choice.mode != ToolChoice::Mode::kNone) extra["tools"] = r.tools;
  return extra;
}

}  // namespace

ApiResult<std::shared_ptr<GenerationJob>> GenerationJob::create(const ServedModel& model,
                                                                const ServerOptions& server,
                                                                std::string_view body, bool chat) {
  std::shared_ptr<GenerationJob> job(new GenerationJob());
  GenerationJob& j = *job;
  j.chat_ = chat;
  j.start_ = j.last_write_ = Clock::now();
  runtime::Engine& engine = *model.engine;
  j.tokenizer_ = &engine.tokenizer();
  std::vector<int32_t> prompt;
  bool opens_reasoning = false;
  text::ToolCallFormat tools = text::ToolCallFormat::kNone;
  int logprobs = -1;
  bool split_reasoning = false;
  if (chat) {
    auto r = parse_chat_request(body);
    if (!r.ok()) return r.error();
    j.chat_request_ = std::move(r.value());
    const ChatRequest& c = *j.chat_request_;
    j.options_ = &c.options;
    if (model.chat_template == nullptr) {
      return ApiError::invalid_request("messages", "the model has no chat template: use /v1/completions");
    }
    auto rendered = text::render_chat(*model.chat_template, *j.tokenizer_, c.messages, template_extra(c));
    if (!rendered.ok()) return ApiError::invalid_request("messages", rendered.error().message());
    prompt = std::move(rendered->ids);
    opens_reasoning = rendered->opens_reasoning;
    if (!c.tools.empty() && c.tool_choice.mode != ToolChoice::Mode::kNone) tools = model.tool_format;
    if (c.logprobs) logprobs = c.top_logprobs;
    split_reasoning = c.reasoning_format.value_or(server.reasoning) == ReasoningFormat::kDeepseek;
  } else {
    auto r = parse_completion_request(body);
    if (!r.ok()) return r.error();
    j.completion_request_ = std::move(r.value());
    const CompletionRequest& c = *j.completion_request_;
    j.options_ = &c.options;
    if (c.prompt_is_tokens) {
      prompt = c.prompt_tokens;
    } else {
      text::EncodeOptions enc;
      enc.parse_special = true;
      auto ids = j.tokenizer_->encode(c.prompt, enc);
      if (!ids.ok()) return ApiError::invalid_request("prompt", ids.error().message());
      prompt = std::move(ids.value());
    }
    if (c.logprobs) logprobs = *c.logprobs;
  }
  const GenerationOptions& o = *j.options_;
  if (!o.model.empty() && o.model != model.id) {
    return ApiError{404, "invalid_request_error",
                    fmt::format("the model '{}' does not exist; this server serves '{}'", o.model, model.id),
                    "model", "model_not_found"};
  }
  if (static_cast<int>(prompt.size()) >= engine.n_ctx()) {
    return ApiError{
        400, "invalid_request_error",
        fmt::format("the prompt has {} tokens; this model's context holds {}, and at least one token "
                    "must be left to generate",
                    prompt.size(), engine.n_ctx()),
        chat ? "messages" : "prompt", "context_length_exceeded"};
  }
  j.want_logprobs_ = logprobs >= 0;
  j.meta_ = ResponseMeta{new_response_id(chat ? "chatcmpl-" : "cmpl-"), model.id, unix_now()};
  j.channel_ = std::make_shared<EventChannel>();
  j.choices_.resize(static_cast<size_t>(o.n));
  for (int i = 0; i < o.n; ++i) {
    Choice& choice = j.choices_[i];
    if (chat) choice.chat.emplace(i, split_reasoning, opens_reasoning, tools);
    runtime::GenerationRequest req;
    req.prompt = prompt;
    req.options.max_tokens = o.max_tokens;
    req.options.sampling = sampling_for_choice(o, i);
    req.options.stop = o.stop;
    req.options.ignore_eos = o.ignore_eos;
    req.logprobs = logprobs;
    req.render_special = tools != text::ToolCallFormat::kNone;
    req.on_event = [channel = j.channel_, i](const runtime::GenerationEvent& e) { channel->push(i, e); };
    runtime::Submitted sub = engine.submit(std::move(req));
    if (!sub.ok()) {
      j.cancel();
      if (sub.code == runtime::Submitted::Code::kBusy) {
        return ApiError{503, "server_busy", sub.message + "; retry later", "", "queue_full"};
      }
      if (sub.code == runtime::Submitted::Code::kStopping) {
        return ApiError{503, "server_busy", sub.message, "", "shutting_down"};
      }
      return ApiError::invalid_request("", sub.message);
    }
    j.handles_.push_back(sub.handle);
  }
  j.totals_.prompt_tokens = static_cast<int>(prompt.size());
  return job;
}

GenerationJob::~GenerationJob() {
  cancel();
}

void GenerationJob::cancel() {
  for (auto& h : handles_) h->cancel();
}

std::vector<TokenLogprob> GenerationJob::convert(const std::vector<runtime::TokenLogprob>& in) const {
  std::vector<TokenLogprob> out;
  for (const runtime::TokenLogprob& t : in) {
    TokenLogprob lp{std::string(tokenizer_->token_piece(t.token, true)), t.logprob, {}};
    for (const auto& [id, logprob] : t.top)
      lp.top.push_back({std::string(tokenizer_->token_piece(id, true)), logprob});
    out.push_back(std::move(lp));
  }
  return out;
}

std::string GenerationJob::apply(const EventChannel::Item& item) {
  Choice& c = choices_[item.choice];
  const runtime::GenerationEvent& e = item.event;
  if (!e.tokens.empty()) {
    if (!has_first_token_) first_token_ = item.at, has_first_token_ = true;
    if (c.last_token != Clock::time_point{}) {
      const double gap = std::chrono::duration<double>(item.at - c.last_token).count();
      for (size_t k = 0; k < e.tokens.size(); ++k)
        token_gaps_.push_back(gap / static_cast<double>(e.tokens.size()));
    }
    c.last_token = item.at;
  }
  const bool stream = options_->stream;
  const bool usage_null = options_->include_usage;
  std::optional<std::vector<TokenLogprob>> lp;
  if (want_logprobs_) {
    lp = convert(e.logprobs);
    if (!stream) c.logprobs.insert(c.logprobs.end(), lp->begin(), lp->end());
  }
  std::string out;
  if (chat_) {
    ChatDelta d = c.chat->feed(e.text, static_cast<int>(e.tokens.size()));
    d.logprobs = lp;
    const bool has = d.first || !d.content.empty() || !d.reasoning_content.empty() || !d.tool_calls.empty() ||
                     (lp && !lp->empty());
    if (stream && has) out += sse_event(chat_chunk(meta_, d, usage_null));
  } else {
    if (stream && (!e.text.empty() || (lp && !lp->empty()))) {
      CompletionChoice ch{item.choice, e.text, lp, static_cast<int64_t>(c.text.size()), FinishReason::kNone};
      out += sse_event(completion_chunk(meta_, ch, usage_null));
    }
    c.text += e.text;
  }
  if (!e.done) return out;

  c.done = true;
  ++done_;
  if (!e.error.empty()) error_ = e.error;
  c.finish = api_reason(e.finish);
  totals_.completion_tokens += e.usage.completion_tokens;
  if (item.choice == 0) totals_.cached_tokens = e.usage.cached_tokens;
  if (chat_) {
    ChatDelta d = c.chat->finish(c.finish);
    c.finish = d.finish_reason;
    totals_.reasoning_tokens += c.chat->reasoning_tokens();
    if (stream) out += sse_event(chat_chunk(meta_, d, usage_null));
  } else if (stream) {
    CompletionChoice ch{item.choice, "", std::nullopt, static_cast<int64_t>(c.text.size()), c.finish};
    out += sse_event(completion_chunk(meta_, ch, usage_null));
  }
  return out;
}

std::string GenerationJob::stream_end() {
  std::string out;
  if (!error_.empty()) out += sse_event(error_body(ApiError{500, "server_error", error_, "", ""}));
  const Usage usage{totals_.prompt_tokens, totals_.completion_tokens, totals_.cached_tokens,
                    totals_.reasoning_tokens};
  if (options_->include_usage)
    out += sse_event(chat_ ? chat_usage_chunk(meta_, usage) : completion_usage_chunk(meta_, usage));
  out += sse_done();
  return out;
}

bool GenerationJob::next_text(std::string& out) {
  if (ended_) return true;
  for (const EventChannel::Item& item : channel_->take(std::chrono::milliseconds(100))) out += apply(item);
  if (all_done()) {
    out += options_->stream ? stream_end() : dump_json(whole_body());
    ended_ = true;
  }
  const auto now = Clock::now();
  if (out.empty() && now - last_write_ > std::chrono::seconds(1))
    out = options_->stream ? ": keep-alive\n\n" : " ";
  if (!out.empty()) last_write_ = now;
  return ended_;
}

json GenerationJob::whole_body() const {
  if (!error_.empty()) return error_body(ApiError{500, "server_error", error_, "", ""});
  const Usage usage{totals_.prompt_tokens, totals_.completion_tokens, totals_.cached_tokens,
                    totals_.reasoning_tokens};
  if (chat_) {
    std::vector<ChatChoice> out;
    for (const Choice& c : choices_) {
      ChatChoice choice = c.chat->choice();
      if (want_logprobs_) choice.logprobs = c.logprobs;
      out.push_back(std::move(choice));
    }
    return chat_completion(meta_, out, usage);
  }
  std::vector<CompletionChoice> out;
  for (size_t i = 0; i < choices_.size(); ++i) {
    const Choice& c = choices_[i];
    std::optional<std::vector<TokenLogprob>> lp;
    if (want_logprobs_) lp = c.logprobs;
    out.push_back({static_cast<int>(i), c.text, lp, 0, c.finish});
  }
  return text_completion(meta_, out, usage);
}

void GenerationJob::record(ServerMetrics& m) {
  if (recorded_) return;
  recorded_ = true;
  m.prompt_tokens.inc(totals_.prompt_tokens);
  m.generated_tokens.inc(totals_.completion_tokens);
  m.prefix_cache_hit_tokens.inc(totals_.cached_tokens);
  if (has_first_token_)
    m.time_to_first_token.observe(std::chrono::duration<double>(first_token_ - start_).count());
  for (double g : token_gaps_) m.inter_token_latency.observe(g);
  m.request_duration.observe(std::chrono::duration<double>(Clock::now() - start_).count());
}

}  // namespace onecard::serve
