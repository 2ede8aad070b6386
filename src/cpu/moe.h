// The routed-expert half of a MoE layer, for a batch of tokens whose experts are already chosen: each
// expert's tokens are gathered, gate and up run together, SiLU(gate)·up, down, and the weighted results are
// summed per token. All experts of the layer form one parallel task list per phase.
#pragma once

#include <cstdint>
#include <vector>

#include "base/thread_pool.h"
#include "cpu/isa.h"
#include "cpu/matrix.h"
#include "cpu/packed.h"

namespace onecard::cpu {

// The three expert tensors of a layer ([d, ff, E] gate and up, [ff, d, E] down): expert e's matrix starts at
// data + e * (rows * row_bytes).
struct ExpertWeights {
  Matrix gate;  // one expert: rows = ff, cols = d
  Matrix up;    // rows = ff, cols = d
  Matrix down;  // rows = d, cols = ff
  int64_t n_expert = 0;
  // Tensors repacked for a kernel table's packed kernels (pack_experts), or empty. The matrices above stay
  // valid: tables without a packer for their format read them.
  PackedMatrix gate_packed, up_packed, down_packed;

  Matrix expert(const Matrix& m, int64_t e) const {
    Matrix r = m;
    r.data = m.data + static_cast<size_t>(e) * m.bytes();
    return r;
  }
};

struct KernelTable;

// Repacks every tensor of w whose format the kernel table has a packer for (packed.h; AVX-512 VNNI: Q2_K,
// Q4_K, Q6_K) into one buffer, which the caller keeps as long as w, and points w's packed views at it. The
// buffer is empty when no tensor is packed, or when its memory cannot be had (w is then left as it was).
// Without a table: active_kernels().
PackedBuffer pack_experts(ExpertWeights& w, ThreadPool& pool);
PackedBuffer pack_experts(ExpertWeights& w, ThreadPool& pool, const KernelTable& k);
// The bytes pack_experts allocates for w (0 when the table packs none of its tensors).
size_t packed_experts_bytes(const ExpertWeights& w);
size_t packed_experts_bytes(const ExpertWeights& w, const KernelTable& k);

// Buffers reused across calls so that the hot path allocates only when a batch is larger than any before.
// After moe_forward, pair i in expert order is (token, slot) p = order[i] (token p / k, expert ids[p]) and
// h[i * ff ..] holds its silu(gate) * up, the input of its down projection (the activation observer reads
// it).
struct MoeScratch {
  std::vector<int32_t> counts, offsets, order, slot_of;  // (token, slot) pairs grouped by expert
  std::vector<int32_t> active;                           // experts with at least one pair
  std::vector<float> x, h, u, out;
  std::vector<uint8_t> acts, sides;             // quantized activations and their per-token sums (gemm.h)
  std::vector<const uint8_t*> act_of, side_of;  // per pair in expert order: its rows of acts and sides
};

// y[t] = sum_j weights[t*k+j] * expert_{ids[t*k+j]}(x[t]) for t < n_tokens; x and y are [n_tokens][d].
void moe_forward(const ExpertWeights& w, const float* x, int64_t n_tokens, const int32_t* ids,
                 const float* weights, int k, float* y, ThreadPool& pool, MoeScratch& scratch);

// The same with an explicit ISA (at most active_isa()), for tests and benchmarks.
void moe_forward_isa(const ExpertWeights& w, const float* x, int64_t n_tokens, const int32_t* ids,
                     const float* weights, int k, float* y, ThreadPool& pool, MoeScratch& scratch, Isa isa);

}  // namespace onecard::cpu
