// One decode step of MLA attention over a bf16 latent cache on DeepSeek-V3 shapes: 128 heads, rows of 576
// (512 latent + 64 rope), pages of 16 positions, the heads in groups spread over the pool as the model does.
// Per ISA's kernels, context length and heads per group (a group reads the cache twice, scores then sums);
// reports multiply-adds per second of the scores and weighted sums.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <vector>

#include "base/half.h"
#include "base/rng.h"
#include "bench_util.h"
#include "cpu/isa.h"
#include "cpu/kernels.h"

namespace onecard::bench {
namespace {

constexpr int kHeads = 128;
constexpr int64_t kWidth = 576, kLatent = 512, kPage = 16;

enum class Kernel { kAvx2, kAvx512 };

bool supported(cpu::Isa isa) {
  const std::vector<cpu::Isa> all = cpu::supported_isas();
  return std::find(all.begin(), all.end(), isa) != all.end();
}

bool available(Kernel k) {
  switch (k) {
    case Kernel::kAvx2:
      return supported(cpu::Isa::Avx2);
    case Kernel::kAvx512:
      return supported(cpu::Isa::Avx512Vnni);
  }
  return false;
}

cpu::LatentKernels kernels_of(Kernel k) {
  switch (k) {
    case Kernel::kAvx2:
      return cpu::latent_avx2(true);
    case Kernel::kAvx512:
      return cpu::latent_avx512(true);
  }
  return {};
}

void BM_LatentDecode(benchmark::State& state, Kernel kernel) {
  if (!available(kernel)) {
    state.SkipWithError("kernel not supported by this CPU");
    return;
  }
  const cpu::LatentKernels lk = kernels_of(kernel);
  const int64_t n_pos = state.range(0);
  const int kGroup = static_cast<int>(state.range(1));
  Rng rng(3, "bench-latent");
  std::vector<uint16_t> cache(static_cast<size_t>(n_pos * kWidth));
  for (uint16_t& v : cache) v = fp32_to_bf16(rng.normal());
  std::vector<float> q(static_cast<size_t>(kHeads * kWidth));
  for (float& v : q) v = rng.normal();
  const int n_groups = kHeads / kGroup;
  std::vector<std::vector<float>> scores(static_cast<size_t>(n_groups)), out(static_cast<size_t>(n_groups));
  for (int i = 0; i < n_groups; ++i) {
    scores[i].resize(static_cast<size_t>(kGroup * n_pos));
    out[i].resize(static_cast<size_t>(kGroup * kLatent));
  }
  const auto& softmax = cpu::best_kernels().softmax;
  for (auto _ : state) {
    pool().parallel_for(n_groups, [&](int64_t group, int) {
      const float* qg = q.data() + group * kGroup * kWidth;
      float* s = scores[group].data();
      float* o = out[group].data();
      std::fill(o, o + kGroup * kLatent, 0.0f);
      for (int64_t first = 0; first < n_pos; first += kPage) {
        lk.scores(qg, kGroup, kWidth, cache.data() + first * kWidth, std::min(kPage, n_pos - first), kWidth,
                  0.04f, s + first, n_pos);
      }
      for (int j = 0; j < kGroup; ++j) softmax(s + j * n_pos, n_pos);
      for (int64_t first = 0; first < n_pos; first += kPage) {
        lk.sum(s + first, n_pos, kGroup, cache.data() + first * kWidth, std::min(kPage, n_pos - first),
               kWidth, kLatent, o, kLatent);
      }
    });
    benchmark::DoNotOptimize(out[0].data());
  }
  const double macs = static_cast<double>(kHeads) * static_cast<double>(n_pos) * (kWidth + kLatent);
  state.counters["GMAC/s"] = benchmark::Counter(macs * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["cache_MB"] = static_cast<double>(cache.size() * sizeof(uint16_t)) / 1e6;
}

BENCHMARK_CAPTURE(BM_LatentDecode, avx2_fma, Kernel::kAvx2)
    ->ArgsProduct({{4096, 16384}, {16, 64}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_LatentDecode, avx512_fma, Kernel::kAvx512)
    ->ArgsProduct({{4096, 16384}, {16, 64}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace onecard::bench
