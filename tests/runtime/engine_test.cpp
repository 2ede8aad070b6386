#include "runtime/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/test_paths.h"

namespace onecard::runtime {
namespace {

// What one request received: every token, the log-probabilities, the final event.
struct Received {
  std::vector<int32_t> tokens;
  std::vector<TokenLogprob> logprobs;
  std::string text;
  GenerationEvent last;
  int events = 0;
  bool done = false;
};

class EngineTest : public testing::Test {
 protected:
  static constexpr int kCtx = 96;

  void SetUp() override {
    model::LoadOptions o;
    o.n_ctx = kCtx;
    o.n_threads = 2;
    model_ = model::DeepSeek2::load(test::golden_dir() + "/models/tiny-v3-f32.gguf", o).value();
    tokenizer_ = text::Tokenizer::from_gguf(model_->file()).value();
  }

  static EngineOptions engine_options(int parallel) {
    EngineOptions o;
    o.parallel = parallel;
    o.kv_type = model::KvType::kF32;
    return o;
  }
  std::unique_ptr<Engine> new_engine(const EngineOptions& o) {
    return std::make_unique<Engine>(*model_, *tokenizer_, o);
  }
  std::unique_ptr<Engine> new_engine(int parallel) { return new_engine(engine_options(parallel)); }

  std::vector<int32_t> encode(const std::string& text) { return tokenizer_->encode(text).value(); }

  static GenerationRequest greedy(std::vector<int32_t> prompt, int max_tokens) {
    GenerationRequest r;
    r.prompt = std::move(prompt);
    r.options.max_tokens = max_tokens;
    r.options.sampling.temperature = 0.0f;
    r.options.ignore_eos = true;
    return r;
  }
  static GenerationRequest sampled(std::vector<int32_t> prompt, int max_tokens, uint64_t seed) {
    GenerationRequest r = greedy(std::move(prompt), max_tokens);
    r.options.sampling.temperature = 1.0f;
    r.options.sampling.seed = seed;
    return r;
  }

  // Points the request's events at `run`.
  static void collect(GenerationRequest& r, Received& run) {
    r.on_event = [&run](const GenerationEvent& e) {
      ++run.events;
      EXPECT_FALSE(run.done) << "an event after the last";
      run.tokens.insert(run.tokens.end(), e.tokens.begin(), e.tokens.end());
      run.logprobs.insert(run.logprobs.end(), e.logprobs.begin(), e.logprobs.end());
      run.text += e.text;
      if (e.done) run.last = e, run.done = true;
    };
  }

  // Submits `r` reporting to `run`; the submission must succeed.
  static std::shared_ptr<RequestHandle> submit(Engine& engine, GenerationRequest r, Received& run) {
    collect(r, run);
    Submitted s = engine.submit(std::move(r));
    EXPECT_TRUE(s.ok()) << s.message;
    return s.handle;
  }

  static void expect_pages_add_up(const Engine& engine) {
    const EngineStats s = engine.stats();
    EXPECT_EQ(s.pages_used + s.pages_free + s.pages_cached_idle, s.pages_total);
  }

  static bool all_done(const std::vector<std::unique_ptr<Received>>& runs) {
    return std::all_of(runs.begin(), runs.end(), [](const auto& r) { return r->done; });
  }

  // Steps until every run is done (bounded, so that a stuck engine fails rather than hangs).
  // `max_running`, when given, receives the most sequences that ran at once.
  static void step_until_done(Engine& engine, const std::vector<std::unique_ptr<Received>>& runs,
                              int* max_running = nullptr, int max_steps = 2000) {
    for (int i = 0; i < max_steps && !all_done(runs); ++i) {
      engine.step();
      expect_pages_add_up(engine);
      if (max_running != nullptr) *max_running = std::max(*max_running, engine.stats().running);
    }
    ASSERT_TRUE(all_done(runs)) << "requests still running after " << max_steps << " steps";
  }
  static void step_until_done(Engine& engine, Received& run, int max_steps = 2000) {
    for (int i = 0; i < max_steps && !run.done; ++i) {
      engine.step();
      expect_pages_add_up(engine);
    }
    ASSERT_TRUE(run.done) << "request still running after " << max_steps << " steps";
  }

