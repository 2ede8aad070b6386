// `onecard bench -m MODEL`: prompt processing and generation speed in the manner of llama.cpp's llama-bench.
// Each rep of a test starts from an empty cache, fills --depth positions untimed, then times either the
// prompt's forward passes (chunks of the batch size, as the engine runs a prefill) or one forward pass per
// generated token. Tokens are random ids of the vocabulary (a fixed seed), so the figures do not depend on a
// text or on sampling.
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/model_flags.h"
#include "app/version.h"
#include "app/weight_traffic.h"
#include "base/format.h"
#include "base/rng.h"
#include "cpu/kernels.h"

namespace onecard::app {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchOptions {
  ModelFlags model;
  int n_prompt = 512;
  int n_gen = 128;
  int reps = 5;
  int depth = 0;
  bool json = false;
};

// One test: a prompt of n_prompt tokens or n_gen generated tokens (the other is 0), after `depth`.
struct Test {
  int n_prompt = 0, n_gen = 0, depth = 0;

  std::string name() const {
    std::string s = n_prompt > 0 ? fmt::format("pp{}", n_prompt) : fmt::format("tg{}", n_gen);
    if (depth > 0) s += fmt::format("@d{}", depth);
    return s;
  }
  int positions() const { return depth + n_prompt + n_gen; }
};

struct ModelInfo {
  std::string file;   // the file name
  std::string types;  // "Q4_K+Q6_K+F32": the tensor types, the most bytes first
  uint64_t size_bytes = 0, params = 0, weight_bytes_per_token = 0;
  int threads = 0;
  std::string isa;
};

struct TestResult {
  Test test;
  std::vector<double> rates;  // tokens per second, one per rep
  double mean = 0, sd = 0;
  uint64_t peak_rss = 0;
};

ModelInfo describe(const BenchOptions& o, const model::DeepSeek2& m, uint64_t weight_bytes) {
  ModelInfo info;
  info.file = std::filesystem::path(o.model.path).filename().string();
  std::map<gguf::GgmlType, uint64_t> by_type;
  for (const gguf::TensorInfo& t : m.file().tensors()) {
    info.size_bytes += t.n_bytes;
    info.params += t.n_elements;
    by_type[t.type] += t.n_bytes;
  }
  std::vector<std::pair<uint64_t, gguf::GgmlType>> order;
  for (const auto& [type, bytes] : by_type) order.emplace_back(bytes, type);
  std::sort(order.rbegin(), order.rend());
  for (const auto& [bytes, type] : order) {
    if (!info.types.empty()) info.types += '+';
    info.types += gguf::type_name(type);
  }
  info.weight_bytes_per_token = weight_bytes;
  info.threads = m.n_threads();
  info.isa = cpu::isa_name(cpu::active_kernels().isa);
  return info;
}

uint64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<uint64_t>(u.ru_maxrss) * 1024;  // kilobytes on Linux
}

// Ordinary tokens only: control and other added tokens are not what a benchmark prompt is made of. Ids must
// be below both the tokenizer's size and the embedding's rows.
Result<std::vector<int32_t>> benchmark_ids(const model::DeepSeek2& m, const text::Tokenizer& tok) {
  const int32_t n = std::min(tok.n_vocab(), static_cast<int32_t>(m.hparams().n_vocab));
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < n; ++id) {
    if (tok.token_type(id) == text::TokenType::kNormal) ids.push_back(id);
  }
  if (ids.empty()) {
    for (int32_t id = 0; id < n; ++id) {
      if (!tok.is_control(id)) ids.push_back(id);
    }
  }
  if (ids.empty())
    return make_error("{}: the vocabulary has no token that is not a control token", m.file().path());
  return ids;
}

// The forward passes of a run, over one sequence of the cache from position 0.
class Driver {
 public:
  // `ids`: the tokens to draw from, not empty.
  Driver(model::DeepSeek2& m, model::KvType kv_type, std::vector<int32_t> ids)
      : m_(m),
        cache_(m.hparams(), 1, m.n_ctx(), kv_type, 16, m.kv_backend()),
        rng_(20250101, "onecard-bench"),
        ids_(std::move(ids)) {}

  // Forgets the sequence: the next token goes to position 0, and attention never reads a position past the
  // token's own, so the rows left from before are as good as cleared.
  void reset() { pos_ = 0; }

  // n tokens in chunks of the batch size; with `last_logits`, the last one asks for logits, as a prompt's
  // last token does in the engine.
  Status prompt(int n, bool last_logits) {
    const int chunk = m_.n_batch();
    for (int first = 0; first < n; first += chunk) {
      const int k = std::min(chunk, n - first);
      batch_.clear();
      for (int i = 0; i < k; ++i)
        batch_.push_back({next_id(), pos_ + i, 0, last_logits && first + i == n - 1});
      ONECARD_TRY(m_.forward(batch_, cache_, logits_));
      pos_ += k;
    }
    return {};
  }

