// `onecard logits`: the logits of every position of a token sequence, for tests and for checking a model.
#include <cstdio>
#include <fstream>
#include <vector>

#include <fmt/format.h>

#include "app/commands.h"
#include "app/model_flags.h"
#include "model/deepseek2.h"

namespace onecard::app {
namespace {

struct LogitsOptions {
  std::string model, tokens, out, kv_type = "f32";
  int chunk = 0;
  int threads = 0;
  bool no_repack = false;
  PlacementFlags placement;
};

Result<std::vector<int32_t>> read_tokens(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return make_error("{}: cannot open", path);
  const auto size = static_cast<size_t>(in.tellg());
  if (size == 0 || size % 4 != 0)
    return make_error("{}: {} bytes is not a non-empty list of int32 ids", path, size);
  std::vector<int32_t> ids(size / 4);
  in.seekg(0);
  in.read(reinterpret_cast<char*>(ids.data()), static_cast<std::streamsize>(size));
  return ids;
}

int run_logits(const LogitsOptions& o) {
  auto fail = [](const Error& e) {
    fmt::print(stderr, "onecard logits: {}\n", e.message());
    return 1;
  };
  if (auto gpu = gpu_requested(o.placement, o.model); !gpu.ok()) return fail(gpu.error());
  auto ids = read_tokens(o.tokens);
  if (!ids.ok()) return fail(ids.error());
  auto kv = model::kv_type_from_name(o.kv_type);
  if (!kv.ok()) return fail(kv.error());
  const int n = static_cast<int>(ids->size());
  model::LoadOptions lo;
  lo.n_ctx = n;
  lo.n_batch = o.chunk > 0 ? o.chunk : n;
  lo.n_threads = o.threads;
  lo.repack_experts = !o.no_repack;
  auto devices = gpu_placement(o.placement, o.model, static_cast<uint32_t>(n),
                               static_cast<uint32_t>(lo.n_batch), kv.value());
  if (!devices.ok()) return fail(devices.error());
  lo.device_of = std::move(devices).value();
  auto m = model::DeepSeek2::load(o.model, lo);
  if (!m.ok()) return fail(m.error());
  if (m.value()->n_ctx() < n) {
    return fail(make_error("{} tokens exceed the model's context of {}", n, m.value()->n_ctx()));
  }
  std::vector<model::BatchToken> batch;
  for (int i = 0; i < n; ++i) batch.push_back({ids.value()[i], i, 0, true});
  const model::KvCache cache(m.value()->hparams(), 1, n, kv.value(), 16, m.value()->kv_backend());
  std::vector<float> logits;
  auto st = m.value()->forward(batch, cache, logits);
  if (!st.ok()) return fail(st.error());
  std::FILE* f = std::fopen(o.out.c_str(), "wb");
  if (f == nullptr || std::fwrite(logits.data(), sizeof(float), logits.size(), f) != logits.size() ||
      std::fclose(f) != 0) {
    return fail(make_error("{}: cannot write", o.out));
  }
  fmt::print(stderr, "onecard logits: wrote {} x {} logits to {}\n", n, m.value()->hparams().n_vocab, o.out);
  return 0;
}

}  // namespace

Runner add_logits(CLI::App& app) {
  auto o = std::make_shared<LogitsOptions>();
  auto* cmd = app.add_subcommand("logits", "Write the logits of every position of a token sequence");
  cmd->add_option("-m,--model", o->model, "GGUF model")->required();
  cmd->add_option("--tokens", o->tokens, "Input token ids: little-endian int32")->required();
  cmd->add_option("--out", o->out, "Output: [tokens, vocab] float32")->required();
  cmd->add_option("--chunk", o->chunk, "Tokens per forward step (default: all at once)");
  cmd->add_option("--kv-type", o->kv_type, "KV cache type: f32 or bf16")->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "Threads (default: one per logical CPU)");
  cmd->add_flag("--no-repack", o->no_repack, kNoRepackHelp);
  o->placement.add_to(cmd, kModelPlacementNote);
  return [o] { return run_logits(*o); };
}

}  // namespace onecard::app