  // The requests submitted together to `engine` and stepped to the end.
  static std::vector<std::unique_ptr<Received>> run_together(Engine& engine,
                                                             std::vector<GenerationRequest> reqs,
                                                             int* max_running = nullptr) {
    std::vector<std::unique_ptr<Received>> runs;
    for (auto& r : reqs) {
      runs.push_back(std::make_unique<Received>());
      submit(engine, std::move(r), *runs.back());
    }
    step_until_done(engine, runs, max_running);
    return runs;
  }

  // Each request alone on a fresh engine of one sequence.
  std::vector<std::unique_ptr<Received>> run_alone(const std::vector<GenerationRequest>& reqs) {
    std::vector<std::unique_ptr<Received>> runs;
    for (const auto& r : reqs) {
      auto engine = new_engine(1);
      auto one = run_together(*engine, {r});
      runs.push_back(std::move(one.front()));
    }
    return runs;
  }

  static void expect_pages_returned(const Engine& engine) {
    const EngineStats s = engine.stats();
    EXPECT_EQ(s.waiting, 0);
    EXPECT_EQ(s.running, 0);
    EXPECT_EQ(s.pages_used, 0);
    EXPECT_EQ(s.pages_free + s.pages_cached_idle, s.pages_total);
  }

  std::vector<GenerationRequest> four_greedy_requests() {
    std::vector<GenerationRequest> reqs;
    for (const char* text :
         {"the quick brown fox jumps over the lazy dog", "hello", "once upon a time there was a little",
          "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu"}) {
      reqs.push_back(greedy(encode(text), 20));
    }
    return reqs;
  }

  std::unique_ptr<model::DeepSeek2> model_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
};

void expect_same_tokens(const std::vector<std::unique_ptr<Received>>& got,
                        const std::vector<std::unique_ptr<Received>>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    EXPECT_TRUE(got[i]->last.error.empty()) << got[i]->last.error;
    EXPECT_EQ(got[i]->tokens, want[i]->tokens);
    EXPECT_EQ(got[i]->text, want[i]->text);
    EXPECT_EQ(got[i]->last.finish, want[i]->last.finish);
  }
}

TEST_F(EngineTest, PromptsOfDifferentLengths) {
  const auto reqs = four_greedy_requests();
  std::vector<size_t> lengths;
  for (const auto& r : reqs) lengths.push_back(r.prompt.size());
  std::sort(lengths.begin(), lengths.end());
  EXPECT_EQ(std::unique(lengths.begin(), lengths.end()), lengths.end());
  EXPECT_GT(lengths.front(), 0u);
  EXPECT_GT(lengths.back(), 16u);  // the longest spans more than one page
}

TEST_F(EngineTest, BatchingIsInvisible) {
  const auto reqs = four_greedy_requests();
  const auto alone = run_alone(reqs);
  for (const auto& r : alone) {
    EXPECT_EQ(r->tokens.size(), 20u);
    EXPECT_EQ(r->last.finish, FinishReason::kLength);
    EXPECT_EQ(r->last.usage.completion_tokens, 20);
  }

  auto engine = new_engine(4);
  int max_running = 0;
  const auto together = run_together(*engine, reqs, &max_running);
  EXPECT_EQ(max_running, 4);
  expect_same_tokens(together, alone);
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(together[i]->last.usage.prompt_tokens, static_cast<int>(reqs[i].prompt.size()));
    EXPECT_EQ(together[i]->last.usage.completion_tokens, 20);
  }
  expect_pages_returned(*engine);
}

TEST_F(EngineTest, ChunkedPrefillBesideDecodingIsInvisible) {
  const auto reqs = four_greedy_requests();
  const auto alone = run_alone(reqs);

  EngineOptions o = engine_options(4);
  o.prefill_chunk = 3;
  auto engine = new_engine(o);
  int max_running = 0;
  const auto together = run_together(*engine, reqs, &max_running);
  EXPECT_EQ(max_running, 4);
  expect_same_tokens(together, alone);
  // The prompts took several steps each.
  size_t prompt_total = 0;
  for (const auto& r : reqs) prompt_total += r.prompt.size();
  EXPECT_GT(engine->stats().steps, prompt_total / 3);
  expect_pages_returned(*engine);
}