  // n tokens one forward pass each, each asking for logits.
  Status generate(int n) {
    for (int i = 0; i < n; ++i) {
      batch_.assign(1, {next_id(), pos_, 0, true});
      ONECARD_TRY(m_.forward(batch_, cache_, logits_));
      ++pos_;
    }
    return {};
  }

 private:
  int32_t next_id() { return ids_[rng_.below(static_cast<uint32_t>(ids_.size()))]; }

  model::DeepSeek2& m_;
  model::KvCache cache_;
  Rng rng_;
  std::vector<int32_t> ids_;
  std::vector<model::BatchToken> batch_;
  std::vector<float> logits_;
  int pos_ = 0;
};

Status run_test(Driver& d, const BenchOptions& o, TestResult& r) {
  const std::string name = r.test.name();
  for (int rep = 0; rep < o.reps; ++rep) {
    fmt::print(stderr, "onecard bench: {} rep {} of {}\n", name, rep + 1, o.reps);
    d.reset();
    ONECARD_TRY(d.prompt(r.test.depth, false));
    const auto t0 = Clock::now();
    if (r.test.n_prompt > 0) {
      ONECARD_TRY(d.prompt(r.test.n_prompt, true));
    } else {
      ONECARD_TRY(d.generate(r.test.n_gen));
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    r.rates.push_back((r.test.n_prompt + r.test.n_gen) / std::max(secs, 1e-9));
  }
  double sum = 0, sq = 0;
  for (double x : r.rates) sum += x;
  r.mean = sum / static_cast<double>(r.rates.size());
  for (double x : r.rates) sq += (x - r.mean) * (x - r.mean);
  r.sd = r.rates.size() > 1 ? std::sqrt(sq / static_cast<double>(r.rates.size() - 1)) : 0.0;
  r.peak_rss = peak_rss_bytes();
  return {};
}

double weight_gb_per_s(const ModelInfo& info, const TestResult& r) {
  return static_cast<double>(info.weight_bytes_per_token) * r.mean / 1e9;
}

void print_json(const BenchOptions& o, const model::DeepSeek2& m, const ModelInfo& info,
                const TestResult& r) {
  const nlohmann::ordered_json j = {
      {"model", info.file},
      {"model_types", info.types},
      {"size_bytes", info.size_bytes},
      {"params", info.params},
      {"test", r.test.name()},
      {"n_prompt", r.test.n_prompt},
      {"n_gen", r.test.n_gen},
      {"depth", r.test.depth},
      {"n_batch", m.n_batch()},
      {"n_ctx", m.n_ctx()},
      {"kv_type", o.model.kv_type},
      {"repack_experts", !o.model.no_repack},
      {"threads", info.threads},
      {"isa", info.isa},
      {"reps", o.reps},
      {"tokens_per_s", r.mean},
      {"sd", r.sd},
      {"samples_ts", r.rates},
      {"peak_rss_bytes", r.peak_rss},
      {"weight_bytes_per_token", info.weight_bytes_per_token},
      {"weight_gb_per_s", r.test.n_gen > 0 ? nlohmann::ordered_json(weight_gb_per_s(info, r)) : nullptr},
      {"version", kVersion}};
  fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
}

// A Markdown table, as llama-bench prints: the model column is as wide as its name, the others fixed, so
// that each row can be printed as soon as its test ends.
class Table {
 public:
  explicit Table(const ModelInfo& info) : model_(fmt::format("{} {}", info.file, info.types)) {}

  void header() const {
    row("model", "size", "params", "isa", "threads", "test", "t/s");
    std::string line = "|";
    for (size_t c = 0; c < kWidths.size(); ++c) {
      const size_t w = width(c);
      line += kRight[c] ? fmt::format(" {:-<{}}: |", "", w - 1) : fmt::format(" {:-<{}} |", "", w);
    }
    fmt::print("{}\n", line);
  }
  void result(const ModelInfo& info, const TestResult& r) const {
    row(model_, human_bytes(info.size_bytes), human_count(info.params), info.isa,
        fmt::format("{}", info.threads), r.test.name(), fmt::format("{:.2f} ± {:.2f}", r.mean, r.sd));
  }

 private:
  static constexpr std::array<size_t, 7> kWidths{0, 10, 10, 11, 7, 16, 20};
  static constexpr std::array<bool, 7> kRight{false, true, true, false, true, true, true};

  size_t width(size_t c) const { return c == 0 ? std::max<size_t>(model_.size(), 5) : kWidths[c]; }
  void row(std::initializer_list<std::string_view> cells) const {
    std::string line = "|";
    size_t c = 0;
    // fmt pads by code points, so "±" (two bytes) takes one column as it should.
    for (std::string_view cell : cells) {
      line += kRight[c] ? fmt::format(" {:>{}} |", cell, width(c)) : fmt::format(" {:<{}} |", cell, width(c));
      ++c;
    }
    fmt::print("{}\n", line);
  }
  template <class... Cells>
  void row(const Cells&... cells) const {
    row({std::string_view(cells)...});
  }

  std::string model_;
};

int run_bench(BenchOptions o) {
  auto fail = [](const Error& e) {
    fmt::print(stderr, "onecard bench: {}\n", e.message());
    return 1;
  };
  std::vector<Test> tests;
  if (o.n_prompt > 0) tests.push_back({o.n_prompt, 0, o.depth});
  if (o.n_gen > 0) tests.push_back({0, o.n_gen, o.depth});
  if (tests.empty()) return fail(make_error("-p 0 and -n 0: nothing to measure"));
  int need = 0;
  for (const Test& t : tests) need = std::max(need, t.positions());
  if (o.model.ctx == 0) {
    o.model.ctx = need;
  } else if (o.model.ctx < need) {
    return fail(
        make_error("--ctx-size {} is too small: --depth {} plus the longest test needs {} positions "
                   "(raise it, or leave it at 0 to fit)",
                   o.model.ctx, o.depth, need));
  }
  auto loaded = load_model(o.model);
  if (!loaded.ok()) return fail(loaded.error());
  model::DeepSeek2& m = *loaded->model;
  if (m.n_ctx() < need) {
    return fail(
        make_error("{}: the model's training context is {} tokens, fewer than the {} that --depth {} "
                   "plus the longest test needs",
                   o.model.path, m.n_ctx(), need, o.depth));
  }
  auto weight_bytes = weight_bytes_per_token(m.file(), m.hparams());
  if (!weight_bytes.ok()) return fail(weight_bytes.error());
  const ModelInfo info = describe(o, m, weight_bytes.value());

  auto ids = benchmark_ids(m, *loaded->tokenizer);
  if (!ids.ok()) return fail(ids.error());
  Driver driver(m, loaded->kv_type, std::move(ids).value());
  // Not reported: the first passes fault in the mapped weights and wake the thread pool.
  const int warm_prompt = std::clamp(m.n_ctx() / 2, 1, 16);
  const int warm_gen = std::min(4, m.n_ctx() - warm_prompt);
  fmt::print(stderr, "onecard bench: warm-up ({} prompt tokens, {} generated)\n", warm_prompt, warm_gen);
  if (auto st = driver.prompt(warm_prompt, true); !st.ok()) return fail(st.error());
  if (auto st = driver.generate(warm_gen); !st.ok()) return fail(st.error());

  const Table table(info);
  if (!o.json) table.header();
  std::vector<TestResult> results;
  for (const Test& t : tests) {
    TestResult r;
    r.test = t;
    if (auto st = run_test(driver, o, r); !st.ok()) return fail(st.error().with_context(t.name()));
    if (o.json) {
      print_json(o, m, info, r);
    } else {
      table.result(info, r);
    }
    std::fflush(stdout);
    results.push_back(std::move(r));
  }
  if (!o.json) {
    fmt::print("\nweights read per generated token: {} ({} bytes)\n",
               human_bytes(info.weight_bytes_per_token), info.weight_bytes_per_token);
    for (const TestResult& r : results) {
      if (r.test.n_gen > 0)
        fmt::print("{}: {:.2f} GB/s of weights at tg ({:.2f} tokens/s)\n", r.test.name(),
                   weight_gb_per_s(info, r), r.mean);
    }
  }
  return 0;
}

}  // namespace

