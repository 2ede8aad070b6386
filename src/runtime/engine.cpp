#include "runtime/engine.h"

#include <algorithm>
#include <cmath>

#include "base/log.h"
#include "sample/stop.h"
#include "text/detokenizer.h"

namespace onecard::runtime {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The sampled token's log-probability and the k most likely tokens', from the raw logits.
TokenLogprob token_logprobs(const float* logits, int32_t n_vocab, int32_t chosen, int k) {
  const float mx = *std::max_element(logits, logits + n_vocab);
  double z = 0;
  for (int32_t v = 0; v < n_vocab; ++v) z += std::exp(static_cast<double>(logits[v] - mx));
  const float log_z = static_cast<float>(std::log(z)) + mx;
  TokenLogprob out;
  out.token = chosen;
  out.logprob = logits[chosen] - log_z;
  if (k > 0) {
    std::vector<int32_t> ids(static_cast<size_t>(n_vocab));
    for (int32_t v = 0; v < n_vocab; ++v) ids[v] = v;
    const int n = std::min(k, n_vocab);
    std::partial_sort(ids.begin(), ids.begin() + n, ids.end(), [&](int32_t a, int32_t b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    for (int i = 0; i < n; ++i) out.top.emplace_back(ids[i], logits[ids[i]] - log_z);
  }
  return out;
}

}  // namespace

std::string_view finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kContextFull:
      return "context";
    case FinishReason::kCancelled:
      return "cancelled";
  }
  return "stop";
}

struct Engine::Sequence {
  Sequence(GenerationRequest r, std::shared_ptr<RequestHandle> h, const text::Tokenizer& tok, int32_t n_vocab)
      : req(std::move(r)),
        handle(std::move(h)),
        tokens(req.prompt),
        sampler(req.options.sampling, n_vocab),
        stops(req.options.stop),
        decoder(tok, req.render_special) {}

  GenerationRequest req;
  std::shared_ptr<RequestHandle> handle;
  std::vector<int32_t> tokens;  // the prompt, then every sampled token; the first n_cached are in the cache
  int n_cached = 0;
  int generated = 0;
  int reused = 0;        // prompt tokens found in the prefix cache
  int reserved = 0;      // pages it may still allocate
  int32_t pending = -1;  // a sampled token to evaluate in the next step
  std::vector<int32_t> pages;
  uint64_t parent_hash = KvPool::kRootHash;  // the hash of the last published page
  int published = 0;                         // pages published
  sample::Sampler sampler;
  sample::StopMatcher stops;
  text::StreamDecoder decoder;
  GenerationEvent event;  // what this step has for the client
  bool admitted = false;
  bool done = false;

  int n_prompt() const { return static_cast<int>(req.prompt.size()); }
  bool prefilling() const { return n_cached < n_prompt(); }
};

Engine::Engine(model::DeepSeek2& model, const text::Tokenizer& tokenizer, const EngineOptions& options)
    : model_(model),
      tokenizer_(tokenizer),
      options_(options),
      pool_(model.hparams(), std::max(1, options.page_tokens),
            options.kv_pages > 0
                ? options.kv_pages
                : std::max(1, options.parallel) * ((model.n_ctx() + std::max(1, options.page_tokens) - 1) /
                                                   std::max(1, options.page_tokens)),
            options.kv_type, model.kv_backend()) {
  options_.parallel = std::max(1, options_.parallel);
  options_.page_tokens = pool_.page_tokens();
  options_.kv_pages = pool_.n_pages();
  if (options_.prefill_chunk <= 0) options_.prefill_chunk = model.n_batch();
  view_.pages = &pool_.pages();
  totals_.pages_total = totals_.pages_free = pool_.n_pages();
  log::info("KV cache: {} pages of {} tokens in {} ({} tokens, {:.1f} MiB), {} sequences at once",
            pool_.n_pages(), pool_.page_tokens(), model::kv_type_name(options_.kv_type),
            pool_.n_pages() * pool_.page_tokens(), static_cast<double>(pool_.pages().bytes()) / 1048576.0,
            options_.parallel);
}

Engine::~Engine() {
  stop();
}

int Engine::max_positions() const {
  return std::min(n_ctx(), pool_.n_pages() * pool_.page_tokens());
}