TEST_F(EngineTest, RequestsJoiningWhileOthersDecodeAreInvisible) {
  const auto reqs = four_greedy_requests();
  const auto alone = run_alone(reqs);

  EngineOptions o = engine_options(4);
  o.prefill_chunk = 5;
  auto engine = new_engine(o);
  std::vector<std::unique_ptr<Received>> runs;
  for (size_t i = 0; i < reqs.size(); ++i) {
    runs.push_back(std::make_unique<Received>());
    submit(*engine, reqs[i], *runs.back());
    for (int k = 0; k < 6; ++k) engine->step();  // the earlier ones are decoding by now
  }
  step_until_done(*engine, runs);
  expect_same_tokens(runs, alone);
  expect_pages_returned(*engine);
}

TEST_F(EngineTest, MoreRequestsThanSlotsQueueAndGiveTheSameTokens) {
  const auto reqs = four_greedy_requests();
  const auto alone = run_alone(reqs);
  auto engine = new_engine(2);
  std::vector<std::unique_ptr<Received>> runs;
  for (const auto& r : reqs) {
    runs.push_back(std::make_unique<Received>());
    submit(*engine, r, *runs.back());
  }
  int max_running = 0;
  step_until_done(*engine, runs, &max_running);
  EXPECT_EQ(max_running, 2);
  expect_same_tokens(runs, alone);
  expect_pages_returned(*engine);
}

TEST_F(EngineTest, SeededSamplingIsPerSequence) {
  std::vector<GenerationRequest> reqs;
  reqs.push_back(sampled(encode("the quick brown fox"), 20, 1));
  reqs.push_back(sampled(encode("the quick brown fox"), 20, 2));
  reqs.push_back(sampled(encode("once upon a time"), 20, 3));
  const auto alone = run_alone(reqs);
  auto engine = new_engine(3);
  int max_running = 0;
  const auto together = run_together(*engine, reqs, &max_running);
  EXPECT_EQ(max_running, 3);
  expect_same_tokens(together, alone);
  EXPECT_NE(alone[0]->tokens, alone[1]->tokens);  // the seeds matter
  expect_pages_returned(*engine);
}

TEST_F(EngineTest, MultiTurnContinuationUsesThePrefixCache) {
  auto engine = new_engine(1);
  const auto prompt_a = encode("alpha beta gamma delta");
  Received a;
  submit(*engine, greedy(prompt_a, 20), a);
  step_until_done(*engine, a);
  ASSERT_EQ(a.tokens.size(), 20u);
  EXPECT_EQ(a.last.usage.cached_tokens, 0);
  // The last sampled token is never evaluated: the cache holds the prompt and all but the last output.
  EXPECT_EQ(a.last.cached_positions, static_cast<int>(prompt_a.size()) + 20 - 1);
  const uint64_t cached_before = engine->stats().cached_prompt_tokens;

  // The next turn re-sends the conversation and adds to it.
  std::vector<int32_t> prompt_b = prompt_a;
  prompt_b.insert(prompt_b.end(), a.tokens.begin(), a.tokens.end());
  const auto more = encode(" and then epsilon");
  prompt_b.insert(prompt_b.end(), more.begin(), more.end());
  Received b;
  submit(*engine, greedy(prompt_b, 12), b);
  step_until_done(*engine, b);
  EXPECT_GT(b.last.usage.cached_tokens, 0);
  EXPECT_EQ(b.last.usage.cached_tokens, a.last.cached_positions);
  EXPECT_EQ(b.last.usage.prompt_tokens, static_cast<int>(prompt_b.size()));
  EXPECT_EQ(engine->stats().cached_prompt_tokens,
            cached_before + static_cast<uint64_t>(a.last.cached_positions));

  auto fresh = new_engine(1);
  Received b_fresh;
  submit(*fresh, greedy(prompt_b, 12), b_fresh);
  step_until_done(*fresh, b_fresh);
  EXPECT_EQ(b_fresh.last.usage.cached_tokens, 0);
  EXPECT_EQ(b.tokens, b_fresh.tokens);
  EXPECT_EQ(b.text, b_fresh.text);
  expect_pages_returned(*engine);
}

