// The CUDA kernels' launchers, one per op of the backend interface; everything they take is device memory
// except the scalar parameters. All run on `stream` and return at once.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "gguf/types.h"

namespace onecard::cuda::kernels {

// The formats matmul and embed decode: F32, F16, BF16, Q8_0, Q4_0, IQ4_NL, Q4_K, Q5_K, Q6_K, IQ4_XS.
bool format_supported(gguf::GgmlType type);

// A weight as the kernels see it: matrix i of an expert tensor starts at data + i * matrix_bytes.
struct DeviceMatrix {
  gguf::GgmlType type;
  const uint8_t* data;
  size_t row_bytes, matrix_bytes;
  int64_t rows, cols;
};

// y[t * ldy + r] = row r of w times x[t * ldx ..] for t < n.
void matmul(const DeviceMatrix& w, const float* x, int64_t ldx, int n, float* y, int64_t ldy, cudaStream_t s);
// y[t * ldy ..] = row tokens[t] of the table.
void embed(const DeviceMatrix& table, const int32_t* tokens, int n, float* y, int64_t ldy, cudaStream_t s);
void rms_norm(const float* x, int64_t ldx, const float* w, int64_t dim, float eps, int n, float* y,
              int64_t ldy, cudaStream_t s);
// freqs: dims / 2 values; positions: one per token.
void rope(const float* freqs, int half, float* x, int64_t ldx, int n_heads, int64_t head_stride,
          const int32_t* positions, int n, cudaStream_t s);
void silu_mul(float* gate, const float* up, int64_t count, cudaStream_t s);
void add(float* y, const float* a, const float* b, int64_t count, cudaStream_t s);

struct RouteParams {
  int n_expert, k, n_group, n_group_used;
  bool sigmoid, normalize;
  float scale;
  const float* bias;  // device, or null
};
void route(const RouteParams& p, const float* logits, int n, int32_t* ids, float* weights, cudaStream_t s);

// Routed experts, pair p = (token p / k, slot p % k): h and u (pairs x ff) and out (pairs x d) are scratch;
// afterwards h[p] holds silu(gate x) * up x, down's input, and y[t] = sum_j weights[t*k+j] * out[t*k+j].
void moe(const DeviceMatrix& gate, const DeviceMatrix& up, const DeviceMatrix& down, const float* x, int n,
         const int32_t* ids, const float* weights, int k, float* h, float* u, float* out, float* y,
         cudaStream_t s);

// The cache as kernels see it: pages [layer][page][slot][width] of f32 or bf16 values, and per token of the
// batch its sequence's page table (tables + table_offset[seq]).
struct DeviceKv {
  uint8_t* data;
  bool bf16;
  int n_pages, page_tokens, width;
  const int32_t* tables;
  const int32_t* table_offset;
};
// tokens: (seq, pos) pairs per batch token.
void kv_store(const DeviceKv& kv, int layer, const int32_t* tokens, int n, const float* rows, int64_t ld,
              cudaStream_t s);

struct DeviceMla {
  int n_head, nope, rope, kv_lora, v, width;
  float scale;
  bool uk_transposed;  // uk[h]: nope rows of kv_lora (combined files) or kv_lora rows of nope (split)
  gguf::GgmlType uk_type, uv_type;
  const uint8_t* const* uk;  // per head, device
  const uint8_t* const* uv;
  size_t uk_row_bytes, uv_row_bytes;
};
// The absorbed form for every (token, head): q rows of n_head * (nope + rope), out rows of n_head * v;
// latents (or null) rows of n_head * kv_lora.
void mla_attend(const DeviceMla& m, const float* q, const int32_t* tokens, int n, const DeviceKv& kv,
                int layer, float* out, float* latents, cudaStream_t s);

}  // namespace onecard::cuda::kernels
