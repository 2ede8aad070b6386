// `onecard imatrix -m MODEL -f TEXT -o FILE`: an importance matrix for quantization. The text is cut into
// chunks of the context size, BOS first where the model has one (as `onecard perplexity` and llama.cpp's
// imatrix do), and every weight matrix's input is accumulated over all their tokens
// (model/imatrix_collector.h). The file is llama.cpp's GGUF imatrix format (model/imatrix_file.h), written
// only once every chunk has run.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "app/commands.h"
#include "app/model_flags.h"
#include "model/imatrix_collector.h"

namespace onecard::app {
namespace {

struct ImatrixOptions {
  ModelFlags model;
  std::string file;
  std::string out;
  int chunks = -1;
};

std::atomic<bool> g_interrupted{false};

void on_interrupt(int) {
  g_interrupted = true;
}

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("{}: cannot open", path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return make_error("{}: read failed", path);
  return ss.str();
}

// Fails now rather than after hours of calibration when the output cannot be created.
Status check_writable(const std::string& out) {
  const std::string probe = out + ".part";
  std::FILE* f = std::fopen(probe.c_str(), "wb");
  if (f == nullptr) return make_error("{}: cannot create: {}", probe, std::strerror(errno));
  std::fclose(f);
  std::remove(probe.c_str());
  return {};
}

// The mean negative log-likelihood of tokens [from, n) of a chunk, whose logits rows are positions 0..n-1.
double chunk_nll(const std::vector<float>& logits, size_t n_vocab, const int32_t* chunk, int from, int n) {
  double sum = 0;
  for (int i = from; i < n; ++i) {
    const float* row = logits.data() + static_cast<size_t>(i - 1) * n_vocab;
    const double mx = *std::max_element(row, row + n_vocab);
    double z = 0;
    for (size_t v = 0; v < n_vocab; ++v) z += std::exp(row[v] - mx);
    sum += std::log(z) + mx - row[chunk[i]];
  }
  return sum / (n - from);
}

int run_imatrix(const ImatrixOptions& o) {
  auto fail = [](const Error& e) {
    fmt::print(stderr, "onecard imatrix: {}\n", e.message());
    return 1;
  };
  auto text = read_text(o.file);
  if (!text.ok()) return fail(text.error());
  if (auto st = check_writable(o.out); !st.ok()) return fail(st.error());
  auto loaded = load_model(o.model);
  if (!loaded.ok()) return fail(loaded.error());
  model::DeepSeek2& m = *loaded->model;

  text::EncodeOptions enc;
  enc.add_bos = false;
  auto ids = loaded->tokenizer->encode(*text, enc);
  if (!ids.ok()) return fail(ids.error().with_context(o.file));
  const int n_ctx = m.n_ctx();
  if (n_ctx < 2) return fail(make_error("a chunk of {} token is too short (--ctx-size)", n_ctx));
  const int available = static_cast<int>(ids->size() / static_cast<size_t>(n_ctx));
  if (available < 1) {
    return fail(make_error("{}: {} tokens are fewer than one chunk of {} (lower --ctx-size)", o.file,
                           ids->size(), n_ctx));
  }
  const int n_chunks = o.chunks > 0 ? std::min(o.chunks, available) : available;
  fmt::print(stderr, "onecard imatrix: {} tokens, {} chunks of {}\n", ids->size(), n_chunks, n_ctx);

  model::ImatrixCollector collector;
  if (auto observing = m.set_observer(&collector); !observing.ok()) return fail(observing.error());
  const model::KvCache cache(m.hparams(), 1, n_ctx, loaded->kv_type);
  const auto n_vocab = static_cast<size_t>(m.hparams().n_vocab);
  const int32_t bos = loaded->tokenizer->bos();
  std::vector<model::BatchToken> batch(static_cast<size_t>(n_ctx));
  std::vector<float> logits;
  double nll_sum = 0;
  // Ctrl-C ends the run after the chunk in progress, without writing anything; a second one kills at once.
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &sa, nullptr);
  for (int c = 0; c < n_chunks; ++c) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<int32_t> chunk(ids->begin() + static_cast<std::ptrdiff_t>(c) * n_ctx,
                               ids->begin() + static_cast<std::ptrdiff_t>(c + 1) * n_ctx);
    if (bos >= 0) chunk[0] = bos;
    // Every position's logits: output.weight's inputs are observed, and the chunk's perplexity is cheap.
    for (int i = 0; i < n_ctx; ++i) batch[i] = {chunk[i], i, 0, true};
    auto st = m.forward(batch, cache, logits);
    if (!st.ok()) return fail(st.error());
    if (!collector.status().ok()) return fail(collector.status().error().with_context(o.model.path));
    // Scored as `onecard perplexity` does: the second half, whose tokens see at least half a context.
    nll_sum += chunk_nll(logits, n_vocab, chunk.data(), std::max(1, n_ctx / 2), n_ctx);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (c == 0) {
      fmt::print(stderr, "onecard imatrix: {:.2f} s per chunk, about {:.1f} min in all\n", seconds,
                 seconds * n_chunks / 60.0);
    }
    fmt::print("[{}]{:.4f}{}", c + 1, std::exp(nll_sum / (c + 1)), c + 1 == n_chunks ? "\n" : ",");
    std::fflush(stdout);
    if (g_interrupted) {
      fmt::print(stderr, "\nonecard imatrix: interrupted after {} of {} chunks; {} not written\n", c + 1,
                 n_chunks, o.out);
      return 130;
    }
  }
  (void)m.set_observer(nullptr);  // detaching cannot fail

  const model::Imatrix result =
      collector.result({o.file}, static_cast<uint32_t>(n_chunks), static_cast<uint32_t>(n_ctx));
  if (auto st = model::write_imatrix(o.out, result); !st.ok()) return fail(st.error());
  fmt::print(stderr, "onecard imatrix: {} entries over {} chunks of {} tokens written to {}\n",
             result.entries.size(), n_chunks, n_ctx, o.out);
  return 0;
}

}  // namespace

Runner add_imatrix(CLI::App& app) {
  auto o = std::make_shared<ImatrixOptions>();
  o->model.ctx = 512;
  auto* cmd = app.add_subcommand(
      "imatrix",
      "Importance matrix for quantization: each weight matrix's (and each expert's) mean squared input "
      "activation per column over a calibration text, in llama.cpp's GGUF imatrix format (for quantize "
      "--imatrix)");
  o->model.add_to(cmd);
  cmd->get_option("--ctx-size")
      ->description("Tokens per chunk, each a fresh context (capped at the model's)");
  cmd->add_option("-f,--file", o->file, "Calibration text file")->required();
  cmd->add_option("-o,--output", o->out,
                  "Importance matrix to write (GGUF; written at the end, via FILE.part)")
      ->required();
  cmd->add_option("--chunks", o->chunks, "Run at most this many chunks of --ctx-size tokens (-1: all)")
      ->capture_default_str();
  return [o] { return run_imatrix(*o); };
}

}  // namespace onecard::app