TEST_F(EngineTest, SamePromptAgainReusesAllButTheLastToken) {
  auto engine = new_engine(1);
  const auto prompt = encode("the quick brown fox jumps over the lazy dog again and again");
  Received first, second;
  submit(*engine, greedy(prompt, 6), first);
  step_until_done(*engine, first);
  submit(*engine, greedy(prompt, 6), second);
  step_until_done(*engine, second);
  EXPECT_EQ(second.last.usage.cached_tokens, static_cast<int>(prompt.size()) - 1);
  EXPECT_EQ(second.tokens, first.tokens);
  expect_pages_returned(*engine);
}

TEST_F(EngineTest, ConcurrentSequencesShareACommonPrefix) {
  // A long shared "system prompt": the second request, admitted after the first has filled its first page,
  // finds that page in the cache while the first is still running.
  auto engine = new_engine(2);
  std::vector<int32_t> system(40);
  for (size_t i = 0; i < system.size(); ++i) system[i] = static_cast<int32_t>(100 + i);
  auto prompt_a = system, prompt_b = system;
  const auto qa = encode(" first question"), qb = encode(" second question");
  prompt_a.insert(prompt_a.end(), qa.begin(), qa.end());
  prompt_b.insert(prompt_b.end(), qb.begin(), qb.end());
  std::vector<std::unique_ptr<Received>> runs;
  runs.push_back(std::make_unique<Received>());
  submit(*engine, greedy(prompt_a, 10), *runs.back());
  engine->step();  // prefills A
  runs.push_back(std::make_unique<Received>());
  submit(*engine, greedy(prompt_b, 10), *runs.back());
  step_until_done(*engine, runs);
  // B was admitted when A had prefilled its prompt and published the full pages of it: B finds what they hold
  // of the common prefix (two pages of the system prompt at least, part of a third maybe).
  size_t common = 0;
  while (common < prompt_a.size() && common < prompt_b.size() && prompt_a[common] == prompt_b[common]) {
    ++common;
  }
  const size_t published = prompt_a.size() / 16 * 16;
  EXPECT_GE(runs[1]->last.usage.cached_tokens, 32);
  EXPECT_EQ(runs[1]->last.usage.cached_tokens, static_cast<int>(std::min(common, published)));
  EXPECT_EQ(runs[0]->last.usage.cached_tokens, 0);
  std::vector<GenerationRequest> reqs;
  reqs.push_back(greedy(prompt_a, 10));
  reqs.push_back(greedy(prompt_b, 10));
  expect_same_tokens(runs, run_alone(reqs));
  expect_pages_returned(*engine);
}

TEST_F(EngineTest, CancelledRunningRequestEndsAtTheNextStep) {
  auto engine = new_engine(2);
  Received a, b;
  auto handle = submit(*engine, greedy(encode("hello world"), 50), a);
  submit(*engine, greedy(encode("the quick brown fox"), 10), b);
  for (int i = 0; i < 100 && a.tokens.size() < 3; ++i) engine->step();
  ASSERT_GE(a.tokens.size(), 3u);
  ASSERT_FALSE(a.done);
  const size_t had = a.tokens.size();
  handle->cancel();
  EXPECT_TRUE(handle->cancelled());
  engine->step();
  ASSERT_TRUE(a.done);
  EXPECT_EQ(a.last.finish, FinishReason::kCancelled);
  EXPECT_TRUE(a.last.error.empty());
  EXPECT_EQ(a.tokens.size(), had);
  EXPECT_EQ(a.last.usage.completion_tokens, static_cast<int>(had));
  step_until_done(*engine, b);
  EXPECT_EQ(b.last.finish, FinishReason::kLength);
  EXPECT_EQ(b.tokens.size(), 10u);
  expect_pages_returned(*engine);
}

