// The MLA cache and attention over it: rows stored at their pages, and the absorbed form for every (token,
// head) with an online softmax over blocks of positions.
#include "cuda/formats.cuh"
#include "cuda/kernels.h"

namespace onecard::cuda::kernels {
namespace {

constexpr int kThreads = 256;  // also the positions of one softmax block

__device__ float cache_value(const DeviceKv& kv, int layer, int seq, int pos, int c) {
  const int32_t page = kv.tables[kv.table_offset[seq] + pos / kv.page_tokens];
  const int64_t row =
      (static_cast<int64_t>(layer) * kv.n_pages + page) * kv.page_tokens + pos % kv.page_tokens;
  if (kv.bf16) return bf16_bits(reinterpret_cast<const uint16_t*>(kv.data)[row * kv.width + c]);
  return reinterpret_cast<const float*>(kv.data)[row * kv.width + c];
}

__global__ void kv_store_kernel(DeviceKv kv, int layer, const int32_t* tokens, const float* rows,
                                int64_t ld) {
  const int t = blockIdx.x;
  const int seq = tokens[2 * t], pos = tokens[2 * t + 1];
  const int32_t page = kv.tables[kv.table_offset[seq] + pos / kv.page_tokens];
  const int64_t row =
      (static_cast<int64_t>(layer) * kv.n_pages + page) * kv.page_tokens + pos % kv.page_tokens;
  for (int c = threadIdx.x; c < kv.width; c += blockDim.x) {
    const float v = rows[t * ld + c];
    if (kv.bf16) {
      // Round to nearest even, as fp32_to_bf16 on the host (NaN kept quiet).
      const uint32_t bits = __float_as_uint(v);
      const uint16_t b = (bits & 0x7fffffffu) > 0x7f800000u
                             ? static_cast<uint16_t>((bits >> 16) | 0x40)
                             : static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
      reinterpret_cast<uint16_t*>(kv.data)[row * kv.width + c] = b;
    } else {
      reinterpret_cast<float*>(kv.data)[row * kv.width + c] = v;
    }
  }
}

// Element (r, c) of a weight matrix in format F.
template <class F>
__device__ float weight_at(const uint8_t* w, size_t row_bytes, int r, int c) {
  float v[8];
  constexpr int kGroups = F::kQK / 8;
  const int g = c / 8;
  F::dec8(w + r * row_bytes + (g / kGroups) * F::kBytes, g % kGroups, v);
  return v[c % 8];
}

template <class F>
__device__ void latent_query(const DeviceMla& m, const uint8_t* uk, const float* q_nope, float* q_lat) {
  for (int c = threadIdx.x; c < m.kv_lora; c += blockDim.x) {
    float s = 0.0f;
    if (m.uk_transposed) {
      for (int i = 0; i < m.nope; ++i) s += weight_at<F>(uk, m.uk_row_bytes, i, c) * q_nope[i];
    } else {
      for (int i = 0; i < m.nope; ++i) s += weight_at<F>(uk, m.uk_row_bytes, c, i) * q_nope[i];
    }
    q_lat[c] = s;
  }
}

template <class F>
__device__ void head_output(const DeviceMla& m, const uint8_t* uv, const float* o_lat, float* out) {
  for (int r = threadIdx.x; r < m.v; r += blockDim.x) {
    float s = 0.0f;
    for (int c = 0; c < m.kv_lora; ++c) s += weight_at<F>(uv, m.uv_row_bytes, r, c) * o_lat[c];
    out[r] = s;
  }
}

// One block per (head, token). Shared memory: q_lat and q_pe (width), o_lat (kv_lora), block scores.
__global__ void mla_kernel(DeviceMla m, const float* q, const int32_t* tokens, DeviceKv kv, int layer,
                           float* out, float* latents) {
  extern __shared__ float shared[];
  float* qc = shared;                 // [q_lat | q_pe]
  float* o_lat = shared + m.width;    // kv_lora
  float* scores = o_lat + m.kv_lora;  // kThreads
  __shared__ float block_max, running_max, running_sum, rescale;
  const int h = blockIdx.x, t = blockIdx.y;
  const int seq = tokens[2 * t], pos = tokens[2 * t + 1];
  const float* qh = q + (static_cast<int64_t>(t) * m.n_head + h) * (m.nope + m.rope);
  with_format(m.uk_type, [&](auto fmt) { latent_query<decltype(fmt)>(m, m.uk[h], qh, qc); });
  for (int i = threadIdx.x; i < m.rope; i += blockDim.x) qc[m.kv_lora + i] = qh[m.nope + i];
  for (int c = threadIdx.x; c < m.kv_lora; c += blockDim.x) o_lat[c] = 0.0f;
  if (threadIdx.x == 0) {
    running_max = __int_as_float(0xff800000);
    running_sum = 0.0f;
  }
  __syncthreads();
  for (int p0 = 0; p0 <= pos; p0 += kThreads) {
    const int p = p0 + static_cast<int>(threadIdx.x);
    float s = __int_as_float(0xff800000);
    if (p <= pos) {
      s = 0.0f;
      for (int c = 0; c < m.width; ++c) s += qc[c] * cache_value(kv, layer, seq, p, c);
      s *= m.scale;
    }
    scores[threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
      float mx = running_max;
      for (int i = 0; i < kThreads; ++i) mx = fmaxf(mx, scores[i]);
      block_max = mx;
      rescale = expf(running_max - mx);  // 0 on the first block (running_max = -inf)
    }
    __syncthreads();
    scores[threadIdx.x] = p <= pos ? expf(s - block_max) : 0.0f;
    __syncthreads();
    if (threadIdx.x == 0) {
      float sum = 0.0f;
      for (int i = 0; i < kThreads; ++i) sum += scores[i];
      running_sum = running_sum * rescale + sum;
      running_max = block_max;
    }
    const int n_block = min(kThreads, pos + 1 - p0);
    for (int c = threadIdx.x; c < m.kv_lora; c += blockDim.x) {
      float acc = o_lat[c] * rescale;
      for (int i = 0; i < n_block; ++i) acc += scores[i] * cache_value(kv, layer, seq, p0 + i, c);
      o_lat[c] = acc;
    }
    __syncthreads();
  }
  const float inv = 1.0f / running_sum;
  for (int c = threadIdx.x; c < m.kv_lora; c += blockDim.x) {
    o_lat[c] *= inv;
    if (latents != nullptr) latents[(static_cast<int64_t>(t) * m.n_head + h) * m.kv_lora + c] = o_lat[c];
  }
  __syncthreads();
  float* oh = out + (static_cast<int64_t>(t) * m.n_head + h) * m.v;
  with_format(m.uv_type, [&](auto fmt) { head_output<decltype(fmt)>(m, m.uv[h], o_lat, oh); });
}

}  // namespace

void kv_store(const DeviceKv& kv, int layer, const int32_t* tokens, int n, const float* rows, int64_t ld,
              cudaStream_t s) {
  if (n > 0) kv_store_kernel<<<n, 128, 0, s>>>(kv, layer, tokens, rows, ld);
}

void mla_attend(const DeviceMla& m, const float* q, const int32_t* tokens, int n, const DeviceKv& kv,
                int layer, float* out, float* latents, cudaStream_t s) {
  if (n <= 0) return;
  const size_t shared = (static_cast<size_t>(m.width) + m.kv_lora + kThreads) * sizeof(float);
  mla_kernel<<<dim3(static_cast<unsigned>(m.n_head), static_cast<unsigned>(n)), kThreads, shared, s>>>(
      m, q, tokens, kv, layer, out, latents);
}

}  // namespace onecard::cuda::kernels
