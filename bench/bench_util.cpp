#include "bench_util.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/cpu_features.h"
#include "base/half.h"
#include "base/rng.h"
#include "benchmark/benchmark.h"
#include "cpu/isa.h"

namespace onecard::bench {
namespace {

using gguf::GgmlType;

// Byte offsets of the fp16 scale fields within one block.
std::vector<int> scale_offsets(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_1:
    case GgmlType::Q5_1:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
      return {0, 2};
    case GgmlType::Q2_K:
      return {80, 82};
    case GgmlType::Q3_K:
      return {108};
    case GgmlType::Q6_K:
      return {208};
    case GgmlType::IQ1_M:
      return {};
    default:
      return {0};
  }
}

__attribute__((target("avx512f"))) uint64_t xor_range_avx512(const uint8_t* p, size_t bytes) {
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  for (size_t i = 0; i + 256 <= bytes; i += 256) {
    a = _mm512_xor_si512(a, _mm512_loadu_si512(p + i));
    b = _mm512_xor_si512(b, _mm512_loadu_si512(p + i + 64));
    c = _mm512_xor_si512(c, _mm512_loadu_si512(p + i + 128));
    d = _mm512_xor_si512(d, _mm512_loadu_si512(p + i + 192));
  }
  uint64_t lanes[8];
  _mm512_storeu_si512(lanes, _mm512_xor_si512(_mm512_xor_si512(a, b), _mm512_xor_si512(c, d)));
  uint64_t acc = 0;
  for (uint64_t v : lanes) acc ^= v;
  return acc;
}

uint64_t xor_range_scalar(const uint8_t* p, size_t bytes) {
  uint64_t acc = 0;
  for (size_t i = 0; i + 8 <= bytes; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    acc ^= v;
  }
  return acc;
}

__attribute__((target("avx512f,avx512vnni"))) int64_t vnni_loop(int64_t iterations) {
  __m512i a0 = _mm512_set1_epi32(0), a1 = _mm512_set1_epi32(1), a2 = _mm512_set1_epi32(2),
          a3 = _mm512_set1_epi32(3);
  __m512i a4 = _mm512_set1_epi32(4), a5 = _mm512_set1_epi32(5), a6 = _mm512_set1_epi32(6),
          a7 = _mm512_set1_epi32(7);
  __m512i a8 = _mm512_set1_epi32(8), a9 = _mm512_set1_epi32(9), a10 = _mm512_set1_epi32(10),
          a11 = _mm512_set1_epi32(11);
  const __m512i x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(5);
  for (int64_t i = 0; i < iterations; ++i) {
    // Twelve independent accumulators: more than latency times throughput on current cores.
    a0 = _mm512_dpbusd_epi32(a0, x, y);
    a1 = _mm512_dpbusd_epi32(a1, x, y);
    a2 = _mm512_dpbusd_epi32(a2, x, y);
    a3 = _mm512_dpbusd_epi32(a3, x, y);
    a4 = _mm512_dpbusd_epi32(a4, x, y);
    a5 = _mm512_dpbusd_epi32(a5, x, y);
    a6 = _mm512_dpbusd_epi32(a6, x, y);
    a7 = _mm512_dpbusd_epi32(a7, x, y);
    a8 = _mm512_dpbusd_epi32(a8, x, y);
    a9 = _mm512_dpbusd_epi32(a9, x, y);
    a10 = _mm512_dpbusd_epi32(a10, x, y);
    a11 = _mm512_dpbusd_epi32(a11, x, y);
    // Keeps the accumulators in registers and the loop from being folded away.
    __asm__ volatile(""
                     : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7),
                       "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
  }
  const __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                                     _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)));
  int32_t lanes[16];
  _mm512_storeu_si512(
      lanes, _mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11))));
  int64_t acc = 0;
  for (int32_t v : lanes) acc += v;
  return acc;
}