TEST_F(EngineTest, CancelledWaitingRequestGetsItsDoneEventWithoutTokens) {
  auto engine = new_engine(1);
  Received a, b;
  submit(*engine, greedy(encode("hello world"), 8), a);
  auto waiting = submit(*engine, greedy(encode("the quick brown fox"), 8), b);
  engine->step();
  EXPECT_EQ(engine->stats().running, 1);
  EXPECT_EQ(engine->stats().waiting, 1);
  waiting->cancel();
  engine->step();
  ASSERT_TRUE(b.done);
  EXPECT_EQ(b.last.finish, FinishReason::kCancelled);
  EXPECT_TRUE(b.tokens.empty());
  EXPECT_EQ(b.last.usage.completion_tokens, 0);
  EXPECT_EQ(b.events, 1);
  EXPECT_EQ(engine->stats().waiting, 0);
  step_until_done(*engine, a);
  EXPECT_EQ(a.last.finish, FinishReason::kLength);
  EXPECT_EQ(a.tokens.size(), 8u);
  expect_pages_returned(*engine);
}

TEST_F(EngineTest, StopAdmittingWithCancelEndsEverything) {
  auto engine = new_engine(1);
  Received a, b;
  submit(*engine, greedy(encode("hello world"), 40), a);
  submit(*engine, greedy(encode("the quick brown fox"), 40), b);
  engine->step();
  engine->step();
  engine->stop_admitting(true);
  Received c;
  GenerationRequest late = greedy(encode("late"), 4);
  collect(late, c);
  EXPECT_EQ(engine->submit(std::move(late)).code, Submitted::Code::kStopping);
  engine->step();
  ASSERT_TRUE(a.done);
  ASSERT_TRUE(b.done);
  EXPECT_EQ(a.last.finish, FinishReason::kCancelled);
  EXPECT_EQ(b.last.finish, FinishReason::kCancelled);
  EXPECT_TRUE(b.tokens.empty());
  EXPECT_EQ(c.events, 0);
  expect_pages_returned(*engine);
}

TEST_F(EngineTest, FullQueueIsBusy) {
  EngineOptions o = engine_options(1);
  o.max_queue = 2;
  auto engine = new_engine(o);
  std::vector<std::unique_ptr<Received>> runs;
  for (int i = 0; i < 2; ++i) {
    runs.push_back(std::make_unique<Received>());
    submit(*engine, greedy(encode("hello"), 4), *runs.back());
  }
  Received refused;
  GenerationRequest third = greedy(encode("hello"), 4);
  collect(third, refused);
  const Submitted s = engine->submit(std::move(third));
  EXPECT_EQ(s.code, Submitted::Code::kBusy);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.handle, nullptr);
  EXPECT_NE(s.message.find("queue is full"), std::string::npos) << s.message;
  // Once one runs, one waits: there is room again.
  engine->step();
  runs.push_back(std::make_unique<Received>());
  submit(*engine, greedy(encode("hello"), 4), *runs.back());
  step_until_done(*engine, runs);
  for (const auto& r : runs) EXPECT_EQ(r->tokens.size(), 4u);
  EXPECT_EQ(refused.events, 0);
  expect_pages_returned(*engine);
}

TEST_F(EngineTest, InvalidRequestsAreRefusedAndOthersUnaffected) {
  auto engine = new_engine(2);
  Received good1, good2, bad;
  submit(*engine, greedy(encode("hello world"), 6), good1);
  auto refuse = [&](GenerationRequest r) {
    collect(r, bad);
    Submitted s = engine->submit(std::move(r));
    EXPECT_EQ(s.code, Submitted::Code::kInvalid);
    EXPECT_EQ(s.handle, nullptr);
    return s.message;
  };

  const std::string too_long = refuse(greedy(std::vector<int32_t>(kCtx, 300), 4));
  EXPECT_NE(too_long.find("the prompt has 96 tokens"), std::string::npos) << too_long;
  EXPECT_NE(too_long.find("the context holds 96"), std::string::npos) << too_long;

  GenerationRequest top_p = sampled(encode("hello"), 4, 1);
  top_p.options.sampling.top_p = 1.5f;
  const std::string bad_top_p = refuse(std::move(top_p));
  EXPECT_NE(bad_top_p.find("top_p"), std::string::npos) << bad_top_p;

  const std::string outside = refuse(greedy({1, 2, tokenizer_->n_vocab()}, 4));
  EXPECT_NE(outside.find("outside the vocabulary"), std::string::npos) << outside;
  EXPECT_NE(outside.find(std::to_string(tokenizer_->n_vocab())), std::string::npos) << outside;
  EXPECT_FALSE(refuse(greedy({1, -1, 2}, 4)).empty());

  EXPECT_NE(refuse(greedy({}, 4)).find("empty"), std::string::npos);

  GenerationRequest lp = greedy(encode("hello"), 4);
  lp.logprobs = 21;
  EXPECT_NE(refuse(std::move(lp)).find("logprobs"), std::string::npos);

  submit(*engine, greedy(encode("the quick brown fox"), 6), good2);
  for (int i = 0; i < 200 && !(good1.done && good2.done); ++i) engine->step();
  ASSERT_TRUE(good1.done && good2.done);
  EXPECT_EQ(good1.tokens.size(), 6u);
  EXPECT_EQ(good2.tokens.size(), 6u);
  EXPECT_EQ(good1.last.finish, FinishReason::kLength);
  EXPECT_EQ(good2.last.finish, FinishReason::kLength);
  EXPECT_EQ(bad.events, 0);

  // The longest prompt that fits is accepted and fills the context.
  Received longest;
  submit(*engine, greedy(std::vector<int32_t>(kCtx - 1, 300), 10), longest);
  step_until_done(*engine, longest);
  EXPECT_EQ(longest.last.finish, FinishReason::kContextFull);
  EXPECT_EQ(longest.last.cached_positions, kCtx);
  EXPECT_TRUE(longest.last.error.empty());
  expect_pages_returned(*engine);
}