Runner add_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  o->model.ctx = 0;
  auto* cmd = app.add_subcommand(
      "bench",
      "Measure prompt processing (ppP) and generation (tgN) speed on random tokens, as llama-bench does: one "
      "warm-up, then per rep an empty cache, --depth untimed positions and the timed test");
  // CLI11's PositiveNumber and NonNegativeNumber print the double range in their errors.
  const CLI::Range positive(1, std::numeric_limits<int>::max()),
      non_negative(0, std::numeric_limits<int>::max());
  o->model.add_to(cmd);
  cmd->get_option("--ctx-size")
      ->description("Context length in tokens (0: just what --depth plus the longer test needs)");
  cmd->get_option("--batch-size")->check(positive);
  cmd->add_option("-p,--n-prompt", o->n_prompt, "Prompt tokens of the pp test (0: no pp test)")
      ->check(non_negative)
      ->capture_default_str();
  cmd->add_option("-n,--n-gen", o->n_gen, "Tokens generated one at a time in the tg test (0: no tg test)")
      ->check(non_negative)
      ->capture_default_str();
  cmd->add_option("-r,--repetitions", o->reps, "Timed reps of each test; the table shows mean ± sd")
      ->check(positive)
      ->capture_default_str();
  cmd->add_option("-d,--depth", o->depth,
                  "Positions filled (untimed) before each rep; the test names then end in @dD")
      ->check(non_negative)
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "One JSON object per test, one per line, instead of the table");
  cmd->footer(
      "Progress goes to stderr, results to stdout. The footer's 'GB/s of weights at tg' is the bytes of "
      "weights one generated token reads (attention, norms, dense and shared FFNs, router, output head, the "
      "routed experts in use, one embedding row) times the tg rate.");
  return [o] { return run_bench(*o); };
}

}  // namespace onecard::app
