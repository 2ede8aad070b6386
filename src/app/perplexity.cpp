// `onecard perplexity -m MODEL -f TEXT`: perplexity by the usual chunked method. The text is cut into chunks
// of the context size, each chunk starts with BOS, and the second half of each chunk is scored (its tokens
// then always see at least half a context before them).
#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "app/commands.h"
#include "app/model_flags.h"

namespace onecard::app {
namespace {

struct PerplexityOptions {
  ModelFlags model;
  std::string file;
  int chunks = -1;
};

int run_perplexity(PerplexityOptions o) {
  auto fail = [](const Error& e) {
    fmt::print(stderr, "onecard perplexity: {}\n", e.message());
    return 1;
  };
  std::ifstream in(o.file, std::ios::binary);
  if (!in) return fail(make_error("{}: cannot open", o.file));
  std::stringstream ss;
  ss << in.rdbuf();
  auto loaded = load_model(o.model);
  if (!loaded.ok()) return fail(loaded.error());
  model::DeepSeek2& m = *loaded->model;
  text::EncodeOptions enc;
  enc.add_bos = false;
  auto ids = loaded->tokenizer->encode(ss.str(), enc);
  if (!ids.ok()) return fail(ids.error().with_context(o.file));
  const int n_ctx = m.n_ctx();
  const int available = static_cast<int>(ids->size()) / n_ctx;
  if (available < 1) {
    return fail(make_error("{}: {} tokens are fewer than one chunk of {} (lower --ctx-size)", o.file,
                           ids->size(), n_ctx));
  }
  const int n_chunks = o.chunks > 0 ? std::min(o.chunks, available) : available;
  fmt::print(stderr, "onecard perplexity: {} tokens, {} chunks of {}\n", ids->size(), n_chunks, n_ctx);

  const int32_t bos = loaded->tokenizer->bos();
  const int first_scored = n_ctx / 2;
  const auto n_vocab = static_cast<size_t>(m.hparams().n_vocab);
  double nll_sum = 0, nll_sq = 0;
  int64_t count = 0;
  const model::KvCache cache(m.hparams(), 1, n_ctx, loaded->kv_type);
  std::vector<model::BatchToken> batch(static_cast<size_t>(n_ctx));
  std::vector<float> logits;
  for (int c = 0; c < n_chunks; ++c) {
    const int32_t* chunk = ids->data() + static_cast<size_t>(c) * n_ctx;
    for (int i = 0; i < n_ctx; ++i) {
      const int32_t token = i == 0 && bos >= 0 ? bos : chunk[i];
      batch[i] = {token, i, 0, i >= first_scored - 1 && i < n_ctx - 1};
    }
    auto st = m.forward(batch, cache, logits);
    if (!st.ok()) return fail(st.error());
    // Row r of the logits predicts token first_scored + r.
    for (int i = first_scored; i < n_ctx; ++i) {
      const float* row = logits.data() + static_cast<size_t>(i - first_scored) * n_vocab;
      const double mx = *std::max_element(row, row + n_vocab);
      double z = 0;
      for (size_t v = 0; v < n_vocab; ++v) z += std::exp(row[v] - mx);
      const double nll = std::log(z) + mx - row[chunk[i]];
      nll_sum += nll;
      nll_sq += nll * nll;
      ++count;
    }
    fmt::print("[{}]{:.4f}{}", c + 1, std::exp(nll_sum / count), c + 1 == n_chunks ? "\n" : ",");
    std::fflush(stdout);
  }
  const double mean = nll_sum / count;
  const double stderr_nll =
      std::sqrt(std::max(0.0, nll_sq / count - mean * mean) / std::max<int64_t>(1, count - 1));
  fmt::print("PPL = {:.4f} +/- {:.4f} over {} tokens\n", std::exp(mean), std::exp(mean) * stderr_nll, count);
  return 0;
}

}  // namespace

Runner add_perplexity(CLI::App& app) {
  auto o = std::make_shared<PerplexityOptions>();
  o->model.ctx = 512;
  auto* cmd = app.add_subcommand("perplexity",
                                 "Perplexity of a model on a text file (chunked, second halves scored)");
  o->model.add_to(cmd);
  cmd->add_option("-f,--file", o->file, "Text file")->required();
  cmd->add_option("--chunks", o->chunks, "Score at most this many chunks (-1: all)")->capture_default_str();
  return [o] { return run_perplexity(*o); };
}

}  // namespace onecard::app