TEST_F(EngineTest, StopAdmittingRefusesButFinishesWhatRuns) {
  auto engine = new_engine(1);
  Received a;
  submit(*engine, greedy(encode("hello"), 5), a);
  engine->step();
  engine->stop_admitting(false);
  GenerationRequest r = greedy(encode("hello"), 5);
  const Submitted s = engine->submit(std::move(r));
  EXPECT_EQ(s.code, Submitted::Code::kStopping);
  EXPECT_FALSE(s.message.empty());
  step_until_done(*engine, a);
  EXPECT_EQ(a.last.finish, FinishReason::kLength);
  EXPECT_EQ(a.tokens.size(), 5u);
}

TEST_F(EngineTest, ReservationMakesTheSecondRequestWaitRatherThanFail) {
  EngineOptions o = engine_options(2);
  o.kv_pages = kCtx / o.page_tokens;  // one full context
  auto engine = new_engine(o);
  EXPECT_EQ(engine->stats().pages_total, o.kv_pages);
  std::vector<std::unique_ptr<Received>> runs;
  for (const char* text : {"hello world", "the quick brown fox"}) {
    runs.push_back(std::make_unique<Received>());
    submit(*engine, greedy(encode(text), -1), *runs.back());
  }
  int max_running = 0;
  bool second_waited = false;
  for (int i = 0; i < 1000 && !all_done(runs); ++i) {
    engine->step();
    const EngineStats s = engine->stats();
    max_running = std::max(max_running, s.running);
    if (!runs[0]->done && s.waiting == 1) second_waited = true;
    if (!runs[0]->done) {
      EXPECT_TRUE(runs[1]->tokens.empty());
    }
  }
  ASSERT_TRUE(all_done(runs));
  EXPECT_EQ(max_running, 1);
  EXPECT_TRUE(second_waited);
  for (const auto& r : runs) {
    EXPECT_TRUE(r->last.error.empty()) << r->last.error;
    EXPECT_EQ(r->last.finish, FinishReason::kContextFull);
    EXPECT_EQ(r->last.cached_positions, kCtx);
  }
  expect_pages_returned(*engine);
}

TEST_F(EngineTest, SmallRequestsFitBesideEachOtherInASmallPool) {
  EngineOptions o = engine_options(2);
  o.kv_pages = kCtx / o.page_tokens;
  auto engine = new_engine(o);
  std::vector<std::unique_ptr<Received>> runs;
  for (const char* text : {"hello world", "the quick brown fox"}) {
    runs.push_back(std::make_unique<Received>());
    submit(*engine, greedy(encode(text), 10), *runs.back());
  }
  int max_running = 0;
  for (int i = 0; i < 1000 && !all_done(runs); ++i) {
    engine->step();
    max_running = std::max(max_running, engine->stats().running);
  }
  ASSERT_TRUE(all_done(runs));
  EXPECT_EQ(max_running, 2);
  for (const auto& r : runs) EXPECT_EQ(r->tokens.size(), 10u);
  expect_pages_returned(*engine);
}

