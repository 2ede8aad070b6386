// Shared pieces of the benchmarks: the machine's probed figures, one thread pool, and weight buffers.
#pragma once

#include <cstdint>
#include <vector>

#include "base/thread_pool.h"
#include "gguf/types.h"

namespace onecard::bench {

// One pool for all benchmarks: one thread per logical CPU, or ONECARD_BENCH_THREADS of them (to compare a
// kernel's rate per thread with one thread and with all, side by side).
ThreadPool& pool();

// Read-only streaming bandwidth of the whole pool over a buffer much larger than the caches, in bytes per
// second; measured once on first use (the GEMV benchmarks report their fraction of it).
double probed_bandwidth();
// Sums 64-byte vectors of `bytes` bytes with every pool thread reading its own share; returns a value that
// depends on every byte so the reads cannot be dropped.
uint64_t stream_read(const uint8_t* data, size_t bytes);

// int8 multiply-adds per second of independent vpdpbusd on every pool thread (2 operations each), measured
// once; 0 on CPUs without AVX-512 VNNI.
double vnni_peak_ops();
double vnni_peak_ops_measure(int64_t iterations);
// The same for independent vpmaddubsw on ymm registers (2 operations per byte product; 0 without AVX2): the
// AVX2 kernels' bound, which they approach only where they can sum in int16 before widening to int32.
double maddubs_peak_ops();
double maddubs_peak_ops_measure(int64_t iterations);
// The same for vpdpbusd on ymm registers (AVX-VNNI; 0 without it).
double avx_vnni_peak_ops();
double avx_vnni_peak_ops_measure(int64_t iterations);
// The peak of the active kernel table's instruction: vpdpbusd on AVX-512 VNNI (zmm) and AVX-VNNI (ymm),
// vpmaddubsw otherwise.
double int8_peak_ops();

// rows x cols weights of `type` with random levels and moderate finite scales (not a quantization of
// anything: the benchmarks time kernels, they do not check values).
std::vector<uint8_t> random_matrix(gguf::GgmlType type, int64_t rows, int64_t cols, uint64_t seed);

}  // namespace onecard::bench
