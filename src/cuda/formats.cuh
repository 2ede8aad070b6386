// The weight formats the CUDA kernels read, as device decoders: each gives eight consecutive values of a
// block (group j of QK / 8), the layouts being the file's (quant/blocks.h). Float formats are blocks of eight
// plain values.
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "gguf/types.h"

namespace onecard::cuda {

__device__ __forceinline__ float half_at(const uint8_t* p) {
  uint16_t bits = static_cast<uint16_t>(p[0] | (p[1] << 8));
  return __half2float(__ushort_as_half(bits));
}

__device__ __forceinline__ float bf16_bits(uint16_t bits) {
  return __uint_as_float(static_cast<uint32_t>(bits) << 16);
}

static __device__ __constant__ int8_t kIq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                    1,    13,   25,  38,  53,  69,  89,  113};

// Q4_K and Q5_K: sub-block k's 6-bit scale and min from the 12 packed bytes.
__device__ __forceinline__ void scale_min_k4(int k, const uint8_t* s, int* sc, int* m) {
  if (k < 4) {
    *sc = s[k] & 63;
    *m = s[k + 4] & 63;
  } else {
    *sc = (s[k + 4] & 0xf) | ((s[k - 4] >> 6) << 4);
    *m = (s[k + 4] >> 4) | ((s[k] >> 6) << 4);
  }
}

struct FmtF32 {
  static constexpr int kQK = 8, kBytes = 32;
  __device__ static void dec8(const uint8_t* b, int, float* v) {
    for (int i = 0; i < 8; ++i) v[i] = reinterpret_cast<const float*>(b)[i];
  }
};

struct FmtF16 {
  static constexpr int kQK = 8, kBytes = 16;
  __device__ static void dec8(const uint8_t* b, int, float* v) {
    for (int i = 0; i < 8; ++i) v[i] = half_at(b + 2 * i);
  }
};

struct FmtBF16 {
  static constexpr int kQK = 8, kBytes = 16;
  __device__ static void dec8(const uint8_t* b, int, float* v) {
    for (int i = 0; i < 8; ++i) v[i] = bf16_bits(static_cast<uint16_t>(b[2 * i] | (b[2 * i + 1] << 8)));
  }
};

// d (fp16), 32 int8.
struct FmtQ8_0 {
  static constexpr int kQK = 32, kBytes = 34;
  __device__ static void dec8(const uint8_t* b, int j, float* v) {
    const float d = half_at(b);
    for (int i = 0; i < 8; ++i) v[i] = d * static_cast<float>(static_cast<int8_t>(b[2 + 8 * j + i]));
  }
};

// d (fp16), 16 bytes: low nibbles are values 0..15, high nibbles 16..31, offset by 8.
struct FmtQ4_0 {
  static constexpr int kQK = 32, kBytes = 18;
  __device__ static void dec8(const uint8_t* b, int j, float* v) {
    const float d = half_at(b);
    const uint8_t* q = b + 2 + 8 * (j & 1);
    const int shift = 4 * (j >> 1);
    for (int i = 0; i < 8; ++i) v[i] = d * static_cast<float>(((q[i] >> shift) & 0xf) - 8);
  }
};

// Q4_0's layout with the non-linear IQ4 levels.
struct FmtIQ4_NL {
  static constexpr int kQK = 32, kBytes = 18;
  __device__ static void dec8(const uint8_t* b, int j, float* v) {
    const float d = half_at(b);
    const uint8_t* q = b + 2 + 8 * (j & 1);
    const int shift = 4 * (j >> 1);
    for (int i = 0; i < 8; ++i) v[i] = d * static_cast<float>(kIq4nl[(q[i] >> shift) & 0xf]);
  }
};

// d, dmin (fp16), 12 scale bytes, 128 bytes: sub-blocks 2c and 2c + 1 share qs[32c ..] (low, high nibbles).
struct FmtQ4_K {
  static constexpr int kQK = 256, kBytes = 144;
  __device__ static void dec8(const uint8_t* b, int j, float* v) {
    const int k = j / 4, l0 = 8 * (j % 4);  // sub-block, first of its 32 values
    int sc, m;
    scale_min_k4(k, b + 4, &sc, &m);
    const float dl = half_at(b) * static_cast<float>(sc), ml = half_at(b + 2) * static_cast<float>(m);
    const uint8_t* q = b + 16 + 32 * (k / 2) + l0;
    const int shift = 4 * (k % 2);
    for (int i = 0; i < 8; ++i) v[i] = dl * static_cast<float>((q[i] >> shift) & 0xf) - ml;
  }
};