TEST_F(EngineTest, LogprobsListTheTopAlternatives) {
  auto engine = new_engine(1);
  Received run;
  GenerationRequest r = greedy(encode("the quick brown fox"), 8);
  r.logprobs = 3;
  submit(*engine, std::move(r), run);
  step_until_done(*engine, run);
  ASSERT_EQ(run.tokens.size(), 8u);
  ASSERT_EQ(run.logprobs.size(), run.tokens.size());
  for (size_t i = 0; i < run.logprobs.size(); ++i) {
    SCOPED_TRACE("token " + std::to_string(i));
    const TokenLogprob& lp = run.logprobs[i];
    EXPECT_EQ(lp.token, run.tokens[i]);
    EXPECT_LE(lp.logprob, 0.0f);
    ASSERT_EQ(lp.top.size(), 3u);
    double mass = 0;
    for (size_t k = 0; k < lp.top.size(); ++k) {
      EXPECT_LE(lp.top[k].second, 0.0f);
      EXPECT_GE(lp.top[k].first, 0);
      EXPECT_LT(lp.top[k].first, tokenizer_->n_vocab());
      if (k > 0) {
        EXPECT_GE(lp.top[k - 1].second, lp.top[k].second);
      }
      mass += std::exp(static_cast<double>(lp.top[k].second));
    }
    EXPECT_LE(mass, 1.0 + 1e-5);
    // Greedy takes the most likely token.
    EXPECT_EQ(lp.top[0].first, lp.token);
    EXPECT_FLOAT_EQ(lp.top[0].second, lp.logprob);
  }

  // Without logprobs, none; with 0, the sampled token's alone.
  Received none, zero;
  submit(*engine, greedy(encode("hello"), 3), none);
  GenerationRequest z = greedy(encode("hello"), 3);
  z.logprobs = 0;
  submit(*engine, std::move(z), zero);
  step_until_done(*engine, none);
  step_until_done(*engine, zero);
  EXPECT_TRUE(none.logprobs.empty());
  ASSERT_EQ(zero.logprobs.size(), 3u);
  for (const auto& lp : zero.logprobs) EXPECT_TRUE(lp.top.empty());
}

TEST_F(EngineTest, ThreadedModeServesSubmissionsFromManyThreads) {
  auto engine = new_engine(2);
  engine->start();
  constexpr int kThreads = 3, kPerThread = 2;
  std::mutex mu;
  std::condition_variable cv;
  struct Outcome {
    std::vector<int32_t> tokens;
    GenerationEvent last;
    bool done = false;
    int max_tokens = 0;
  };
  std::vector<Outcome> results(kThreads * kPerThread);
  int n_done = 0;
  const std::vector<std::string> texts = {"hello", "the quick brown fox", "once upon a time"};
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& t : texts) prompts.push_back(encode(t));

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kPerThread; ++k) {
        const int i = t * kPerThread + k;
        Outcome& res = results[i];
        res.max_tokens = 4 + i;
        GenerationRequest r = greedy(prompts[t], res.max_tokens);
        r.on_event = [&mu, &cv, &res, &n_done](const GenerationEvent& e) {
          std::lock_guard lock(mu);
          res.tokens.insert(res.tokens.end(), e.tokens.begin(), e.tokens.end());
          if (e.done) {
            res.last = e;
            res.done = true;
            ++n_done;
            cv.notify_all();
          }
        };
        const Submitted s = engine->submit(std::move(r));
        EXPECT_TRUE(s.ok()) << s.message;
      }
    });
  }
  for (auto& th : threads) th.join();
  {
    std::unique_lock lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return n_done == kThreads * kPerThread; }));
  }
  EXPECT_TRUE(engine->wait_idle(std::chrono::seconds(10)));
  engine->stop();
  std::lock_guard lock(mu);
  for (const Outcome& r : results) {
    EXPECT_TRUE(r.done);
    EXPECT_EQ(static_cast<int>(r.tokens.size()), r.max_tokens);
    EXPECT_EQ(r.last.finish, FinishReason::kLength);
    EXPECT_EQ(r.last.usage.completion_tokens, r.max_tokens);
    EXPECT_TRUE(r.last.error.empty());
  }
  const EngineStats s = engine->stats();
  EXPECT_EQ(s.running, 0);
  EXPECT_EQ(s.waiting, 0);
  EXPECT_EQ(s.pages_used, 0);
  EXPECT_EQ(s.generated_tokens, static_cast<uint64_t>(4 + 5 + 6 + 7 + 8 + 9));
}