int Engine::pages_for(int positions) const {
  return (positions + pool_.page_tokens() - 1) / pool_.page_tokens();
}

Submitted Engine::submit(GenerationRequest request) {
  Submitted out;
  const int n_prompt = static_cast<int>(request.prompt.size());
  auto invalid = [&out](std::string message) {
    out.code = Submitted::Code::kInvalid;
    out.message = std::move(message);
    return out;
  };
  if (n_prompt == 0) return invalid("the prompt is empty");
  if (n_prompt >= max_positions()) {
    return invalid(fmt::format(
        "the prompt has {} tokens, the context holds {} (leave room to generate; raise --ctx-size)", n_prompt,
        max_positions()));
  }
  for (int32_t t : request.prompt) {
    if (t < 0 || t >= tokenizer_.n_vocab()) {
      return invalid(
          fmt::format("prompt token {} is outside the vocabulary (0..{})", t, tokenizer_.n_vocab() - 1));
    }
  }
  if (auto st = request.options.sampling.validate(tokenizer_.n_vocab()); !st.ok())
    return invalid(st.error().message());
  if (request.logprobs > 20) return invalid(fmt::format("logprobs {} is above 20", request.logprobs));
  std::lock_guard lock(mu_);
  if (!admitting_) {
    out.code = Submitted::Code::kStopping;
    out.message = "the server is shutting down";
    return out;
  }
  if (waiting_count_.load() >= options_.max_queue) {
    out.code = Submitted::Code::kBusy;
    out.message = fmt::format("the queue is full ({} requests waiting)", options_.max_queue);
    return out;
  }
  out.handle = std::shared_ptr<RequestHandle>(new RequestHandle(next_id_++));
  incoming_.push_back(
      std::make_unique<Sequence>(std::move(request), out.handle, tokenizer_, tokenizer_.n_vocab()));
  waiting_count_.fetch_add(1);
  work_cv_.notify_one();
  return out;
}

void Engine::take_incoming() {
  std::lock_guard lock(mu_);
  while (!incoming_.empty()) {
    waiting_.push_back(std::move(incoming_.front()));
    incoming_.pop_front();
  }
  if (cancel_all_) {
    for (auto& s : waiting_) s->handle->cancel();
    for (auto& s : running_) s->handle->cancel();
  }
}

void Engine::admit() {
  // Cancelled requests that never ran leave the queue first.
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if ((*it)->handle->cancelled()) {
      finish(**it, FinishReason::kCancelled);
      if ((*it)->req.on_event) (*it)->req.on_event((*it)->event);
      it = waiting_.erase(it);
      waiting_count_.fetch_sub(1);
    } else {
      ++it;
    }
  }
  while (!waiting_.empty() && static_cast<int>(running_.size()) < options_.parallel) {
    Sequence& s = *waiting_.front();
    const int max_tokens = s.req.options.max_tokens;
    const int positions =
        max_tokens < 0 ? max_positions() : std::min(max_positions(), s.n_prompt() + max_tokens);
    const int need = pages_for(positions);
    KvPool::Match m = pool_.match(s.req.prompt, s.n_prompt() - 1);
    const int more = need - static_cast<int>(m.pages.size());
    if (more > pool_.n_available() - reserved_) {
      release_pages(m.pages);
      break;  // in order: the head of the queue waits for pages rather than being overtaken
    }
    s.pages = std::move(m.pages);
    s.n_cached = s.reused = m.tokens;
    s.reserved = std::max(0, more);
    s.admitted = true;
    reserved_ += s.reserved;
    for (int32_t t : s.req.prompt) s.sampler.accept(t);
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
    waiting_count_.fetch_sub(1);
    running_count_.fetch_add(1);
  }
}

void Engine::release_pages(const std::vector<int32_t>& pages) {
  // Last page first: the start of a chain becomes idle last and so is evicted last, and a chain can only be
  // found from its start.
  for (auto it = pages.rbegin(); it != pages.rend(); ++it) pool_.release(*it);
}

void Engine::publish_full_pages(Sequence& s) {
  const int p = pool_.page_tokens();
  while (s.published < s.n_cached / p) {
    const std::span<const int32_t> toks(s.tokens.data() + static_cast<size_t>(s.published) * p,
                                        static_cast<size_t>(p));
    s.parent_hash = pool_.publish(s.pages[s.published], s.parent_hash, toks);
    ++s.published;
  }
}