// Q4_K plus qh[32] before qs: value 32k + l has its fifth bit in qh[l], bit k.
struct FmtQ5_K {
  static constexpr int kQK = 256, kBytes = 176;
  __device__ static void dec8(const uint8_t* b, int j, float* v) {
    const int k = j / 4, l0 = 8 * (j % 4);
    int sc, m;
    scale_min_k4(k, b + 4, &sc, &m);
    const float dl = half_at(b) * static_cast<float>(sc), ml = half_at(b + 2) * static_cast<float>(m);
    const uint8_t* qh = b + 16 + l0;
    const uint8_t* q = b + 48 + 32 * (k / 2) + l0;
    const int shift = 4 * (k % 2);
    for (int i = 0; i < 8; ++i) {
      const int x = ((q[i] >> shift) & 0xf) | (((qh[i] >> k) & 1) << 4);
      v[i] = dl * static_cast<float>(x) - ml;
    }
  }
};

// ql[128], qh[64], 16 int8 scales, d (fp16): value e = 128h + 32i + l takes 4 bits of ql[64h + 32(i & 1) + l]
// (shifted by 4(i >> 1)) and 2 of qh[32h + l] (shifted by 2i), minus 32.
struct FmtQ6_K {
  static constexpr int kQK = 256, kBytes = 210;
  __device__ static void dec8(const uint8_t* b, int j, float* v) {
    const int e0 = 8 * j, h = e0 / 128, i4 = (e0 % 128) / 32, l0 = e0 % 32;
    const float d = half_at(b + 208) * static_cast<float>(static_cast<int8_t>(b[192 + e0 / 16]));
    const uint8_t* ql = b + 64 * h + 32 * (i4 & 1) + l0;
    const uint8_t* qh = b + 128 + 32 * h + l0;
    const int lshift = 4 * (i4 >> 1), hshift = 2 * i4;
    for (int i = 0; i < 8; ++i) {
      const int x = ((ql[i] >> lshift) & 0xf) | (((qh[i] >> hshift) & 3) << 4);
      v[i] = d * static_cast<float>(x - 32);
    }
  }
};

// d (fp16), scales_h (u16), scales_l[4], qs[128]: sub-block ib of 32 has a 6-bit scale (low 4 bits in
// scales_l, high 2 in scales_h) minus 32, and Q4_0-style nibbles of the IQ4 levels.
struct FmtIQ4_XS {
  static constexpr int kQK = 256, kBytes = 136;
  __device__ static void dec8(const uint8_t* b, int j, float* v) {
    const int ib = j / 4, w0 = 8 * (j % 4);
    const int scales_h = b[2] | (b[3] << 8);
    const int ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 0xf) | (((scales_h >> (2 * ib)) & 3) << 4);
    const float dl = half_at(b) * static_cast<float>(ls - 32);
    const uint8_t* q = b + 8 + 16 * ib + (w0 % 16);
    const int shift = w0 < 16 ? 0 : 4;
    for (int i = 0; i < 8; ++i) v[i] = dl * static_cast<float>(kIq4nl[(q[i] >> shift) & 0xf]);
  }
};

// Calls f(F{}) with the decoder of `type`; nothing for a format without one (kernels::format_supported).
// Host and device callers both pass lambdas of their own side.
#pragma nv_exec_check_disable
template <class Fn>
__host__ __device__ void with_format(gguf::GgmlType type, Fn&& f) {
  using gguf::GgmlType;
  switch (type) {
    case GgmlType::F32:
      return f(FmtF32{});
    case GgmlType::F16:
      return f(FmtF16{});
    case GgmlType::BF16:
      return f(FmtBF16{});
    case GgmlType::Q8_0:
      return f(FmtQ8_0{});
    case GgmlType::Q4_0:
      return f(FmtQ4_0{});
    case GgmlType::IQ4_NL:
      return f(FmtIQ4_NL{});
    case GgmlType::Q4_K:
      return f(FmtQ4_K{});
    case GgmlType::Q5_K:
      return f(FmtQ5_K{});
    case GgmlType::Q6_K:
      return f(FmtQ6_K{});
    case GgmlType::IQ4_XS:
      return f(FmtIQ4_XS{});
    default:
      return;
  }
}

}  // namespace onecard::cuda