// Twelve independent chains of vpmaddubsw on ymm registers, each result fed back as the next signed operand.
// Named variables, not an array: GCC keeps an array in memory, and a store and reload per instruction doubled
// each chain's latency and halved the measured peak (as this probe did until 2026-12-02).
__attribute__((target("avx2"))) int64_t maddubs_loop(int64_t iterations) {
  const __m256i x = _mm256_set1_epi8(3);
  __m256i a0 = _mm256_set1_epi8(1), a1 = _mm256_set1_epi8(2), a2 = a0, a3 = a1, a4 = a0, a5 = a1, a6 = a0,
          a7 = a1, a8 = a0, a9 = a1, a10 = a0, a11 = a1;
  for (int64_t it = 0; it < iterations; ++it) {
    a0 = _mm256_maddubs_epi16(x, a0);
    a1 = _mm256_maddubs_epi16(x, a1);
    a2 = _mm256_maddubs_epi16(x, a2);
    a3 = _mm256_maddubs_epi16(x, a3);
    a4 = _mm256_maddubs_epi16(x, a4);
    a5 = _mm256_maddubs_epi16(x, a5);
    a6 = _mm256_maddubs_epi16(x, a6);
    a7 = _mm256_maddubs_epi16(x, a7);
    a8 = _mm256_maddubs_epi16(x, a8);
    a9 = _mm256_maddubs_epi16(x, a9);
    a10 = _mm256_maddubs_epi16(x, a10);
    a11 = _mm256_maddubs_epi16(x, a11);
    __asm__ volatile(""
                     : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6), "+x"(a7),
                       "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));
  }
  const __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)),
                                     _mm256_add_epi32(_mm256_add_epi32(a4, a5), _mm256_add_epi32(a6, a7)));
  int32_t lanes[8];
  _mm256_storeu_si256(
      reinterpret_cast<__m256i*>(lanes),
      _mm256_add_epi32(s, _mm256_add_epi32(_mm256_add_epi32(a8, a9), _mm256_add_epi32(a10, a11))));
  int64_t acc = 0;
  for (int32_t v : lanes) acc += v;
  return acc;
}

// The same for vpdpbusd on ymm registers (AVX-VNNI).
__attribute__((target("avx2,avxvnni"))) int64_t avx_vnni_loop(int64_t iterations) {
  const __m256i x = _mm256_set1_epi8(3), y = _mm256_set1_epi8(5);
  __m256i a0 = _mm256_set1_epi32(0), a1 = _mm256_set1_epi32(1), a2 = a0, a3 = a1, a4 = a0, a5 = a1, a6 = a0,
          a7 = a1, a8 = a0, a9 = a1, a10 = a0, a11 = a1;
  for (int64_t it = 0; it < iterations; ++it) {
    a0 = _mm256_dpbusd_avx_epi32(a0, x, y);
    a1 = _mm256_dpbusd_avx_epi32(a1, x, y);
    a2 = _mm256_dpbusd_avx_epi32(a2, x, y);
    a3 = _mm256_dpbusd_avx_epi32(a3, x, y);
    a4 = _mm256_dpbusd_avx_epi32(a4, x, y);
    a5 = _mm256_dpbusd_avx_epi32(a5, x, y);
    a6 = _mm256_dpbusd_avx_epi32(a6, x, y);
    a7 = _mm256_dpbusd_avx_epi32(a7, x, y);
    a8 = _mm256_dpbusd_avx_epi32(a8, x, y);
    a9 = _mm256_dpbusd_avx_epi32(a9, x, y);
    a10 = _mm256_dpbusd_avx_epi32(a10, x, y);
    a11 = _mm256_dpbusd_avx_epi32(a11, x, y);
    __asm__ volatile(""
                     : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5), "+x"(a6), "+x"(a7),
                       "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));
  }
  const __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)),
                                     _mm256_add_epi32(_mm256_add_epi32(a4, a5), _mm256_add_epi32(a6, a7)));
  int32_t lanes[8];
  _mm256_storeu_si256(
      reinterpret_cast<__m256i*>(lanes),
      _mm256_add_epi32(s, _mm256_add_epi32(_mm256_add_epi32(a8, a9), _mm256_add_epi32(a10, a11))));
  int64_t acc = 0;
  for (int32_t v : lanes) acc += v;
  return acc;
}

}  // namespace

ThreadPool& pool() {
  static ThreadPool p([] {
    const char* env = std::getenv("ONECARD_BENCH_THREADS");
    if (env == nullptr || *env == '\0') return 0;
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (*end != '\0' || n < 1 || n > 4096) {
      std::fprintf(stderr, "ONECARD_BENCH_THREADS=%s: expected a thread count from 1 to 4096\n", env);
      std::exit(2);
    }
    return static_cast<int>(n);
  }());
  return p;
}

uint64_t stream_read(const uint8_t* data, size_t bytes) {
  ThreadPool& tp = pool();
  const int64_t chunks = 256;
  const size_t chunk = bytes / chunks / 256 * 256;
  std::vector<uint64_t> parts(chunks);
  const bool avx512 = cpu_features().avx512f;
  tp.parallel_for(chunks, [&](int64_t i, int) {
    const uint8_t* p = data + i * chunk;
    parts[i] = avx512 ? xor_range_avx512(p, chunk) : xor_range_scalar(p, chunk);
  });
  uint64_t acc = 0;
  for (uint64_t v : parts) acc ^= v;
  return acc;
}

