// Weight products: each warp takes one row and decodes it eight values at a time, for up to kTokens tokens
// per pass, so that a row is read from memory once per pass (decode reads it once).
#include "cuda/formats.cuh"
#include "cuda/kernels.h"

namespace onecard::cuda::kernels {
namespace {

using gguf::GgmlType;

constexpr int kWarps = 4;   // rows per block
constexpr int kTokens = 8;  // tokens per pass

template <class F, int T>
__device__ void row_dots(const uint8_t* row, int64_t cols, const float* x, int64_t ldx, int nt, float* acc) {
  const int lane = threadIdx.x & 31;
  constexpr int kGroups = F::kQK / 8;
  for (int t = 0; t < T; ++t) acc[t] = 0.0f;
  for (int64_t g = lane; g < cols / 8; g += 32) {
    float v[8];
    F::dec8(row + (g / kGroups) * F::kBytes, static_cast<int>(g % kGroups), v);
    for (int t = 0; t < T; ++t) {
      if (t >= nt) break;
      const float* xg = x + t * ldx + g * 8;
      float s = 0.0f;
      for (int i = 0; i < 8; ++i) s += v[i] * xg[i];
      acc[t] += s;
    }
  }
  for (int t = 0; t < T; ++t) {
    for (int o = 16; o > 0; o >>= 1) acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], o);
  }
}

template <class F>
__global__ void matmul_kernel(DeviceMatrix w, const float* x, int64_t ldx, int n, float* y, int64_t ldy) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int t0 = static_cast<int>(blockIdx.y) * kTokens;
  if (r >= w.rows) return;
  float acc[kTokens];
  const int nt = min(kTokens, n - t0);
  row_dots<F, kTokens>(w.data + r * w.row_bytes, w.cols, x + t0 * ldx, ldx, nt, acc);
  if ((threadIdx.x & 31) == 0) {
    for (int t = 0; t < nt; ++t) y[(t0 + t) * ldy + r] = acc[t];
  }
}

template <class F>
__global__ void embed_kernel(DeviceMatrix table, const int32_t* tokens, float* y, int64_t ldy) {
  const int t = blockIdx.x;
  const uint8_t* row = table.data + static_cast<int64_t>(tokens[t]) * table.row_bytes;
  constexpr int kGroups = F::kQK / 8;
  for (int64_t g = threadIdx.x; g < table.cols / 8; g += blockDim.x) {
    float v[8];
    F::dec8(row + (g / kGroups) * F::kBytes, static_cast<int>(g % kGroups), v);
    for (int i = 0; i < 8; ++i) y[t * ldy + g * 8 + i] = v[i];
  }
}

// Pair p = (token p / k, slot p % k) with expert e = ids[p]: out[p][r] = row r of matrix e times the pair's
// input, which is x[p / k] (per_pair false: gate and up) or x[p] (per_pair true: down).
template <class F>
__global__ void moe_rows_kernel(DeviceMatrix m, const float* x, bool per_pair, const int32_t* ids, int k,
                                float* out) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int p = blockIdx.y;
  if (r >= m.rows) return;
  const float* xp = x + static_cast<int64_t>(per_pair ? p : p / k) * m.cols;
  float o;
  row_dots<F, 1>(m.data + static_cast<int64_t>(ids[p]) * m.matrix_bytes + r * m.row_bytes, m.cols, xp, 0, 1,
                 &o);
  if ((threadIdx.x & 31) == 0) out[static_cast<int64_t>(p) * m.rows + r] = o;
}

__global__ void moe_combine_kernel(const float* out, const float* weights, int n, int k, int64_t d,
                                   float* y) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * d) return;
  const int64_t t = i / d, c = i % d;
  float s = 0.0f;
  for (int j = 0; j < k; ++j) s += weights[t * k + j] * out[(t * k + j) * d + c];
  y[i] = s;
}

unsigned blocks_for(int64_t rows) {
  return static_cast<unsigned>((rows + kWarps - 1) / kWarps);
}

}  // namespace

bool format_supported(GgmlType type) {
  bool ok = false;
  with_format(type, [&](auto) { ok = true; });
  return ok;
}

void matmul(const DeviceMatrix& w, const float* x, int64_t ldx, int n, float* y, int64_t ldy,
            cudaStream_t s) {
  if (n <= 0) return;
  const dim3 grid(blocks_for(w.rows), static_cast<unsigned>((n + kTokens - 1) / kTokens));
  with_format(w.type, [&](auto fmt) {
    matmul_kernel<decltype(fmt)><<<grid, kWarps * 32, 0, s>>>(w, x, ldx, n, y, ldy);
  });
}

void embed(const DeviceMatrix& table, const int32_t* tokens, int n, float* y, int64_t ldy, cudaStream_t s) {
  if (n <= 0) return;
  with_format(table.type,
              [&](auto fmt) { embed_kernel<decltype(fmt)><<<n, 128, 0, s>>>(table, tokens, y, ldy); });
}

void moe(const DeviceMatrix& gate, const DeviceMatrix& up, const DeviceMatrix& down, const float* x, int n,
         const int32_t* ids, const float* weights, int k, float* h, float* u, float* out, float* y,
         cudaStream_t s) {
  if (n <= 0) return;
  const auto pairs = static_cast<unsigned>(n * k);
  auto rows = [&](const DeviceMatrix& m, const float* in, bool per_pair, float* result) {
    with_format(m.type, [&](auto fmt) {
      moe_rows_kernel<decltype(fmt)>
          <<<dim3(blocks_for(m.rows), pairs), kWarps * 32, 0, s>>>(m, in, per_pair, ids, k, result);
    });
  };
  rows(gate, x, false, h);
  rows(up, x, false, u);
  const int64_t hidden = static_cast<int64_t>(pairs) * gate.rows;
  silu_mul(h, u, hidden, s);
  rows(down, h, true, out);
  const int64_t total = n * down.rows;
  moe_combine_kernel<<<static_cast<unsigned>((total + 255) / 256), 256, 0, s>>>(out, weights, n, k, down.rows,
                                                                                y);
}

}  // namespace onecard::cuda::kernels