void Engine::finish(Sequence& s, FinishReason why, const std::string& error) {
  if (!s.stops.stopped() && error.empty()) {
    s.event.text += s.stops.feed(s.decoder.flush());
    s.event.text += s.stops.flush();
  }
  publish_full_pages(s);
  const int p = pool_.page_tokens();
  const int tail = s.n_cached - s.published * p;
  if (tail > 0 && error.empty()) {
    pool_.publish(s.pages[s.published], s.parent_hash,
                  std::span<const int32_t>(s.tokens.data() + static_cast<size_t>(s.published) * p,
                                           static_cast<size_t>(tail)));
  }
  release_pages(s.pages);
  s.pages.clear();
  reserved_ -= s.reserved;
  s.reserved = 0;
  s.done = true;
  s.event.done = true;
  s.event.finish = why;
  s.event.error = error;
  s.event.usage = {s.n_prompt(), s.reused, s.generated};
  s.event.cached_positions = s.n_cached;
  {
    std::lock_guard lock(mu_);
    if (s.admitted) totals_.prompt_tokens += static_cast<uint64_t>(s.n_prompt());
    totals_.cached_prompt_tokens += static_cast<uint64_t>(s.reused);
    totals_.generated_tokens += static_cast<uint64_t>(s.generated);
  }
}

void Engine::sample_next(Sequence& s, const float* logits) {
  const GenerateOptions& o = s.req.options;
  if (o.max_tokens >= 0 && s.generated >= o.max_tokens) return finish(s, FinishReason::kLength);
  const int32_t id = s.sampler.sample(logits);
  if (s.req.logprobs >= 0)
    s.event.logprobs.push_back(token_logprobs(logits, tokenizer_.n_vocab(), id, s.req.logprobs));
  if (!o.ignore_eos && tokenizer_.is_eog(id)) return finish(s, FinishReason::kStop);
  ++s.generated;
  s.event.tokens.push_back(id);
  s.event.text += s.stops.feed(s.decoder.push(id));
  // The token that completed a stop string is not evaluated: the cache ends before it.
  if (s.stops.stopped()) return finish(s, FinishReason::kStop);
  if (o.max_tokens >= 0 && s.generated >= o.max_tokens) return finish(s, FinishReason::kLength);
  if (s.n_cached >= max_positions()) return finish(s, FinishReason::kContextFull);
  s.tokens.push_back(id);
  s.pending = id;
}

bool Engine::run_batch() {
  batch_.clear();
  batch_owner_.clear();
  view_.tables.clear();
  const int p = pool_.page_tokens();
  std::vector<int> counts(running_.size(), 0);
  auto add = [&](size_t seq, int32_t token, bool logits) -> bool {
    Sequence& s = *running_[seq];
    const int pos = s.n_cached + counts[seq]++;
    if (pos / p >= static_cast<int>(s.pages.size())) {
      const int32_t page = pool_.allocate();
      if (page < 0) return false;
      s.pages.push_back(page);
      if (s.reserved > 0) --s.reserved, --reserved_;
    }
    batch_.push_back({token, pos, static_cast<int32_t>(seq), logits});
    batch_owner_.push_back(&s);
    return true;
  };
  int n_decode = 0;
  for (size_t i = 0; i < running_.size(); ++i) {
    Sequence& s = *running_[i];
    if (s.done || s.prefilling() || s.pending < 0) continue;
    if (!add(i, s.pending, true)) return false;
    ++n_decode;
  }
  int budget = std::max(1, options_.prefill_chunk - n_decode);
  for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
    Sequence& s = *running_[i];
    if (s.done || !s.prefilling()) continue;
    const int k = std::min(budget, s.n_prompt() - s.n_cached);
    for (int j = 0; j < k; ++j) {
      const bool last = s.n_cached + j + 1 == s.n_prompt();
      if (!add(i, s.req.prompt[s.n_cached + j], last)) return false;
    }
    budget -= k;
  }
  if (batch_.empty()) return true;
  // Batch tokens of one sequence must be consecutive: decode tokens came first, so regroup by sequence.
  std::vector<size_t> order(batch_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return batch_[a].seq < batch_[b].seq; });
  std::vector<model::BatchToken> sorted(batch_.size());
  std::vector<Sequence*> owners(batch_.size());
  for (size_t i = 0; i < order.size(); ++i) sorted[i] = batch_[order[i]], owners[i] = batch_owner_[order[i]];
  batch_.swap(sorted);
  batch_owner_.swap(owners);
  for (auto& s : running_) view_.tables.emplace_back(s->pages);

  const auto t0 = Clock::now();
  const Status st = model_.forward(batch_, view_, logits_);
  const double forward_s = seconds_between(t0, Clock::now());
  {
    std::lock_guard lock(mu_);
    totals_.forward_seconds += forward_s;
  }
  if (!st.ok()) {
    log::error("forward step failed: {}", st.error().message());
    for (auto& s : running_) {
      if (!s->done) finish(*s, FinishReason::kStop, st.error().message());
    }
    return true;
  }
  size_t out = 0;
  for (size_t i = 0; i < batch_.size(); ++i) {
    Sequence& s = *batch_owner_[i];
    ++s.n_cached;
    if (!batch_[i].logits) continue;
    s.pending = -1;
    publish_full_pages(s);
    sample_next(s, logits_.data() + out * static_cast<size_t>(tokenizer_.n_vocab()));
    ++out;
  }
  return true;
}

