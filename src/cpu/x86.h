// Shared pieces of the x86 kernels. Each kernel function carries its own target attribute, so the project
// compiles without -march and the dispatcher only calls a function the CPU supports.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#define ONECARD_AVX2 __attribute__((target("avx2,fma,f16c")))
#define ONECARD_AVX_VNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
#define ONECARD_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

namespace onecard::cpu::x86 {

// The 6-bit scales (bytes 0-7) and mins (bytes 8-15) of the 8 sub-blocks of a Q4_K/Q5_K block, all at once
// (the packing k_scale_min describes one at a time), four per 32-bit lane. It loads 16 bytes from the 12
// scale bytes on, so `packed` must be a block's scales (the block's levels follow them).
ONECARD_AVX2 inline __m128i k_scales_mins_vec(const uint8_t* packed) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));  // u0, u1, u2, (levels)
  // Lanes: scales 0-3, scales 4-7, mins 0-3, mins 4-7.
  const __m128i low = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0));   // u0, u2, u1, u2
  const __m128i high = _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0));  // u0, u0, u1, u1
  const __m128i low_bits = _mm_and_si128(_mm_srlv_epi32(low, _mm_setr_epi32(0, 0, 0, 4)),
                                         _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  const __m128i high_bits =
      _mm_and_si128(_mm_slli_epi32(_mm_srli_epi32(high, 6), 4), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
  return _mm_or_si128(low_bits, high_bits);
}

// Decode streams each weight row once from memory, and the hardware prefetcher stops at every 4 KiB page;
// asking for the lines this far ahead keeps enough misses in flight for one core to draw its share of the
// bandwidth (about 20 GB/s at 100 ns latency needs 2 KiB in flight).
inline constexpr int kPrefetchAhead = 3072;

inline void prefetch_ahead(const void* p, int lines) {
  for (int l = 0; l < lines; ++l)
    _mm_prefetch(static_cast<const char*>(p) + kPrefetchAhead + 64 * l, _MM_HINT_T0);
}

// The float kernels read their fp32 activation row (28 KiB for V3's 7168 columns) again for every weight row,
// and it fits the 32 KiB L1 only if the streamed weights do not also land there: prefetching them into L2
// alone keeps x in L1 (on Zen 4, F16 and BF16 GEMV read 20-30% faster than with the same prefetch into L1).
inline void prefetch_ahead_l2(const void* p, int lines) {
  for (int l = 0; l < lines; ++l)
    _mm_prefetch(static_cast<const char*>(p) + kPrefetchAhead + 64 * l, _MM_HINT_T1);
}

ONECARD_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

ONECARD_AVX512 inline float hsum(__m512 v) {
  return hsum(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
}

}  // namespace onecard::cpu::x86
