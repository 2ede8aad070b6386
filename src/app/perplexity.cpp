// `onecard perplexity -m MODEL -f TEXT`: perplexity by the usual chunked method. The text is cut into chunks
// of the context size, each chunk starts with BOS, and the second half of each chunk is scored (its tokens
// then always see at least half a context before them).
//
// With --kl-divergence-base FILE the chunks and the log-softmax of every scored position are saved to FILE;
// with --kl-divergence as well, the chunks come from FILE instead of a text and the model is compared with
// the saved one (KL divergence, top-token agreement, both perplexities).
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>

#include "app/commands.h"
#include "app/kl_divergence.h"
#include "app/model_flags.h"

namespace onecard::app {
namespace {

struct PerplexityOptions {
  ModelFlags model;
  std::string file;
  int chunks = -1;
  std::string kl_base;
  bool kl_divergence = false;
  const CLI::Option* ctx_option = nullptr;
};

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("{}: cannot open", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The chunks of a text, as fed to the model: n_ctx tokens each, BOS first where the model has one.
Result<KlBaseInfo> chunk_text(const std::string& path, const LoadedModel& loaded, int max_chunks) {
  ONECARD_ASSIGN_OR_RETURN(const std::string text, read_text(path));
  text::EncodeOptions enc;
  enc.add_bos = false;
  auto ids = loaded.tokenizer->encode(text, enc);
  if (!ids.ok()) return ids.error().with_context(path);
  const int n_ctx = loaded.model->n_ctx();
  const int available = static_cast<int>(ids->size()) / n_ctx;
  if (available < 1) {
    return make_error("{}: {} tokens are fewer than one chunk of {} (lower --ctx-size)", path, ids->size(),
                      n_ctx);
  }
  KlBaseInfo c;
  c.n_vocab = static_cast<uint32_t>(loaded.model->hparams().n_vocab);
  c.n_ctx = static_cast<uint32_t>(n_ctx);
  c.n_chunks = static_cast<uint32_t>(max_chunks > 0 ? std::min(max_chunks, available) : available);
  c.first_scored = c.n_ctx / 2;
  c.tokens.assign(ids->begin(), ids->begin() + static_cast<std::ptrdiff_t>(c.n_chunks) * n_ctx);
  const int32_t bos = loaded.tokenizer->bos();
  if (bos >= 0) {
    for (uint32_t k = 0; k < c.n_chunks; ++k) c.tokens[uint64_t{k} * c.n_ctx] = bos;
  }
  fmt::print(stderr, "onecard perplexity: {} tokens, {} chunks of {}\n", ids->size(), c.n_chunks, n_ctx);
  return c;
}

int run_perplexity(PerplexityOptions o) {
  auto fail = [](const Error& e) {
    fmt::print(stderr, "onecard perplexity: {}\n", e.message());
    return 1;
  };
  if (o.kl_divergence && o.kl_base.empty())
    return fail(make_error("--kl-divergence needs --kl-divergence-base FILE (the saved base model)"));
  if (o.kl_divergence && !o.file.empty())
    return fail(make_error("-f and --kl-divergence: the text comes from the --kl-divergence-base file"));
  if (!o.kl_divergence && o.file.empty()) return fail(make_error("-f TEXT is required"));

  std::optional<KlBaseReader> base;
  if (o.kl_divergence) {
    auto r = KlBaseReader::open(o.kl_base);
    if (!r.ok()) return fail(r.error());
    const uint32_t file_ctx = r->info().n_ctx;
    if (o.ctx_option->count() > 0 && static_cast<uint32_t>(o.model.ctx) != file_ctx)
      return fail(make_error("{}: n_ctx is {} but -c is {}", o.kl_base, file_ctx, o.model.ctx));
    o.model.ctx = static_cast<int>(file_ctx);
    base.emplace(std::move(r).value());
  }
  auto loaded = load_model(o.model);
  if (!loaded.ok()) return fail(loaded.error());
  model::DeepSeek2& m = *loaded->model;
  const auto n_vocab = static_cast<uint32_t>(m.hparams().n_vocab);

  KlBaseInfo chunks;
  if (base) {
    const KlBaseInfo& bi = base->info();
    if (bi.n_vocab != n_vocab)
      return fail(
          make_error("{}: n_vocab is {} but {} has {} tokens", o.kl_base, bi.n_vocab, o.model.path, n_vocab));
    if (static_cast<uint32_t>(m.n_ctx()) != bi.n_ctx)
      return fail(make_error("{}: n_ctx is {} but {} holds a context of {}", o.kl_base, bi.n_ctx,
                             o.model.path, m.n_ctx()));
    chunks = bi;
    if (o.chunks > 0) chunks.n_chunks = std::min<uint32_t>(chunks.n_chunks, static_cast<uint32_t>(o.chunks));
    fmt::print(stderr, "onecard perplexity: {} chunks of {} from {}\n", chunks.n_chunks, chunks.n_ctx,
               o.kl_base);
  } else {
    auto c = chunk_text(o.file, *loaded, o.chunks);
    if (!c.ok()) return fail(c.error());
    chunks = std::move(c).value();
  }
  std::optional<KlBaseWriter> writer;
  if (!o.kl_base.empty() && !o.kl_divergence) {
    auto w = KlBaseWriter::create(o.kl_base, chunks);
    if (!w.ok()) return fail(w.error());
    writer.emplace(std::move(w).value());
  }

  const auto n_ctx = static_cast<int>(chunks.n_ctx);
  const auto first_scored = static_cast<int>(chunks.first_scored);
  double nll_sum = 0, nll_sq = 0;
  int64_t count = 0;
  KlAccumulator kl;
  std::vector<float> base_lp;
  const model::KvCache cache(m.hparams(), 1, n_ctx, loaded->kv_type, 16, m.kv_backend());
  std::vector<model::BatchToken> batch(static_cast<size_t>(n_ctx));
  std::vector<float> logits;
  for (uint32_t c = 0; c < chunks.n_chunks; ++c) {
    const int32_t* chunk = chunks.tokens.data() + uint64_t{c} * chunks.n_ctx;
    for (int i = 0; i < n_ctx; ++i) batch[i] = {chunk[i], i, 0, i >= first_scored - 1 && i < n_ctx - 1};
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
      if (writer) {
        st = writer->add(row);
        if (!st.ok()) return fail(st.error());
      }
      if (base) {
        int32_t base_top = 0;
        st = base->next(base_lp, base_top);
        if (!st.ok()) return fail(st.error());
        auto p = compare_position(base_lp.data(), base_top, row, n_vocab, chunk[i]);
        if (!p.ok()) return fail(p.error().with_context(fmt::format("chunk {}, position {}", c, i)));
        kl.add(*p);
      }
    }
    if (base) {
      fmt::print("[{}]{:.4f} KLD {:.6f}{}", c + 1, std::exp(nll_sum / count), kl.summary().kld_mean,
                 c + 1 == chunks.n_chunks ? "\n" : ",");
    } else {
      fmt::print("[{}]{:.4f}{}", c + 1, std::exp(nll_sum / count), c + 1 == chunks.n_chunks ? "\n" : ",");
    }
    std::fflush(stdout);
  }
  const double mean = nll_sum / count;
  const double stderr_nll =
      std::sqrt(std::max(0.0, nll_sq / count - mean * mean) / std::max<int64_t>(1, count - 1));
  fmt::print("PPL = {:.4f} +/- {:.4f} over {} tokens\n", std::exp(mean), std::exp(mean) * stderr_nll, count);
  if (writer) {
    const auto st = writer->finish();
    if (!st.ok()) return fail(st.error());
    fmt::print(stderr, "onecard perplexity: saved {} chunks and the log-probabilities of {} tokens to {}\n",
               chunks.n_chunks, count, o.kl_base);
  }
  if (base) fmt::print("{}", format_kl_summary(kl.summary()));
  return 0;
}

}  // namespace

Runner add_perplexity(CLI::App& app) {
  auto o = std::make_shared<PerplexityOptions>();
  o->model.ctx = 512;
  auto* cmd = app.add_subcommand("perplexity",
                                 "Perplexity of a model on a text file (chunked, second halves scored)");
  o->model.add_to(cmd);
  o->ctx_option = cmd->get_option("--ctx-size");
  cmd->add_option("-f,--file", o->file, "Text file (not with --kl-divergence)");
  cmd->add_option("--chunks", o->chunks, "Score at most this many chunks (-1: all)")->capture_default_str();
  cmd->add_option("--kl-divergence-base", o->kl_base,
                  "Save the chunks and every scored position's log-probabilities to this file; with "
                  "--kl-divergence, read them from it instead");
  cmd->add_flag("--kl-divergence", o->kl_divergence,
                "Compare the model with the --kl-divergence-base file: KL divergence, same top token, both "
                "perplexities (-c defaults to the file's)");
  return [o] { return run_perplexity(*o); };
}

}  // namespace onecard::app
