// The engine on the demo model: aggregate decode rate with 1 and 8 sequences batched, and the scheduler's
// own share of a step (everything but the forward pass). The model is generated once into the temp folder
// (or taken from $ONECARD_BENCH_MODEL).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

#include "model/deepseek2.h"
#include "runtime/engine.h"
#include "synth/generate.h"
#include "text/tokenizer.h"

namespace onecard {
namespace {

struct Loaded {
  std::unique_ptr<model::DeepSeek2> model;
  std::unique_ptr<text::Tokenizer> tokenizer;
};

Loaded& demo() {
  static Loaded loaded = [] {
    std::string path;
    if (const char* p = std::getenv("ONECARD_BENCH_MODEL"); p != nullptr) {
      path = p;
    } else {
      path = (std::filesystem::temp_directory_path() / "onecard-bench-demo.gguf").string();
      if (!std::filesystem::exists(path))
        (void)synth::generate(synth::make_spec("demo").value(), path, false).value();
    }
    model::LoadOptions o;
    o.n_ctx = 1024;
    Loaded l;
    l.model = model::DeepSeek2::load(path, o).value();
    l.tokenizer = text::Tokenizer::from_gguf(l.model->file()).value();
    return l;
  }();
  return loaded;
}

// `parallel` sequences, each a short prompt and 64 generated tokens, all submitted at once.
void BM_EngineDecode(benchmark::State& state) {
  Loaded& l = demo();
  const int parallel = static_cast<int>(state.range(0));
  constexpr int kTokens = 64;
  runtime::EngineOptions eo;
  eo.parallel = parallel;
  runtime::Engine engine(*l.model, *l.tokenizer, eo);
  for (auto _ : state) {
    int done = 0;
    for (int i = 0; i < parallel; ++i) {
      runtime::GenerationRequest r;
      r.prompt = {1, 300 + i, 400 + i, 500 + i, 600 + i, 700 + i, 800 + i, 900 + i};
      r.options.max_tokens = kTokens;
      r.options.ignore_eos = true;
      r.options.sampling.seed = static_cast<uint64_t>(i);
      r.on_event = [&done](const runtime::GenerationEvent& e) { done += e.done ? 1 : 0; };
      (void)engine.submit(std::move(r));
    }
    while (done < parallel) engine.step();
  }
  const runtime::EngineStats s = engine.stats();
  const auto generated = static_cast<double>(s.generated_tokens);
  const double step_s = s.step_seconds, forward_s = s.forward_seconds;
  state.counters["tokens_per_s"] = benchmark::Counter(generated, benchmark::Counter::kIsRate);
  state.counters["scheduler_share"] = step_s > 0 ? (step_s - forward_s) / step_s : 0;
}
BENCHMARK(BM_EngineDecode)->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace onecard