double probed_bandwidth() {
  static const double bw = [] {
    std::vector<uint8_t> buf(size_t{1} << 30);
    std::memset(buf.data(), 1, buf.size());
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      benchmark::DoNotOptimize(stream_read(buf.data(), buf.size()));
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, static_cast<double>(buf.size()) / s);
    }
    return best;
  }();
  return bw;
}

std::vector<uint8_t> random_matrix(GgmlType type, int64_t rows, int64_t cols, uint64_t seed) {
  const size_t row_bytes = gguf::row_bytes(type, static_cast<uint64_t>(cols));
  std::vector<uint8_t> out(row_bytes * static_cast<size_t>(rows));
  Rng rng(seed, "bench");
  if (type == GgmlType::F32) {
    for (size_t i = 0; i + 4 <= out.size(); i += 4) {
      const float v = rng.uniform() - 0.5f;
      std::memcpy(out.data() + i, &v, 4);
    }
    return out;
  }
  if (type == GgmlType::F16 || type == GgmlType::BF16) {
    for (size_t i = 0; i + 2 <= out.size(); i += 2) {
      const float v = rng.uniform() - 0.5f;
      const uint16_t h = type == GgmlType::F16 ? fp32_to_fp16(v) : fp32_to_bf16(v);
      std::memcpy(out.data() + i, &h, 2);
    }
    return out;
  }
  for (size_t i = 0; i + 8 <= out.size(); i += 8) {
    const uint64_t v = rng.next();
    std::memcpy(out.data() + i, &v, 8);
  }
  const gguf::TypeTraits& tt = gguf::traits(type);
  const uint16_t scale = fp32_to_fp16(0.01f);
  for (size_t b = 0; b < out.size() / tt.type_size; ++b) {
    uint8_t* blk = out.data() + b * tt.type_size;
    for (int off : scale_offsets(type)) std::memcpy(blk + off, &scale, 2);
    if (type == GgmlType::IQ1_M) {
      for (int k = 0; k < 4; ++k)
        blk[49 + 2 * k] = static_cast<uint8_t>((blk[49 + 2 * k] & 0x0f) | (((scale >> (4 * k)) & 0xf) << 4));
    }
  }
  return out;
}

namespace {

// int8 operations per second of `loop` on every pool thread at once: 12 instructions of `bytes` byte products
// per iteration, 2 operations (multiply, add) each. 0 where the CPU lacks the instruction.
double peak_measure(bool available, int64_t (*loop)(int64_t), int bytes, int64_t iterations) {
  if (!available) return 0;
  ThreadPool& tp = pool();
  std::vector<int64_t> sink(tp.size());
  const auto t0 = std::chrono::steady_clock::now();
  tp.parallel_for(tp.size(), [&](int64_t i, int) { sink[i] = loop(iterations); });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  benchmark::DoNotOptimize(sink.data());
  return static_cast<double>(iterations) * 12 * bytes * 2 * tp.size() / s;
}

// The best of five longer measurements.
double best_of_five(double (*measure)(int64_t)) {
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) best = std::max(best, measure(20'000'000));
  return best;
}

}  // namespace

double vnni_peak_ops_measure(int64_t iterations) {
  return peak_measure(cpu_features().avx512_vnni, vnni_loop, 64, iterations);
}
double maddubs_peak_ops_measure(int64_t iterations) {
  return peak_measure(cpu_features().avx2, maddubs_loop, 32, iterations);
}
double avx_vnni_peak_ops_measure(int64_t iterations) {
  return peak_measure(cpu_features().avx_vnni, avx_vnni_loop, 32, iterations);
}

double vnni_peak_ops() {
  static const double peak = best_of_five(vnni_peak_ops_measure);
  return peak;
}
double maddubs_peak_ops() {
  static const double peak = best_of_five(maddubs_peak_ops_measure);
  return peak;
}
double avx_vnni_peak_ops() {
  static const double peak = best_of_five(avx_vnni_peak_ops_measure);
  return peak;
}

double int8_peak_ops() {
  switch (cpu::active_isa()) {
    case cpu::Isa::Avx512Vnni:
      return vnni_peak_ops();
    case cpu::Isa::AvxVnni:
      return avx_vnni_peak_ops();
    default:
      return maddubs_peak_ops();
  }
}

}  // namespace onecard::bench