TEST_F(EngineTest, StatsCountTokensAndSteps) {
  auto engine = new_engine(2);
  const auto reqs = four_greedy_requests();
  const auto runs = run_together(*engine, reqs);
  const EngineStats s = engine->stats();
  uint64_t prompt = 0;
  for (const auto& r : reqs) prompt += r.prompt.size();
  EXPECT_EQ(s.prompt_tokens, prompt);
  EXPECT_EQ(s.generated_tokens, 4u * 20u);
  EXPECT_GT(s.steps, 0u);
  EXPECT_GT(s.step_seconds, 0.0);
  EXPECT_GT(s.forward_seconds, 0.0);
  EXPECT_LE(s.forward_seconds, s.step_seconds);
  EXPECT_EQ(s.pages_total, 2 * kCtx / 16);
  // Nothing to do: step says so.
  EXPECT_FALSE(engine->step());
}

TEST_F(EngineTest, ZeroMaxTokensEndsAfterThePrompt) {
  auto engine = new_engine(1);
  Received a;
  const auto prompt = encode("hello world");
  submit(*engine, greedy(prompt, 0), a);
  step_until_done(*engine, a);
  EXPECT_TRUE(a.tokens.empty());
  EXPECT_EQ(a.last.finish, FinishReason::kLength);
  EXPECT_EQ(a.last.usage.completion_tokens, 0);
  EXPECT_EQ(a.last.cached_positions, static_cast<int>(prompt.size()));
  expect_pages_returned(*engine);
}

// A request whose prompt plus max_tokens needs more pages than the whole pool must not block the queue: a
// sequence's positions are capped at what the pool holds.
TEST_F(EngineTest, RequestLargerThanThePoolDoesNotBlockTheQueue) {
  EngineOptions o = engine_options(1);
  o.kv_pages = 3;  // 48 positions; the context holds 96
  auto engine = new_engine(o);
  Received big, small;
  GenerationRequest r = greedy(encode("hello"), -1);
  collect(r, big);
  const Submitted s = engine->submit(std::move(r));
  if (!s.ok()) {
    EXPECT_EQ(s.code, Submitted::Code::kInvalid);
  }
  submit(*engine, greedy(encode("the quick brown fox"), 5), small);
  for (int i = 0; i < 500 && !(small.done && (big.done || !s.ok())); ++i) engine->step();
  EXPECT_TRUE(small.done);
  EXPECT_EQ(small.tokens.size(), 5u);
  if (s.ok()) {
    EXPECT_TRUE(big.done);
  }
  EXPECT_TRUE(engine->wait_idle(std::chrono::milliseconds(0)));
}

// A finished sequence's pages become idle last page first, so eviction takes the end of a cached chain and
// keeps its start findable (a chain is found from its first page).
TEST_F(EngineTest, EvictionKeepsTheStartOfACachedChain) {
  EngineOptions o = engine_options(1);
  o.kv_pages = 6;
  auto engine = new_engine(o);
  std::vector<int32_t> prompt(40);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(100 + i);
  Received a, other, again;
  submit(*engine, greedy(prompt, 10), a);  // 49 positions: 4 pages, cached when it ends
  step_until_done(*engine, a);
  EXPECT_EQ(engine->stats().pages_cached_idle, 4);
  submit(*engine, greedy({7, 8, 9, 10, 11}, 40), other);  // 3 pages: the 2 free ones and one evicted
  step_until_done(*engine, other);
  submit(*engine, greedy(prompt, 10), again);
  step_until_done(*engine, again);
  // Evicting A's last page would have kept its first 3 pages (the prompt but its last token) findable.
  EXPECT_GE(again.last.usage.cached_tokens, 32);
  EXPECT_EQ(again.tokens, a.tokens);
}

}  // namespace
}  // namespace onecard::runtime
