// The engine: every generation, from the CLI or the server, is a request to one Engine, which batches the
// running sequences continuously over a shared, paged KV cache (runtime/kv_pool.h).
//
// Each step decodes one token of every running sequence and adds a chunk of waiting prompt (chunked prefill:
// a long prompt delays the running streams by at most one chunk per step). A request is admitted when a
// sequence slot is free and the pool can hold its prompt plus its max_tokens (capped at the context); what it
// reserves is never taken by another, so an admitted sequence runs to its end. Prompt prefixes found in the
// prefix cache are not evaluated again. A cancelled request leaves at the next step and frees its pages.
//
// step() runs everything in the calling thread; start() runs steps in a thread of the engine's own while
// there is work. Events reach the request's callback in the thread that runs the steps.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/deepseek2.h"
#include "runtime/generation.h"
#include "runtime/kv_pool.h"
#include "text/tokenizer.h"

namespace onecard::runtime {

struct EngineOptions {
  int parallel = 1;      // sequences decoded at once
  int page_tokens = 16;  // positions per KV page (the prefix cache's granularity)
  int kv_pages = 0;      // pages in the pool; 0: enough for `parallel` full contexts
  model::KvType kv_type = model::KvType::kBF16;
  int max_queue = 256;    // requests waiting for a slot; more are refused as busy
  int prefill_chunk = 0;  // prompt tokens per step, shared by the sequences in prefill; 0: the model's batch
};

// Alternatives of one generated token, most likely first (natural-log probabilities of the model's
// distribution, before sampling's penalties and temperature).
struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;
};

struct Usage {
  int prompt_tokens = 0;
  int cached_tokens = 0;  // of the prompt, found in the prefix cache
  int completion_tokens = 0;
};

// What one step did for a request: new text (released past stop strings and whole UTF-8 characters), the
// tokens sampled with their log-probabilities (when asked for), and at the end the reason and the counts.
struct GenerationEvent {
  std::string text;
  std::vector<int32_t> tokens;
  std::vector<TokenLogprob> logprobs;
  bool done = false;
  FinishReason finish = FinishReason::kStop;
  Usage usage;
  int cached_positions = 0;  // at the end: positions of prompt and output the KV cache held
  std::string error;         // set when the engine failed the request (done is then set too)
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  GenerateOptions options;
  int logprobs = -1;            // -1: none; k >= 0: the sampled token's and the k most likely alternatives
  bool render_special = false;  // control tokens in the text as their spelling (tool-call markers)
  std::function<void(const GenerationEvent&)> on_event;
};

class RequestHandle {
 public:
  uint64_t id() const { return id_; }
  // The request ends at the next step, with FinishReason::kCancelled.
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

 private:
  friend class Engine;
  explicit RequestHandle(uint64_t id) : id_(id) {}
  uint64_t id_;
  std::atomic<bool> cancelled_{false};
};

struct Submitted {
  enum class Code { kOk, kInvalid, kBusy, kStopping } code = Code::kOk;
  std::string message;  // why, when not kOk
  std::shared_ptr<RequestHandle> handle;
  bool ok() const { return code == Code::kOk; }
};

struct EngineStats {
  int waiting = 0, running = 0;
  int pages_total = 0, pages_used = 0, pages_free = 0, pages_cached_idle = 0;
  uint64_t prompt_tokens = 0, cached_prompt_tokens = 0, generated_tokens = 0;
  uint64_t steps = 0;
  double step_seconds = 0, forward_seconds = 0;  // summed over all steps
};

class Engine {
 public:
  // The model and tokenizer must outlive the engine.
  Engine(model::DeepSeek2& model, const text::Tokenizer& tokenizer, const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request. Refused (kInvalid) when the prompt is empty or leaves no room in the context, a
  // sampling parameter is out of range, or a logprobs count is negative; kBusy when the queue is full or the
  // engine stops admitting. Refused requests get no events.
  Submitted submit(GenerationRequest request);

  // One scheduling step in the calling thread; false when there was nothing to do.
  bool step();
  // Runs steps in the engine's own thread until stop().
  void start();
  // Refuses new requests from now on; with `cancel`, ends running and waiting ones at the next step.
  void stop_admitting(bool cancel);
  // Waits until no request is waiting or running, or the timeout passes; true when idle.
  bool wait_idle(std::chrono::milliseconds timeout);
  // Stops the engine's thread (after the step it is in).
  void stop();

  EngineStats stats() const;
  const EngineOptions& options() const { return options_; }
  int n_ctx() const { return model_.n_ctx(); }
  model::DeepSeek2& model() { return model_; }
  const text::Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  struct Sequence;
  void take_incoming();
  void admit();
  bool run_batch();
  void sample_next(Sequence& s, const float* logits);
  void publish_full_pages(Sequence& s);
  void release_pages(const std::vector<int32_t>& pages);
  // Hands each running sequence's event of this step to its client and drops the finished sequences.
  void deliver();
  // Positions one sequence can reach: the context, or fewer when the pool is smaller.
  int max_positions() const;
  void finish(Sequence& s, FinishReason why, const std::string& error = {});
  int pages_for(int positions) const;

  model::DeepSeek2& model_;
  const text::Tokenizer& tokenizer_;
  EngineOptions options_;
  KvPool pool_;
  int reserved_ = 0;  // pages admitted sequences may still allocate

  mutable std::mutex mu_;
  std::condition_variable work_cv_, idle_cv_;
  std::deque<std::unique_ptr<Sequence>> incoming_;  // submitted, not yet seen by a step (guarded by mu_)
  bool admitting_ = true, cancel_all_ = false, stop_thread_ = false;
  std::atomic<int> waiting_count_{0}, running_count_{0};
  uint64_t next_id_ = 1;

  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;
  std::vector<model::BatchToken> batch_;
  std::vector<Sequence*> batch_owner_;  // per batch token
  std::vector<float> logits_;
  model::KvView view_;

  EngineStats totals_;  // counters, guarded by mu_
  std::thread thread_;
};

}  // namespace onecard::runtime
