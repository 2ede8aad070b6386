// The two products of MLA attention over the latent cache, for a group of heads that share the cache rows:
// every head's query against every cache row, and every head's softmax weights times the cache rows. The
// rows are f32 or bf16 (the cache type), `width` floats apart. Each ISA's table has both for both types; the
// scalar ones are the reference.
#pragma once

#include <cstdint>

namespace onecard::cpu {

// s[j * lds + p] = scale * sum_c q[j * ldq + c] * rows[p][c], for heads j < g, rows p < m, c < width.
using LatentScoresFn = void (*)(const float* q, int g, int64_t ldq, const void* rows, int64_t m,
                                int64_t width, float scale, float* s, int64_t lds);
// o[j * ldo + c] += sum_p w[j * ldw + p] * rows[p][c], for heads j < g, columns c < n (n <= width), p < m.
using LatentSumFn = void (*)(const float* w, int64_t ldw, int g, const void* rows, int64_t m, int64_t width,
                             int64_t n, float* o, int64_t ldo);

struct LatentKernels {
  LatentScoresFn scores = nullptr;
  LatentSumFn sum = nullptr;
};

// By cache type: rows of float (f32) or of uint16_t (bf16).
LatentKernels latent_scalar(bool bf16);
LatentKernels latent_avx2(bool bf16);
LatentKernels latent_avx512(bool bf16);

}  // namespace onecard::cpu