void Engine::deliver() {
  for (auto& s : running_) {
    if (!s->event.text.empty() || !s->event.tokens.empty() || s->done) {
      if (s->req.on_event) s->req.on_event(s->event);
      s->event = GenerationEvent{};
    }
  }
  const size_t before = running_.size();
  std::erase_if(running_, [](const std::unique_ptr<Sequence>& s) { return s->done; });
  running_count_.fetch_sub(static_cast<int>(before - running_.size()));
}

bool Engine::step() {
  const auto t0 = Clock::now();
  take_incoming();
  const bool had_running = !running_.empty();
  for (auto& s : running_) {
    if (s->handle->cancelled()) finish(*s, FinishReason::kCancelled);
  }
  deliver();  // cancelled sequences leave before admission: their slots and pages serve this step
  admit();
  const bool worked = !running_.empty();
  if (worked && !run_batch()) {
    // Cannot happen while reservations hold; fail the running sequences rather than stall.
    for (auto& s : running_) {
      if (!s->done) finish(*s, FinishReason::kStop, "the KV cache ran out of pages");
    }
  }
  deliver();
  {
    // The pool belongs to the stepping thread; stats() reads this copy of its counts.
    std::lock_guard lock(mu_);
    if (worked) {
      ++totals_.steps;
      totals_.step_seconds += seconds_between(t0, Clock::now());
    }
    totals_.pages_total = pool_.n_pages();
    totals_.pages_free = pool_.n_free();
    totals_.pages_cached_idle = pool_.n_idle();
    totals_.pages_used = pool_.n_used();
    if (running_.empty() && waiting_.empty() && incoming_.empty()) idle_cv_.notify_all();
  }
  return worked || had_running;
}

void Engine::start() {
  if (thread_.joinable()) return;
  stop_thread_ = false;
  thread_ = std::thread([this] {
    for (;;) {
      {
        std::unique_lock lock(mu_);
        work_cv_.wait(lock, [this] {
          return stop_thread_ || !incoming_.empty() || !waiting_.empty() || !running_.empty();
        });
        if (stop_thread_) return;
      }
      step();
    }
  });
}

void Engine::stop_admitting(bool cancel) {
  std::lock_guard lock(mu_);
  admitting_ = false;
  cancel_all_ = cancel_all_ || cancel;
  work_cv_.notify_all();
}

bool Engine::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return idle_cv_.wait_for(lock, timeout,
                           [this] { return running_count_.load() == 0 && waiting_count_.load() == 0; });
}

void Engine::stop() {
  {
    std::lock_guard lock(mu_);
    stop_thread_ = true;
    work_cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

EngineStats Engine::stats() const {
  std::lock_guard lock(mu_);
  EngineStats s = totals_;
  s.waiting = waiting_count_.load();
  s.running = running_count_.load();
  return s;
}

}  // namespace onecard::runtime
