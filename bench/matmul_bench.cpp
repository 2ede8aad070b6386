// GEMV (decode: one token) and GEMM (prefill: a batch) per weight format on DeepSeek-V3 expert shapes
// (2048 rows of 7168). GEMV rotates over enough matrices to exceed the last-level cache, so weights come
// from memory as in decode, and reports GB/s of weights read, its fraction of the bandwidth probed at start
// (of_probe) and of plain reads of the same matrices interleaved with it (of_read).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <vector>

#include "base/rng.h"
#include "bench_util.h"
#include "cpu/kernels.h"
#include "cpu/matmul.h"

namespace onecard::bench {
namespace {

using gguf::GgmlType;

constexpr int64_t kRows = 2048, kCols = 7168;
constexpr size_t kRotationBytes = size_t{256} << 20;  // well past the 32 MiB L3 of the test machine

std::vector<float> activations(int64_t n) {
  Rng rng(1, "bench-x");
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = rng.normal();
  return x;
}

void BM_Gemv(benchmark::State& state, GgmlType type) {
  const size_t bytes = gguf::row_bytes(type, kCols) * kRows;
  const size_t copies = std::max<size_t>(2, (kRotationBytes + bytes - 1) / bytes);
  // The copies lie in one buffer so that the interleaved probe below streams them as one long read.
  std::vector<uint8_t> rotation(bytes * copies);
  for (size_t i = 0; i < copies; ++i) {
    const std::vector<uint8_t> m = random_matrix(type, kRows, kCols, i);
    std::copy(m.begin(), m.end(), rotation.begin() + static_cast<std::ptrdiff_t>(i * bytes));
  }
  const std::vector<float> x = activations(kCols);
  std::vector<float> y(kRows);
  const double probe = probed_bandwidth();
  size_t i = 0;
  double seconds = 0, read_seconds = 0, read_bytes = 0;
  for (auto _ : state) {
    const cpu::Matrix w = cpu::make_matrix(type, kCols, kRows, rotation.data() + (i++ % copies) * bytes);
    const auto t0 = std::chrono::steady_clock::now();
    cpu::matmul(w, x.data(), kCols, 1, y.data(), kRows, pool());
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(y.data());
    if (i % copies == 0) {
      // After each pass over the rotation, a plain read of the same bytes: this VM's bandwidth drifts by
      // half within minutes, so the kernel is also compared with reads taken in the same seconds.
      state.PauseTiming();
      const auto r0 = std::chrono::steady_clock::now();
      benchmark::DoNotOptimize(stream_read(rotation.data(), rotation.size()));
      read_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - r0).count();
      read_bytes += static_cast<double>(rotation.size());
      state.ResumeTiming();
    }
  }
  const double gbps = static_cast<double>(bytes) * state.iterations() / seconds * 1e-9;
  state.counters["GB/s"] = gbps;
  state.counters["of_probe"] = gbps / (probe * 1e-9);
  state.counters["probe_GB/s"] = probe * 1e-9;
  if (read_seconds > 0) {
    const double read_gbps = read_bytes / read_seconds * 1e-9;
    state.counters["read_GB/s"] = read_gbps;
    state.counters["of_read"] = gbps / read_gbps;
  }
}

// One thread's row dots over rows that stay in L2 (kCacheRows of kCols), with the kernel table of
// ONECARD_CPU_ISA: GB/s of weights the kernel consumes when memory is no bound. This is the stable figure
// for A/B comparisons on a noisy VM; a kernel reads memory at full speed in BM_Gemv only when this is
// comfortably above one core's share of the bandwidth.
void BM_RowDot(benchmark::State& state, GgmlType type) {
  constexpr int64_t kCacheRows = 16;
  const std::vector<uint8_t> data = random_matrix(type, kCacheRows, kCols, 3);
  const cpu::Matrix w = cpu::make_matrix(type, kCols, kCacheRows, data.data());
  const std::vector<float> x = activations(kCols);
  const cpu::KernelTable& k = cpu::active_kernels();
  float out[cpu::kFloatTokens];
  if (const cpu::IntFormat* f = cpu::int_format(type)) {
    std::vector<uint8_t> act(cpu::act_row_bytes(f->act, kCols));
    cpu::quantize_act(f->act, x.data(), act.data(), kCols);
    const cpu::VecDotFn dot = k.row_dot[type];
    for (auto _ : state) {
      for (int64_t r = 0; r < kCacheRows; ++r) out[0] = dot(*f, kCols, w.row(r), act.data());
      benchmark::DoNotOptimize(out[0]);
    }
  } else {
    const cpu::FloatDotFn dot = k.float_dot[type];
    for (auto _ : state) {
      for (int64_t r = 0; r < kCacheRows; ++r) dot(w.row(r), x.data(), kCols, 1, kCols, out);
      benchmark::DoNotOptimize(out[0]);
    }
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(w.bytes()) * 1e-9 * state.iterations(),
                                              benchmark::Counter::kIsRate);
}

void BM_Gemm(benchmark::State& state, GgmlType type) {
  const int64_t tokens = state.range(0);
  const std::vector<uint8_t> data = random_matrix(type, kRows, kCols, 7);
  const cpu::Matrix w = cpu::make_matrix(type, kCols, kRows, data.data());
  const std::vector<float> x = activations(tokens * kCols);
  std::vector<float> y(static_cast<size_t>(tokens * kRows));
  for (auto _ : state) {
    cpu::matmul(w, x.data(), kCols, tokens, y.data(), kRows, pool());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GOP/s"] = benchmark::Counter(2.0 * kRows * kCols * tokens * 1e-9 * state.iterations(),
                                               benchmark::Counter::kIsRate);
}

const GgmlType kTypes[] = {GgmlType::Q4_K,    GgmlType::Q8_0,    GgmlType::Q6_K,   GgmlType::F32,
                           GgmlType::F16,     GgmlType::BF16,    GgmlType::Q4_0,   GgmlType::Q4_1,
                           GgmlType::Q5_0,    GgmlType::Q5_1,    GgmlType::Q2_K,   GgmlType::Q3_K,
                           GgmlType::Q5_K,    GgmlType::IQ4_XS,  GgmlType::IQ4_NL, GgmlType::IQ1_S,
                           GgmlType::IQ1_M,   GgmlType::IQ2_XXS, GgmlType::IQ2_XS, GgmlType::IQ2_S,
                           GgmlType::IQ3_XXS, GgmlType::IQ3_S};

const bool kRegistered = [] {
  for (GgmlType type : kTypes) {
    const std::string name(gguf::type_name(type));
    benchmark::RegisterBenchmark(("BM_Gemv/" + name).c_str(), BM_Gemv, type)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("BM_RowDot/" + name).c_str(), BM_RowDot, type)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("BM_Gemm/" + name).c_str(), BM_Gemm, type)
        ->Arg(128)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  return true;
}();

}  // namespace
}  // namespace onecard::bench
