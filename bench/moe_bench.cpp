// The MoE primitive on DeepSeek-V3 shapes: 7168 hidden, 2048 expert width, 256 experts, 8 active per token,
// Q4_K gate, up and down (6.3 GB of expert weights), in the file's layout and repacked at load, Q4_K with
// Q6_K down, and the 2-bit expert formats. Reports int8 GOP/s (2 per multiply-add of the routed work) and its
// fraction of the probed int8 peak of the active kernels (vpdpbusd, or vpmaddubsw on AVX2), and GB/s of the
// expert weights the batch touches.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "base/rng.h"
#include "bench_util.h"
#include "cpu/gemm.h"
#include "cpu/kernels.h"
#include "cpu/moe.h"
#include "cpu/packed.h"

namespace onecard::bench {
namespace {

using gguf::GgmlType;

constexpr int64_t kHidden = 7168, kWidth = 2048, kExperts = 256;
constexpr int kActive = 8;

struct V3Experts {
  std::vector<uint8_t> gate, up, down;
  cpu::ExpertWeights w;
  cpu::PackedBuffer packed;
  V3Experts(GgmlType type, GgmlType down_type, bool repack) {
    gate = random_matrix(type, kWidth * kExperts, kHidden, 1);
    up = random_matrix(type, kWidth * kExperts, kHidden, 2);
    down = random_matrix(down_type, kHidden * kExperts, kWidth, 3);
    w.gate = cpu::make_matrix(type, kHidden, kWidth, gate.data());
    w.up = cpu::make_matrix(type, kHidden, kWidth, up.data());
    w.down = cpu::make_matrix(down_type, kWidth, kHidden, down.data());
    w.n_expert = kExperts;
    if (repack) packed = cpu::pack_experts(w, pool());
  }
};

// One format's experts at a time: Q4_K's take 6.3 GB (twice that repacked).
const V3Experts& experts(GgmlType type, GgmlType down_type, bool repack) {
  static std::unique_ptr<V3Experts> e;
  if (e == nullptr || e->w.gate.type != type || e->w.down.type != down_type ||
      (e->packed.data != nullptr) != repack) {
    e.reset();
    e = std::make_unique<V3Experts>(type, down_type, repack);
  }
  return *e;
}

void moe_v3(benchmark::State& state, GgmlType type, GgmlType down_type, bool repack = false) {
  const int64_t tokens = state.range(0);
  const V3Experts& ex = experts(type, down_type, repack);
  Rng rng(tokens, "bench-route");
  std::vector<float> x(static_cast<size_t>(tokens * kHidden)), y(x.size());
  for (auto& v : x) v = rng.normal();
  std::vector<int32_t> ids(static_cast<size_t>(tokens * kActive));
  std::vector<float> weights(ids.size(), 1.0f / kActive);
  std::vector<bool> used(kExperts);
  for (int64_t t = 0; t < tokens; ++t) {
    // Eight distinct experts per token, uniformly: the router's choice on random data.
    std::vector<int32_t> pick;
    while (pick.size() < kActive) {
      const auto e = static_cast<int32_t>(rng.below(kExperts));
      if (std::find(pick.begin(), pick.end(), e) == pick.end()) pick.push_back(e);
    }
    for (int j = 0; j < kActive; ++j) {
      ids[t * kActive + j] = pick[j];
      used[pick[j]] = true;
    }
  }
  const auto n_used = static_cast<double>(std::count(used.begin(), used.end(), true));
  cpu::MoeScratch scratch;
  // One untimed call grows the scratch buffers: a server's first batch pays that once, not every batch.
  cpu::moe_forward(ex.w, x.data(), tokens, ids.data(), weights.data(), kActive, y.data(), pool(), scratch);
  for (auto _ : state) {
    cpu::moe_forward(ex.w, x.data(), tokens, ids.data(), weights.data(), kActive, y.data(), pool(), scratch);
    benchmark::DoNotOptimize(y.data());
  }
  const double ops = 2.0 * 3 * kHidden * kWidth * kActive * tokens;
  const double bytes = n_used * static_cast<double>(2 * ex.w.gate.bytes() + ex.w.down.bytes());
  state.counters["GOP/s"] = benchmark::Counter(ops * 1e-9 * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["weight_GB/s"] =
      benchmark::Counter(bytes * 1e-9 * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["peak_GOP/s"] = int8_peak_ops() * 1e-9;
  state.counters["experts_used"] = n_used;
}
void BM_MoeV3Q4K(benchmark::State& state) {
  moe_v3(state, GgmlType::Q4_K, GgmlType::Q4_K);
}
BENCHMARK(BM_MoeV3Q4K)->Arg(1)->Arg(16)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same experts repacked at load (cpu::pack_experts), as the model does on AVX-512 VNNI machines.
void BM_MoeV3Q4KRepacked(benchmark::State& state) {
  moe_v3(state, GgmlType::Q4_K, GgmlType::Q4_K, true);
}
BENCHMARK(BM_MoeV3Q4KRepacked)->Arg(1)->Arg(16)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime();

// Q4_K_M's experts where llama.cpp gives down more bits (and onecard's q4_k_m everywhere): Q4_K gate and up,
// Q6_K down; in the file's layout and repacked.
void BM_MoeV3Q4KMix(benchmark::State& state) {
  moe_v3(state, GgmlType::Q4_K, GgmlType::Q6_K);
}
BENCHMARK(BM_MoeV3Q4KMix)->Arg(1)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime();
void BM_MoeV3Q4KMixRepacked(benchmark::State& state) {
  moe_v3(state, GgmlType::Q4_K, GgmlType::Q6_K, true);
}
BENCHMARK(BM_MoeV3Q4KMixRepacked)->Arg(1)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime();

// The expert formats of DeepSeek-R1's 2-bit files (Q2_K and IQ2_XXS experts).
void BM_MoeV3Q2K(benchmark::State& state) {
  moe_v3(state, GgmlType::Q2_K, GgmlType::Q2_K);
}
BENCHMARK(BM_MoeV3Q2K)->Arg(1)->Arg(16)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime();
void BM_MoeV3Q2KRepacked(benchmark::State& state) {
  moe_v3(state, GgmlType::Q2_K, GgmlType::Q2_K, true);
}
BENCHMARK(BM_MoeV3Q2KRepacked)->Arg(1)->Arg(16)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_MoeV3IQ2XXS(benchmark::State& state) {
  moe_v3(state, GgmlType::IQ2_XXS, GgmlType::IQ2_XXS);
}
BENCHMARK(BM_MoeV3IQ2XXS)->Arg(1)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime();

// One thread's product of one packed block (kPackedBlockRows rows of 7168) with the tokens one expert gets,
// by the packed kernel of ONECARD_CPU_ISA's table, the block staying in L2: the kernel's own rate, without
// memory or the rest of the MoE, and with much less noise than BM_MoeV3 on a shared VM (for A/B runs).
// core_peak_GOP/s is one pool thread's share of the int8 peak, for comparison.
void packed_block(benchmark::State& state, GgmlType type) {
  const int64_t tokens = state.range(0), rows = cpu::kPackedBlockRows;
  const cpu::PackedKernel& pk = cpu::active_kernels().packed[type];
  if (!pk) {
    state.SkipWithError("the active kernel table packs no such experts");
    return;
  }
  const cpu::IntFormat& f = *cpu::int_format(type);
  const std::vector<uint8_t> data = random_matrix(type, rows, kHidden, 5);
  const cpu::PackedMatrix shape{type, rows, kHidden, nullptr};
  // The model's allocation (aligned for huge pages), so the block lies as the experts do.
  const cpu::PackedBuffer buf = cpu::allocate_packed(shape.bytes());
  pk.pack(cpu::make_matrix(type, kHidden, rows, data.data()), 0, 1, buf.data.get());
  const cpu::PackedMatrix block{type, rows, kHidden, buf.data.get()};

  Rng rng(tokens, "bench-block");
  const size_t act_bytes = cpu::act_row_bytes(f.act, kHidden), side_bytes = cpu::token_side_bytes(f, kHidden);
  std::vector<uint8_t> acts(act_bytes * static_cast<size_t>(tokens)),
      sides(side_bytes * static_cast<size_t>(tokens));
  std::vector<const uint8_t*> act_of, side_of;
  std::vector<float> x(kHidden), y(static_cast<size_t>(tokens * rows));
  for (int64_t t = 0; t < tokens; ++t) {
    for (auto& v : x) v = rng.normal();
    uint8_t* a = acts.data() + static_cast<size_t>(t) * act_bytes;
    cpu::quantize_act(f.act, x.data(), a, kHidden);
    cpu::token_side(f, kHidden, a, sides.data() + static_cast<size_t>(t) * side_bytes);
    act_of.push_back(a);
    side_of.push_back(sides.data() + static_cast<size_t>(t) * side_bytes);
  }
  for (auto _ : state) {
    pk.gemm(block, 0, cpu::GemmTokens{act_of.data(), side_of.data(), tokens}, y.data(), rows);
    benchmark::DoNotOptimize(y.data());
  }
  const double ops =
      2.0 * static_cast<double>(rows * kHidden * tokens) * static_cast<double>(state.iterations());
  state.counters["GOP/s"] = benchmark::Counter(ops * 1e-9, benchmark::Counter::kIsRate);
  state.counters["core_peak_GOP/s"] = int8_peak_ops() / pool().size() * 1e-9;
}
void BM_PackedBlockQ4K(benchmark::State& state) {
  packed_block(state, GgmlType::Q4_K);
}
BENCHMARK(BM_PackedBlockQ4K)->Arg(5)->Arg(16)->Arg(64);
void BM_PackedBlockQ2K(benchmark::State& state) {
  packed_block(state, GgmlType::Q2_K);
}
BENCHMARK(BM_PackedBlockQ2K)->Arg(5)->Arg(16)->Arg(64);

}  // namespace
}  // namespace onecard::bench
