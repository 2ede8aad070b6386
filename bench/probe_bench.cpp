// The machine's limits the kernels are judged against: read-only memory bandwidth and the int8 dot-product
// peaks of independent vpdpbusd (AVX-512 VNNI on zmm, AVX-VNNI on ymm) and vpmaddubsw (AVX2) instructions.
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "bench_util.h"

namespace onecard::bench {
namespace {

void BM_MemoryBandwidth(benchmark::State& state) {
  std::vector<uint8_t> buf(size_t{1} << 30);
  std::memset(buf.data(), 1, buf.size());
  for (auto _ : state) benchmark::DoNotOptimize(stream_read(buf.data(), buf.size()));
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(buf.size()) * 1e-9 * state.iterations(),
                                              benchmark::Counter::kIsRate);
  state.counters["threads"] = pool().size();
}
BENCHMARK(BM_MemoryBandwidth)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

void BM_VnniPeak(benchmark::State& state) {
  double ops = 0;
  for (auto _ : state) ops = vnni_peak_ops_measure(10'000'000);
  state.counters["GOP/s"] = ops * 1e-9;
  state.counters["threads"] = pool().size();
}
BENCHMARK(BM_VnniPeak)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_MaddubsPeak(benchmark::State& state) {
  double ops = 0;
  for (auto _ : state) ops = maddubs_peak_ops_measure(10'000'000);
  state.counters["GOP/s"] = ops * 1e-9;
  state.counters["threads"] = pool().size();
}
BENCHMARK(BM_MaddubsPeak)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_AvxVnniPeak(benchmark::State& state) {
  double ops = 0;
  for (auto _ : state) ops = avx_vnni_peak_ops_measure(10'000'000);
  state.counters["GOP/s"] = ops * 1e-9;
  state.counters["threads"] = pool().size();
}
BENCHMARK(BM_AvxVnniPeak)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace onecard::bench
